# Fjord's durable state: the customer-managed KMS key for data, the KMS key wrapping the
# secret-sealing data key, the S3 bucket for tiered data, the DynamoDB metadata table, and a
# bucket for access logs (S3 server access logs, load-balancer access logs).
#
# The metadata table has exactly the key schema `fjord admin init-metadata` creates
# (metadata/src/dynamodb/mod.rs, documented in metadata/README.md): table "<prefix>-metadata",
# string keys pk (hash) / sk (range), GSI "by-node" on gpk / gsk projecting node, ep, lso, tid,
# part. Terraform creates it, so instances never need dynamodb:CreateTable and never run
# init-metadata.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  bucket_name     = coalesce(var.bucket_name, "${var.name}-data-${local.account_id}-${local.region}")
  log_bucket_name = "${substr(local.bucket_name, 0, 58)}-logs"
  table_name      = "${var.name}-metadata"

  autoscaling_role_arn = coalesce(
    var.autoscaling_service_role_arn,
    "arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
  )

  tags = merge(var.tags, { "fjord:deployment" = var.name })
}

# --- KMS ------------------------------------------------------------------------------------------

resource "aws_iam_service_linked_role" "autoscaling" {
  count = var.create_autoscaling_service_linked_role ? 1 : 0

  aws_service_name = "autoscaling.amazonaws.com"
  tags             = local.tags
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:This is a KMS key policy: "Resource: *" means the key itself, and the only unconditioned kms:* grant is to the account root, which AWS requires so that IAM policies (the roles' least-privilege ones) take effect.
  #checkov:skip=CKV_AWS_111:This is a KMS key policy: "Resource: *" means the key itself; service principals are limited by encryption-context, source-account or grant-for-AWS-resource conditions.
  #checkov:skip=CKV_AWS_356:This is a KMS key policy: a key policy can only name "*" (the key it is attached to) as resource.
  # The account's IAM policies decide who may use the key (the roles of this deployment get
  # least-privilege grants on it in their own policies).
  statement {
    sid       = "AccountRootDelegatesToIam"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  dynamic "statement" {
    for_each = length(var.kms_admin_role_arns) > 0 ? [1] : []

    content {
      sid = "KeyAdministrators"
      actions = [
        "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
        "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
        "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
      ]
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = var.kms_admin_role_arns
      }
    }
  }

  # CloudWatch Logs encrypts the log groups of this account with the key.
  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }

  # CloudWatch alarms publish to the SNS topic encrypted with the key.
  statement {
    sid       = "CloudWatchAlarmsToEncryptedSns"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  # EC2 Auto Scaling launches instances whose EBS volumes are encrypted with the key.
  statement {
    sid       = "AutoScalingUsesKeyForEbs"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.autoscaling_role_arn]
    }
  }

  statement {
    sid       = "AutoScalingGrantsForEbs"
    actions   = ["kms:CreateGrant"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.autoscaling_role_arn]
    }

    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "Fjord ${var.name}: S3 tiered data, DynamoDB metadata, EBS volumes, logs"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.kms.json

  tags = local.tags

  depends_on = [aws_iam_service_linked_role.autoscaling]
}

resource "aws_kms_alias" "this" {
  name          = "alias/fjord-${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

# --- KMS: the secret-sealing key ------------------------------------------------------------------
#
# A key of its own for the data key that seals access-key secrets (fjord/src/sealing.rs): the
# instances call GenerateDataKeyWithoutPlaintext once per deployment and Decrypt once per start,
# always with the encryption context {"fjord": "secret-sealing"}. Separate from the data key so
# that who may unwrap secrets is decided on its own: the data key is also used by S3, DynamoDB,
# EBS (the Auto Scaling service-linked role may Decrypt with it), CloudWatch Logs and SNS, and
# anyone granted it for data would otherwise be one Decrypt away from every secret. Here only
# IAM policies of this account apply (the three roles' least-privilege statements), no AWS
# service uses the key, and the key refuses any use without the sealing context.

data "aws_iam_policy_document" "secret_sealing_kms" {
  #checkov:skip=CKV_AWS_109:This is a KMS key policy: "Resource: *" means the key itself, and the only unconditioned kms:* grant is to the account root, which AWS requires so that IAM policies (the roles' least-privilege ones) take effect.
  #checkov:skip=CKV_AWS_111:This is a KMS key policy: "Resource: *" means the key itself; the only other statements are key administration for the named admin roles and a Deny.
  #checkov:skip=CKV_AWS_356:This is a KMS key policy: a key policy can only name "*" (the key it is attached to) as resource.
  statement {
    sid       = "AccountRootDelegatesToIam"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  dynamic "statement" {
    for_each = length(var.kms_admin_role_arns) > 0 ? [1] : []

    content {
      sid = "KeyAdministrators"
      actions = [
        "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
        "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
        "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
      ]
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = var.kms_admin_role_arns
      }
    }
  }

  # The key wraps exactly one kind of thing: a cryptographic call without the sealing context is
  # refused whoever makes it, so a broad IAM grant elsewhere in the account cannot turn it into a
  # general-purpose key (StringNotEquals also matches a request that has no such context).
  statement {
    sid       = "OnlySecretSealing"
    effect    = "Deny"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "kms:EncryptionContext:fjord"
      values   = ["secret-sealing"]
    }
  }
}

