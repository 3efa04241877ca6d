# Storage nodes: one Auto Scaling group per availability zone. Each node has an encrypted gp3 EBS
# volume for its write-ahead log. The volume outlives its instance (delete_on_termination =
# false) because acked records that are not yet in S3 live only there: when a node dies, the
# controller (one storage node holding the controller lease) detaches its WAL volume and attaches
# it to a surviving node in the same zone, which replays it. The per-zone groups keep at least one
# node in every zone, so a zone's volumes always have a possible adopter.
#
# Capacity: the controller computes the node count the load needs and sets the groups' desired
# capacity (terraform ignores desired_capacity after creation). Scale-in goes through a lifecycle
# hook: the node drains (hands its partitions over, uploads its WAL tail) before it stops.

data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

data "aws_ssm_parameter" "ami" {
  count = var.ami_id == null ? 1 : 0

  name = coalesce(var.ami_ssm_parameter, "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${var.architecture}")
}

locals {
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id

  # The wrapped secret-sealing key (fjord::sealing::WRAPPED_KEY_OBJECT under the object prefix).
  sealing_key_object_key = "${var.object_prefix}/_fjord/secret-sealing.key"

  azs                 = sort(keys(var.subnet_ids_by_az))
  asg_names           = { for az in local.azs : az => "${var.name}-storage-${az}" }
  lifecycle_hook_name = "drain"

  ami_id        = var.ami_id != null ? var.ami_id : nonsensitive(data.aws_ssm_parameter.ami[0].value)
  instance_type = coalesce(var.instance_type, var.architecture == "arm64" ? "m7g.xlarge" : "m7i.xlarge")

  metrics_cidrs = length(var.metrics_allowed_cidrs) > 0 ? var.metrics_allowed_cidrs : [var.vpc_cidr]
  # Static keys: the security-group ids are only known after apply.
  rpc_sources = merge(
    { gateways = var.gateway_security_group_id },
    { for i, id in var.rpc_client_security_group_ids : "client-${i}" => id },
  )

  environment = merge(
    {
      FJORD_METADATA     = var.metadata_url
      FJORD_METRICS_ADDR = "0.0.0.0:${var.metrics_port}"
      # For the controller's AWS capacity provider and WAL hand-over.
      FJORD_DEPLOYMENT              = var.name
      FJORD_CAPACITY_PROVIDER       = "aws-autoscaling"
      FJORD_STORAGE_ASG_NAMES       = join(",", [for az in local.azs : local.asg_names[az]])
      FJORD_WAL_VOLUME_TAG_SELECTOR = "fjord:deployment=${var.name},fjord:role=storage-node"
    },
    var.extra_environment,
  )

  # The node id is the instance id; the RPC address is the private IP (what gateways dial).
  dynamic_env_script = join("\n", [
    "echo \"FJORD_NODE_ID=$INSTANCE_ID\" >> /etc/fjord/fjord.env",
    "echo \"FJORD_NODE_RPC_ADDR=$PRIVATE_IP:${var.node_rpc_port}\" >> /etc/fjord/fjord.env",
    "echo \"FJORD_WAL_VOLUME_ID=$(cat /etc/fjord/wal-volume-id)\" >> /etc/fjord/fjord.env",
  ])

  tags = merge(var.tags, { "fjord:deployment" = var.name, "fjord:role" = "storage-node" })
}

# --- security group -------------------------------------------------------------------------------

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-storage-"
  description = "Storage nodes of ${var.name}"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-storage" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "rpc_from_clients" {
  for_each = local.rpc_sources

  security_group_id            = aws_security_group.this.id
  description                  = "QUIC RPC from gateways and other Fjord roles"
  ip_protocol                  = "udp"
  from_port                    = var.node_rpc_port
  to_port                      = var.node_rpc_port
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_ingress_rule" "rpc_from_nodes" {
  security_group_id            = aws_security_group.this.id
  description                  = "QUIC RPC between storage nodes (controller, partition moves)"
  ip_protocol                  = "udp"
  from_port                    = var.node_rpc_port
  to_port                      = var.node_rpc_port
  referenced_security_group_id = aws_security_group.this.id
}

