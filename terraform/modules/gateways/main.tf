# Gateways: the stateless Kafka protocol servers. One Auto Scaling group spread over the zones,
# behind a Network Load Balancer with a TLS listener on 9098 (SASL/IAM, as on MSK Serverless) and
# optionally 9096 (SASL/SCRAM). Scales on CPU and on client connections.

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

  asg_name            = "${var.name}-gateways"
  lifecycle_hook_name = "drain"

  ami_id        = var.ami_id != null ? var.ami_id : nonsensitive(data.aws_ssm_parameter.ami[0].value)
  instance_type = coalesce(var.instance_type, var.architecture == "arm64" ? "c7g.large" : "c7i.large")

  client_cidrs  = length(var.allowed_client_cidrs) > 0 ? var.allowed_client_cidrs : [var.vpc_cidr]
  metrics_cidrs = length(var.metrics_allowed_cidrs) > 0 ? var.metrics_allowed_cidrs : [var.vpc_cidr]

  lb_subnets        = var.internal ? var.private_subnet_ids : var.public_subnet_ids
  listener_protocol = var.tls_termination == "nlb" ? "TLS" : "TCP"
  scram_target_port = coalesce(var.scram_target_port, var.kafka_port)
  instance_ports    = var.enable_scram_listener ? [var.kafka_port, local.scram_target_port] : [var.kafka_port]
  # Instance ports behind the listeners (strings: for_each keys).
  target_ports = toset([for p in local.instance_ports : tostring(p)])

  listeners = merge(
    { iam = { port = var.iam_listener_port, target_port = tostring(var.kafka_port) } },
    var.enable_scram_listener ? { scram = { port = var.scram_listener_port, target_port = tostring(local.scram_target_port) } } : {},
  )

  bootstrap_host   = var.domain_name != null ? var.domain_name : aws_lb.this.dns_name
  zonal_advertised = var.zonal_advertised_addresses && var.domain_name != null && var.route53_zone_id != null

  environment = merge(
    {
      FJORD_METADATA        = var.metadata_url
      FJORD_KAFKA_ADDR      = "0.0.0.0:${var.kafka_port}"
      FJORD_METRICS_ADDR    = "0.0.0.0:${var.metrics_port}"
      FJORD_MAX_CONNECTIONS = tostring(var.max_connections)
    },
    var.extra_environment,
  )

  # Computed on the instance: the address Metadata responses advertise (zonal name when enabled).
  dynamic_env_script = local.zonal_advertised ? "echo \"FJORD_ADVERTISED_ADDR=$AZ.${var.domain_name}:${var.iam_listener_port}\" >> /etc/fjord/fjord.env" : "echo \"FJORD_ADVERTISED_ADDR=${local.bootstrap_host}:${var.iam_listener_port}\" >> /etc/fjord/fjord.env"

  tags = merge(var.tags, { "fjord:deployment" = var.name, "fjord:role" = "gateway" })
}

# --- security groups ------------------------------------------------------------------------------