resource "aws_kms_key" "secret_sealing" {
  description             = "Fjord ${var.name}: wraps the data key that seals access-key secrets (encryption context fjord=secret-sealing)"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.secret_sealing_kms.json

  tags = merge(local.tags, { "fjord:purpose" = "secret-sealing" })
}

resource "aws_kms_alias" "secret_sealing" {
  name          = "alias/fjord-${var.name}-secret-sealing"
  target_key_id = aws_kms_key.secret_sealing.key_id
}

# --- Access-log bucket ----------------------------------------------------------------------------

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:This bucket is the access-log destination; logging it into itself would loop and into another bucket would only move the question.
  #checkov:skip=CKV_AWS_144:Access logs are diagnostic data; cross-region replication would double their cost for no recovery need.
  #checkov:skip=CKV_AWS_145:S3 server access logging only delivers to buckets with SSE-S3 default encryption, not SSE-KMS; the bucket uses SSE-S3.
  #checkov:skip=CKV2_AWS_62:Nothing consumes events of new log objects.
  bucket        = local.log_bucket_name
  force_destroy = var.force_destroy

  tags = merge(local.tags, { "fjord:purpose" = "access-logs" })
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"

    filter {}

    expiration {
      days = var.access_log_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_days
    }
  }
}

data "aws_iam_policy_document" "logs_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "S3ServerAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/s3/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "LoadBalancerAccessLogsAclCheck"
    actions   = ["s3:GetBucketAcl"]
    resources = [aws_s3_bucket.logs.arn]

    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "LoadBalancerAccessLogsWrite"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/lb/*"]

    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-acl"
      values   = ["bucket-owner-full-control"]
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = data.aws_iam_policy_document.logs_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.logs]
}

# --- Data bucket ----------------------------------------------------------------------------------

resource "aws_s3_bucket" "data" {
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage and request cost; durability within the region is S3's (11 nines). Add replication outside this module if a second region is a requirement.
  #checkov:skip=CKV2_AWS_62:Fjord records every object it writes in the metadata manifest itself; nothing consumes S3 event notifications.
  bucket        = local.bucket_name
  force_destroy = var.force_destroy

  tags = merge(local.tags, { "fjord:purpose" = "tiered-data" })
}

resource "aws_s3_bucket_ownership_controls" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "data" {
  bucket                  = aws_s3_bucket.data.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "data" {
  bucket = aws_s3_bucket.data.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    # One KMS request per bucket key instead of one per object: keeps KMS cost off the per-GB bill.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_days
    }
  }

  rule {
    id     = "expire-deleted-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }

    expiration {
      expired_object_delete_marker = true
    }
  }

  depends_on = [aws_s3_bucket_versioning.data]
}

resource "aws_s3_bucket_logging" "data" {
  bucket        = aws_s3_bucket.data.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/${local.bucket_name}/"
}

data "aws_iam_policy_document" "data_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.data.arn, "${aws_s3_bucket.data.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # Writers may omit the encryption headers (the bucket default applies) but may not pick
  # another algorithm or another key.
  statement {
    sid       = "DenyOtherEncryption"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.data.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }
  }

  statement {
    sid       = "DenyOtherKmsKey"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.data.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = [aws_kms_key.this.arn, aws_kms_key.this.key_id]
    }
  }
}

resource "aws_s3_bucket_policy" "data" {
  bucket = aws_s3_bucket.data.id
  policy = data.aws_iam_policy_document.data_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.data]
}

# --- DynamoDB metadata table ----------------------------------------------------------------------

resource "aws_dynamodb_table" "metadata" {
  name         = local.table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  attribute {
    name = "gpk"
    type = "S"
  }

  attribute {
    name = "gsk"
    type = "S"
  }

  # Partitions of a node (metadata/README.md): owner items carry gpk = N#<node>,
  # gsk = <topic>#<partition>.
  global_secondary_index {
    name               = "by-node"
    hash_key           = "gpk"
    range_key          = "gsk"
    projection_type    = "INCLUDE"
    non_key_attributes = ["node", "ep", "lso", "tid", "part"]
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }

  tags = local.tags
}