resource "aws_vpc_security_group_ingress_rule" "metrics" {
  for_each = toset(local.metrics_cidrs)

  security_group_id = aws_security_group.this.id
  description       = "Prometheus scrapes"
  ip_protocol       = "tcp"
  from_port         = var.metrics_port
  to_port           = var.metrics_port
  cidr_ipv4         = each.key
}

resource "aws_vpc_security_group_egress_rule" "rpc_to_nodes" {
  security_group_id            = aws_security_group.this.id
  description                  = "QUIC RPC to other storage nodes"
  ip_protocol                  = "udp"
  from_port                    = var.node_rpc_port
  to_port                      = var.node_rpc_port
  referenced_security_group_id = aws_security_group.this.id
}

resource "aws_vpc_security_group_egress_rule" "endpoints" {
  security_group_id = aws_security_group.this.id
  description       = "HTTPS to interface VPC endpoints (KMS, STS, EC2, autoscaling, logs, ...)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = var.vpc_cidr
}

resource "aws_vpc_security_group_egress_rule" "gateway_endpoints" {
  for_each = { s3 = var.s3_prefix_list_id, dynamodb = var.dynamodb_prefix_list_id }

  security_group_id = aws_security_group.this.id
  description       = "HTTPS to ${each.key} through its gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = each.value
}

resource "aws_vpc_security_group_egress_rule" "internet" {
  count = var.allow_internet_egress ? 1 : 0

  security_group_id = aws_security_group.this.id
  description       = "HTTPS to the internet through NAT"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# --- IAM ------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name_prefix        = "${var.name}-storage-"
  description        = "Fjord ${var.name} storage nodes: data prefix, metadata table, WAL volume hand-over, capacity"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = local.tags
}

resource "aws_iam_instance_profile" "this" {
  name_prefix = "${var.name}-storage-"
  role        = aws_iam_role.this.name
  tags        = local.tags
}

