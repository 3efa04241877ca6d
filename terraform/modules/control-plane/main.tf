# Control plane: the HTTPS endpoint of the MSK-compatible cluster API (CreateClusterV2,
# DescribeClusterV2, ListClustersV2, DeleteCluster, GetBootstrapBrokers), the topic and credential
# operations. A small Auto Scaling group over the zones behind a Network Load Balancer whose TLS
# listener (443, ACM certificate) forwards to the control-plane HTTP listener inside the VPC.
# Requests are SigV4-signed by the callers and verified by Fjord, so no WAF or ALB features are
# needed in front of it.
#
# The binary's `fjord control-plane` role listens on FJORD_CONTROL_PLANE_ADDR (flag
# --control-plane-addr).

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
  sealing_key_object_arn = "${var.bucket_arn}/${local.sealing_key_object_key}"

  asg_name            = "${var.name}-control-plane"
  lifecycle_hook_name = "drain"

  ami_id        = var.ami_id != null ? var.ami_id : nonsensitive(data.aws_ssm_parameter.ami[0].value)
  instance_type = coalesce(var.instance_type, var.architecture == "arm64" ? "t4g.small" : "t3.small")

  client_cidrs  = length(var.allowed_client_cidrs) > 0 ? var.allowed_client_cidrs : [var.vpc_cidr]
  metrics_cidrs = length(var.metrics_allowed_cidrs) > 0 ? var.metrics_allowed_cidrs : [var.vpc_cidr]
  lb_subnets    = var.internal ? var.private_subnet_ids : var.public_subnet_ids

  endpoint_host = var.domain_name != null ? var.domain_name : aws_lb.this.dns_name
  url           = var.listener_port == 443 ? "https://${local.endpoint_host}" : "https://${local.endpoint_host}:${var.listener_port}"

  environment = merge(
    {
      FJORD_METADATA           = var.metadata_url
      FJORD_CONTROL_PLANE_ADDR = "0.0.0.0:${var.api_port}"
      FJORD_CONTROL_PLANE_URL  = local.url
      FJORD_METRICS_ADDR       = "0.0.0.0:${var.metrics_port}"
      FJORD_BOOTSTRAP_BROKERS  = var.kafka_bootstrap_brokers
    },
    var.kafka_domain_name != null ? { FJORD_CLUSTER_DOMAIN = var.kafka_domain_name } : {},
    var.extra_environment,
  )

  tags = merge(var.tags, { "fjord:deployment" = var.name, "fjord:role" = "control-plane" })
}

# --- security groups ------------------------------------------------------------------------------