resource "aws_security_group" "lb" {
  name_prefix = "${var.name}-gateways-lb-"
  description = "NLB of the ${var.name} gateways: Kafka clients in, gateways out"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-gateways-lb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "lb_clients" {
  for_each = { for pair in setproduct(values(local.listeners), local.client_cidrs) : "${pair[0].port}-${pair[1]}" => { port = pair[0].port, cidr = pair[1] } }

  security_group_id = aws_security_group.lb.id
  description       = "Kafka clients on ${each.value.port}"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

resource "aws_vpc_security_group_egress_rule" "lb_to_gateways" {
  for_each = local.target_ports

  security_group_id            = aws_security_group.lb.id
  description                  = "Forward clients and health checks to gateways on ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = each.key
  to_port                      = each.key
  referenced_security_group_id = aws_security_group.instances.id
}

resource "aws_security_group" "instances" {
  name_prefix = "${var.name}-gateways-"
  description = "Gateway instances of ${var.name}"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-gateways" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "gateways_from_lb" {
  for_each = local.target_ports

  security_group_id            = aws_security_group.instances.id
  description                  = "Kafka clients and health checks from the NLB on ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = each.key
  to_port                      = each.key
  referenced_security_group_id = aws_security_group.lb.id
}

resource "aws_vpc_security_group_ingress_rule" "gateways_metrics" {
  for_each = toset(local.metrics_cidrs)

  security_group_id = aws_security_group.instances.id
  description       = "Prometheus scrapes"
  ip_protocol       = "tcp"
  from_port         = var.metrics_port
  to_port           = var.metrics_port
  cidr_ipv4         = each.key
}

resource "aws_vpc_security_group_egress_rule" "gateways_to_nodes" {
  security_group_id = aws_security_group.instances.id
  description       = "QUIC RPC to storage nodes"
  ip_protocol       = "udp"
  from_port         = var.node_rpc_port
  to_port           = var.node_rpc_port
  cidr_ipv4         = var.vpc_cidr
}

resource "aws_vpc_security_group_egress_rule" "gateways_to_endpoints" {
  security_group_id = aws_security_group.instances.id
  description       = "HTTPS to interface VPC endpoints (KMS, STS, logs, autoscaling, ...)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = var.vpc_cidr
}

resource "aws_vpc_security_group_egress_rule" "gateways_to_gateway_endpoints" {
  for_each = { s3 = var.s3_prefix_list_id, dynamodb = var.dynamodb_prefix_list_id }

  security_group_id = aws_security_group.instances.id
  description       = "HTTPS to ${each.key} through its gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = each.value
}

resource "aws_vpc_security_group_egress_rule" "gateways_to_internet" {
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
  #checkov:skip=CKV_AWS_152:Cross-zone balancing is a variable, off by default on purpose: with zonal advertised addresses a client stays in its zone (no inter-AZ data charges, no cross-zone hop on every produce), and the gateway group keeps the zones balanced.
  name                             = substr("${var.name}-kafka", 0, 32)
  load_balancer_type               = "network"
  internal                         = var.internal
  subnets                          = local.lb_subnets
  security_groups                  = [aws_security_group.lb.id]
  enable_cross_zone_load_balancing = var.cross_zone_load_balancing
  enable_deletion_protection       = var.deletion_protection

  lifecycle {
    precondition {
      condition     = var.internal || length(var.public_subnet_ids) >= 2
      error_message = "An internet-facing load balancer (internal = false) needs public_subnet_ids in at least two zones."
    }
  }

  access_logs {
    bucket  = var.access_logs_bucket
    prefix  = "lb/${var.name}-gateways"
    enabled = true
  }

  tags = local.tags
}

resource "aws_lb_target_group" "this" {
  for_each = local.target_ports

  name                 = substr("${var.name}-gw-${each.key}", 0, 32)
  port                 = each.key
  protocol             = "TCP"
  target_type          = "instance"
  vpc_id               = var.vpc_id
  deregistration_delay = var.deregistration_delay_seconds

  # Close what is still open when the deregistration delay ends (Kafka clients reconnect).
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

resource "aws_lb_listener" "this" {
  for_each = local.listeners

  load_balancer_arn = aws_lb.this.arn
  port              = each.value.port
  protocol          = local.listener_protocol
  certificate_arn   = var.tls_termination == "nlb" ? var.certificate_arn : null
  ssl_policy        = var.tls_termination == "nlb" ? var.tls_policy : null
  alpn_policy       = var.tls_termination == "nlb" ? "None" : null

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[each.value.target_port].arn
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = var.tls_termination != "nlb" || var.certificate_arn != null
      error_message = "certificate_arn is required when tls_termination = \"nlb\"."
    }
  }
}

# --- DNS (optional) -------------------------------------------------------------------------------

resource "aws_route53_record" "bootstrap" {
  for_each = var.route53_zone_id != null && var.domain_name != null ? toset([var.domain_name, "*.${var.domain_name}"]) : toset([])

  zone_id = var.route53_zone_id
  name    = each.key
  type    = "A"

  alias {
    name                   = aws_lb.this.dns_name
    zone_id                = aws_lb.this.zone_id
    evaluate_target_health = true
  }
}

# <az>.<domain_name> -> the NLB's zonal name <az>.<nlb dns name>: a gateway advertises its own
# zone's name, so a client's connections after bootstrap stay in that zone.
resource "aws_route53_record" "zonal" {
  for_each = local.zonal_advertised ? toset(var.availability_zones) : toset([])

  zone_id = var.route53_zone_id
  name    = "${each.key}.${var.domain_name}"
  type    = "CNAME"
  ttl     = 300
  records = ["${each.key}.${aws_lb.this.dns_name}"]
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
  name_prefix        = "${var.name}-gateway-"
  description        = "Fjord ${var.name} gateways: metadata table, sealed secrets, logs, metrics"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = local.tags
}

resource "aws_iam_instance_profile" "this" {
  name_prefix = "${var.name}-gateway-"
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
  name   = "fjord-gateway"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

# --- instances ------------------------------------------------------------------------------------

resource "aws_launch_template" "this" {
  name_prefix            = "${var.name}-gateway-"
  description            = "Fjord ${var.name} gateway"
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
    role                       = "gateway"
    subcommand                 = "gateway"
    artifact_bucket            = var.fjord_artifact != null ? var.fjord_artifact.bucket : ""
    artifact_key               = var.fjord_artifact != null ? var.fjord_artifact.key : ""
    artifact_sha256            = var.fjord_artifact != null ? var.fjord_artifact.sha256 : ""
    binary_path                = var.binary_path
    object_store_url           = var.object_store_url
    secret_sealing_kms_key_arn = var.secret_sealing_kms_key_arn
    environment                = local.environment
    setup_script               = "true"
    dynamic_env_script         = local.dynamic_env_script
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
    tags          = merge(local.tags, { Name = "${var.name}-gateway" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.tags, { Name = "${var.name}-gateway-root" })
  }

  tags = local.tags
}

resource "aws_autoscaling_group" "this" {
  name                      = local.asg_name
  min_size                  = var.min_size
  max_size                  = var.max_size
  vpc_zone_identifier       = var.private_subnet_ids
  target_group_arns         = [for tg in aws_lb_target_group.this : tg.arn]
  health_check_type         = "ELB"
  health_check_grace_period = 120
  default_instance_warmup   = 120
  wait_for_capacity_timeout = "15m"

  # GroupInServiceInstances feeds the connections-per-gateway scaling metric and the at-max alarm.
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
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  # A new launch template version (new AMI, new artifact, new settings) rolls through the group;
  # each replaced gateway drains through the lifecycle hook first.
  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 90
      instance_warmup        = 120
    }
  }

  initial_lifecycle_hook {
    name                 = local.lifecycle_hook_name
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    default_result       = "CONTINUE"
    heartbeat_timeout    = var.stop_timeout_seconds + 120
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${var.name}-gateway" })

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    # Target tracking owns the desired capacity.
    ignore_changes = [desired_capacity]
  }
}