resource "aws_iam_role_policy_attachment" "ssm" {
  count = var.enable_ssm_session_manager ? 1 : 0

  role       = aws_iam_role.this.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "ListDataPrefix"
    actions   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [var.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.object_prefix, "${var.object_prefix}/*"]
    }
  }

  statement {
    sid = "ReadWriteDataPrefix"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:DeleteObject",
      "s3:GetObject",
      "s3:ListMultipartUploadParts",
      "s3:PutObject",
    ]
    resources = ["${var.bucket_arn}/${var.object_prefix}/*"]
  }

  statement {
    sid       = "KmsThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }

  # Attaching another node's encrypted WAL volume needs the key through EC2.
  statement {
    sid       = "KmsThroughEc2"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ec2.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "KmsGrantsForEbs"
    actions   = ["kms:CreateGrant"]
    resources = [var.kms_key_arn]

    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ec2.${local.region}.amazonaws.com"]
    }
  }

  # The secret-sealing key (fjord/src/sealing.rs, README "Secret sealing"): one data key for the
  # whole deployment, stored wrapped in the data bucket. The first instance to start generates it
  # (GenerateDataKeyWithoutPlaintext) and creates the object (conditional PUT, If-None-Match);
  # every start reads the object and Decrypts it. Both KMS calls carry this context, and the key
  # policy refuses any other use of the key. Reading and writing the object (and SSE-KMS through
  # S3) are already part of ReadWriteDataPrefix and KmsThroughS3.
  statement {
    sid       = "SecretSealingKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext"]
    resources = [var.secret_sealing_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:fjord"
      values   = ["secret-sealing"]
    }
  }

  # S3 answers a GET of a missing object with 404 (which tells the first start to create the
  # key) only to a caller that may list the bucket, and with 403 otherwise, which would stop
  # every first start. Listing is limited to that one key where the request names a prefix; the
  # implied check behind a GET's 404 need not carry one, hence IfExists.
  statement {
    sid       = "FindSecretSealingKeyObject"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]

    condition {
      test     = "StringEqualsIfExists"
      variable = "s3:prefix"
      values   = [local.sealing_key_object_key]
    }
  }

  statement {
    sid = "MetadataTable"
    # Exactly the calls the DynamoDB backend makes (TransactWriteItems is authorized per item
    # action). No Scan, no table management: terraform owns the table.
    actions = [
      "dynamodb:ConditionCheckItem",
      "dynamodb:DeleteItem",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = [var.table_arn, "${var.table_arn}/index/*"]
  }

  # Describe calls cannot be scoped to resources.
  statement {
    sid = "DescribeVolumesAndGroups"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "ec2:DescribeInstances",
      "ec2:DescribeVolumes",
      "ec2:DescribeVolumeStatus",
    ]
    resources = ["*"]
  }

  # WAL hand-over: per zone, only volumes and instances of this deployment's storage nodes whose
  # fjord:az tag is that zone (EBS can only attach within a zone anyway).
  dynamic "statement" {
    for_each = local.azs

    content {
      sid     = "WalVolumeHandOver${replace(title(replace(statement.value, "-", " ")), " ", "")}"
      actions = ["ec2:AttachVolume", "ec2:DetachVolume"]
      resources = [
        "arn:${local.partition}:ec2:${local.region}:${local.account_id}:volume/*",
        "arn:${local.partition}:ec2:${local.region}:${local.account_id}:instance/*",
      ]

      condition {
        test     = "StringEquals"
        variable = "aws:ResourceTag/fjord:deployment"
        values   = [var.name]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:ResourceTag/fjord:role"
        values   = ["storage-node"]
      }

      condition {
        test     = "StringEquals"
        variable = "aws:ResourceTag/fjord:az"
        values   = [statement.value]
      }

      condition {
        test     = "StringEquals"
        variable = "ec2:AvailabilityZone"
        values   = [statement.value]
      }
    }
  }

  # A cleanly drained node deletes its own WAL volume; the controller deletes a recovered one.
  statement {
    sid       = "DeleteDrainedWalVolumes"
    actions   = ["ec2:DeleteVolume"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:volume/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/fjord:deployment"
      values   = [var.name]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/fjord:role"
      values   = ["storage-node"]
    }
  }

  # Nodes record which node holds a volume and its recovery state in two tags, nothing else.
  statement {
    sid       = "TagWalVolumes"
    actions   = ["ec2:CreateTags"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:volume/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/fjord:deployment"
      values   = [var.name]
    }

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = ["fjord:holder", "fjord:wal-state"]
    }
  }

  # The capacity provider (controller) sets the node count and picks which drained node leaves.
  statement {
    sid = "Capacity"
    actions = [
      "autoscaling:CompleteLifecycleAction",
      "autoscaling:RecordLifecycleActionHeartbeat",
      "autoscaling:SetDesiredCapacity",
      "autoscaling:SetInstanceProtection",
      "autoscaling:TerminateInstanceInAutoScalingGroup",
    ]
    resources = [for az in local.azs : "arn:${local.partition}:autoscaling:${local.region}:${local.account_id}:autoScalingGroup:*:autoScalingGroupName/${local.asg_names[az]}"]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${var.log_group_arn}:*", "${var.metrics_log_group_arn}:*"]
  }

  statement {
    sid       = "Metrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metrics_namespace, "CWAgent"]
    }
  }

  dynamic "statement" {
    for_each = var.fjord_artifact != null ? [var.fjord_artifact] : []

    content {
      sid       = "ReleaseArtifact"
      actions   = ["s3:GetObject"]
      resources = ["arn:${local.partition}:s3:::${statement.value.bucket}/${statement.value.key}"]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "fjord-storage-node"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

# --- instances: one launch template and one group per zone ----------------------------------------

resource "aws_launch_template" "this" {
  for_each = var.subnet_ids_by_az

  name_prefix            = "${var.name}-storage-${each.key}-"
  description            = "Fjord ${var.name} storage node in ${each.key}"
  image_id               = local.ami_id
  instance_type          = local.instance_type
  ebs_optimized          = true
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.this.arn
  }

  network_interfaces {
    associate_public_ip_address = false
    delete_on_termination       = true
    security_groups             = [aws_security_group.this.id]
  }

  placement {
    availability_zone = each.key
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled"
  }

  monitoring {
    enabled = true
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_size_gb
      volume_type           = "gp3"
      encrypted             = true
      kms_key_id            = var.kms_key_arn
      delete_on_termination = true
    }
  }

  # The WAL volume.
  block_device_mappings {
    device_name = "/dev/sdf"

    ebs {
      volume_size           = var.wal_volume_size_gb
      volume_type           = "gp3"
      iops                  = var.wal_volume_iops
      throughput            = var.wal_volume_throughput_mbps
      encrypted             = true
      kms_key_id            = var.kms_key_arn
      delete_on_termination = var.wal_volume_delete_on_termination
    }
  }

  user_data = base64encode(templatefile("${path.module}/../shared/bootstrap.sh.tftpl", {
    role                       = "storage-node"
    subcommand                 = "storage-node"
    artifact_bucket            = var.fjord_artifact != null ? var.fjord_artifact.bucket : ""
    artifact_key               = var.fjord_artifact != null ? var.fjord_artifact.key : ""
    artifact_sha256            = var.fjord_artifact != null ? var.fjord_artifact.sha256 : ""
    binary_path                = var.binary_path
    object_store_url           = var.object_store_url
    secret_sealing_kms_key_arn = var.secret_sealing_kms_key_arn
    environment                = local.environment
    setup_script               = file("${path.module}/wal-volume.sh")
    dynamic_env_script         = local.dynamic_env_script
    terminate_script           = var.wal_volume_delete_on_termination ? "true" : file("${path.module}/wal-release.sh")
    stop_timeout_seconds       = var.drain_timeout_seconds
    asg_name                   = local.asg_names[each.key]
    lifecycle_hook_name        = local.lifecycle_hook_name
    log_group_name             = var.log_group_name
    metrics_log_group_name     = var.metrics_log_group_name
    metrics_port               = var.metrics_port
    metrics_namespace          = var.metrics_namespace
    install_cloudwatch_agent   = var.install_cloudwatch_agent
  }))

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name}-storage-${each.key}", "fjord:az" = each.key })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.tags, { Name = "${var.name}-storage-${each.key}", "fjord:az" = each.key })
  }

  tags = local.tags
}