resource "aws_security_group" "lb" {
  name_prefix = "${var.name}-control-plane-lb-"
  description = "NLB of the ${var.name} control plane: API callers in, control plane out"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-control-plane-lb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "lb_clients" {
  for_each = toset(local.client_cidrs)

  security_group_id = aws_security_group.lb.id
  description       = "HTTPS API callers"
  ip_protocol       = "tcp"
  from_port         = var.listener_port
  to_port           = var.listener_port
  cidr_ipv4         = each.key
}

resource "aws_vpc_security_group_egress_rule" "lb_to_instances" {
  security_group_id            = aws_security_group.lb.id
  description                  = "Forward requests and health checks to the control plane"
  ip_protocol                  = "tcp"
  from_port                    = var.api_port
  to_port                      = var.api_port
  referenced_security_group_id = aws_security_group.instances.id
}

resource "aws_security_group" "instances" {
  name_prefix = "${var.name}-control-plane-"
  description = "Control-plane instances of ${var.name}"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-control-plane" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "from_lb" {
  security_group_id            = aws_security_group.instances.id
  description                  = "API requests and health checks from the NLB"
  ip_protocol                  = "tcp"
  from_port                    = var.api_port
  to_port                      = var.api_port
  referenced_security_group_id = aws_security_group.lb.id
}

resource "aws_vpc_security_group_ingress_rule" "metrics" {
  for_each = toset(local.metrics_cidrs)

  security_group_id = aws_security_group.instances.id
  description       = "Prometheus scrapes"
  ip_protocol       = "tcp"
  from_port         = var.metrics_port
  to_port           = var.metrics_port
  cidr_ipv4         = each.key
}

# Topic and group operations that need a partition's owner (e.g. deleting a topic's data) go to
# the storage nodes like a gateway's requests do.
resource "aws_vpc_security_group_egress_rule" "to_nodes" {
  security_group_id = aws_security_group.instances.id
  description       = "QUIC RPC to storage nodes"
  ip_protocol       = "udp"
  from_port         = var.node_rpc_port
  to_port           = var.node_rpc_port
  cidr_ipv4         = var.vpc_cidr
}

resource "aws_vpc_security_group_egress_rule" "endpoints" {
  security_group_id = aws_security_group.instances.id
  description       = "HTTPS to interface VPC endpoints (KMS, STS, logs, autoscaling, ...)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = var.vpc_cidr
}

resource "aws_vpc_security_group_egress_rule" "gateway_endpoints" {
  for_each = { s3 = var.s3_prefix_list_id, dynamodb = var.dynamodb_prefix_list_id }

  security_group_id = aws_security_group.instances.id
  description       = "HTTPS to ${each.key} through its gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = each.value
}

resource "aws_vpc_security_group_egress_rule" "internet" {
  count = var.allow_internet_egress ? 1 : 0

  security_group_id = aws_security_group.instances.id
  description       = "HTTPS to the internet through NAT"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# --- load balancer --------------------------------------------------------------------------------

resource "aws_lb" "this" {
  name                             = substr("${var.name}-api", 0, 32)
  load_balancer_type               = "network"
  internal                         = var.internal
  subnets                          = local.lb_subnets
  security_groups                  = [aws_security_group.lb.id]
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = var.deletion_protection

  lifecycle {
    precondition {
      condition     = var.internal || length(var.public_subnet_ids) >= 2
      error_message = "An internet-facing load balancer (internal = false) needs public_subnet_ids in at least two zones."
    }
  }

  access_logs {
    bucket  = var.access_logs_bucket
    prefix  = "lb/${var.name}-control-plane"
    enabled = true
  }

  tags = local.tags
}

resource "aws_lb_target_group" "this" {
  name                   = substr("${var.name}-api", 0, 32)
  port                   = var.api_port
  protocol               = "TCP"
  target_type            = "instance"
  vpc_id                 = var.vpc_id
  deregistration_delay   = 30
  connection_termination = true

  health_check {
    protocol            = "TCP"
    port                = "traffic-port"
    interval            = 10
    healthy_threshold   = 3
    unhealthy_threshold = 3
  }

  tags = local.tags
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = var.listener_port
  protocol          = "TLS"
  certificate_arn   = var.certificate_arn
  ssl_policy        = var.tls_policy
  alpn_policy       = "HTTP1Only"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

  tags = local.tags
}

resource "aws_route53_record" "this" {
  count = var.route53_zone_id != null && var.domain_name != null ? 1 : 0

  zone_id = var.route53_zone_id
  name    = var.domain_name
  type    = "A"

  alias {
    name                   = aws_lb.this.dns_name
    zone_id                = aws_lb.this.zone_id
    evaluate_target_health = true
  }
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
  name_prefix        = "${var.name}-control-plane-"
  description        = "Fjord ${var.name} control plane: metadata table, sealing secrets, logs, metrics"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = local.tags
}

resource "aws_iam_instance_profile" "this" {
  name_prefix = "${var.name}-control-plane-"
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

  # The secret-sealing key (fjord/src/sealing.rs, README "Secret sealing"): one data key for the
  # whole deployment, stored wrapped in the data bucket. The first instance to start generates it
  # (GenerateDataKeyWithoutPlaintext) and creates the object (conditional PUT, If-None-Match);
  # every start reads the object and Decrypts it. Both KMS calls carry this context, and the key
  # policy refuses any other use of the key.
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

  statement {
    sid       = "SecretSealingKeyObject"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = [local.sealing_key_object_arn]
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

  # The object is SSE-KMS with the data key (the bucket policy refuses anything else): S3 needs
  # the caller's GenerateDataKey to write it and Decrypt to read it. The encryption context is the
  # bucket's ARN with S3 bucket keys (on in the data module), the object's ARN without.
  statement {
    sid       = "KmsThroughS3ForSecretSealingKeyObject"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [var.bucket_arn, local.sealing_key_object_arn]
    }
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

  statement {
    sid       = "CompleteOwnLifecycleHook"
    actions   = ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"]
    resources = ["arn:${local.partition}:autoscaling:${local.region}:${local.account_id}:autoScalingGroup:*:autoScalingGroupName/${local.asg_name}"]
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
  name   = "fjord-control-plane"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

# --- instances ------------------------------------------------------------------------------------

resource "aws_launch_template" "this" {
  name_prefix            = "${var.name}-control-plane-"
  description            = "Fjord ${var.name} control plane"
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
    security_groups             = [aws_security_group.instances.id]
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

  user_data = base64encode(templatefile("${path.module}/../shared/bootstrap.sh.tftpl", {
    role                       = "control-plane"
    subcommand                 = "control-plane"
    artifact_bucket            = var.fjord_artifact != null ? var.fjord_artifact.bucket : ""
    artifact_key               = var.fjord_artifact != null ? var.fjord_artifact.key : ""
    artifact_sha256            = var.fjord_artifact != null ? var.fjord_artifact.sha256 : ""
    binary_path                = var.binary_path
    object_store_url           = var.object_store_url
    secret_sealing_kms_key_arn = var.secret_sealing_kms_key_arn
    environment                = local.environment
    setup_script               = "true"
    dynamic_env_script         = "true"
    terminate_script           = "true"
    stop_timeout_seconds       = var.stop_timeout_seconds
    asg_name                   = local.asg_name
    lifecycle_hook_name        = local.lifecycle_hook_name
    log_group_name             = var.log_group_name
    metrics_log_group_name     = var.metrics_log_group_name
    metrics_port               = var.metrics_port
    metrics_namespace          = var.metrics_namespace
    install_cloudwatch_agent   = var.install_cloudwatch_agent
  }))

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name}-control-plane" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.tags, { Name = "${var.name}-control-plane-root" })
  }

  tags = local.tags
}

resource "aws_autoscaling_group" "this" {
  name                      = local.asg_name
  min_size                  = var.min_size
  max_size                  = var.max_size
  vpc_zone_identifier       = var.private_subnet_ids
  target_group_arns         = [aws_lb_target_group.this.arn]
  health_check_type         = "ELB"
  health_check_grace_period = 120
  default_instance_warmup   = 120

  enabled_metrics = ["GroupDesiredCapacity", "GroupInServiceInstances", "GroupMaxSize", "GroupMinSize", "GroupTotalInstances"]

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 50
      instance_warmup        = 120
    }
  }

  initial_lifecycle_hook {
    name                 = local.lifecycle_hook_name
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    default_result       = "CONTINUE"
    heartbeat_timeout    = var.stop_timeout_seconds + 60
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${var.name}-control-plane" })

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    ignore_changes = [desired_capacity]
  }
}

resource "aws_autoscaling_policy" "cpu" {
  name                   = "cpu-target"
  autoscaling_group_name = aws_autoscaling_group.this.name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    target_value = var.cpu_target_percent

    predefined_metric_specification {
      predefined_metric_type = "ASGAverageCPUUtilization"
    }
  }
}