# --- scaling --------------------------------------------------------------------------------------

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

# Connections per gateway = the NLB's active flows (all listeners) / in-service gateways. The NLB
# metric needs nothing from the binary and counts exactly what a gateway must hold open.
resource "aws_autoscaling_policy" "connections" {
  name                   = "connections-target"
  autoscaling_group_name = aws_autoscaling_group.this.name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    target_value = var.connections_per_gateway_target

    customized_metric_specification {
      metrics {
        id          = "flows"
        label       = "Active client connections"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "AWS/NetworkELB"
            metric_name = var.tls_termination == "nlb" ? "ActiveFlowCount_TLS" : "ActiveFlowCount_TCP"

            dimensions {
              name  = "LoadBalancer"
              value = aws_lb.this.arn_suffix
            }
          }
        }
      }

      metrics {
        id          = "gateways"
        label       = "In-service gateways"
        return_data = false

        metric_stat {
          stat = "Average"

          metric {
            namespace   = "AWS/AutoScaling"
            metric_name = "GroupInServiceInstances"

            dimensions {
              name  = "AutoScalingGroupName"
              value = aws_autoscaling_group.this.name
            }
          }
        }
      }

      metrics {
        id          = "per_gateway"
        label       = "Connections per gateway"
        expression  = "flows / gateways"
        return_data = true
      }
    }
  }
}