resource "aws_autoscaling_group" "this" {
  for_each = var.subnet_ids_by_az

  name                      = local.asg_names[each.key]
  min_size                  = var.min_size_per_az
  max_size                  = var.max_size_per_az
  vpc_zone_identifier       = [each.value]
  health_check_type         = "EC2"
  health_check_grace_period = 300
  default_instance_warmup   = 300

  enabled_metrics = [
    "GroupDesiredCapacity",
    "GroupInServiceInstances",
    "GroupMaxSize",
    "GroupMinSize",
    "GroupPendingInstances",
    "GroupTerminatingInstances",
    "GroupTotalInstances",
  ]

  launch_template {
    id      = aws_launch_template.this[each.key].id
    version = aws_launch_template.this[each.key].latest_version
  }

  # A new launch template version rolls through the zone one node at a time, launching the
  # replacement before the old node drains (so the zone never drops below its size).
  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 200
      instance_warmup        = 300
    }
  }

  initial_lifecycle_hook {
    name                 = local.lifecycle_hook_name
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    default_result       = "CONTINUE"
    heartbeat_timeout    = var.drain_timeout_seconds + 120
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${var.name}-storage-${each.key}", "fjord:az" = each.key })

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    # The controller's capacity provider owns the desired capacity.
    ignore_changes = [desired_capacity]
  }
}
