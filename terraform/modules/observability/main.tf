# Observability: KMS-encrypted CloudWatch log groups for each role, an encrypted SNS topic for
# alarms, the alarms that matter, and a Prometheus scrape configuration (EC2 service discovery)
# kept in SSM Parameter Store and returned as an output.
#
# Where the metrics come from:
#   - fjord's own metrics (WAL fsync latency, tiering lag, throttled requests): every instance's
#     CloudWatch agent scrapes fjord's Prometheus endpoint and publishes the fjord_* series into
#     the namespace var.metrics_namespace with the dimension Role (see bootstrap.sh.tftpl).
#   - AWS metrics: AWS/AutoScaling (group sizes), AWS/NetworkELB (healthy gateways),
#     AWS/DynamoDB (throttling).

data "aws_region" "current" {}

locals {
  roles = ["gateway", "storage-node", "control-plane"]
  tags  = merge(var.tags, { "fjord:deployment" = var.name })

  prometheus_config = templatefile("${path.module}/prometheus.yml.tftpl", {
    name            = var.name
    region          = data.aws_region.current.name
    metrics_port    = var.metrics_port
    scrape_interval = var.scrape_interval
    roles           = local.roles
  })
}

# --- logs -----------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "role" {
  for_each = toset(local.roles)

  name              = "/fjord/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = merge(local.tags, { "fjord:role" = each.key })
}

# Embedded-metric-format records the CloudWatch agents write for the Prometheus metrics.
resource "aws_cloudwatch_log_group" "metrics" {
  name              = "/fjord/${var.name}/metrics"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = local.tags
}

# --- alarm topic ----------------------------------------------------------------------------------

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-fjord-alarms"
  kms_master_key_id = var.kms_key_arn
  tags              = local.tags
}

resource "aws_sns_topic_subscription" "email" {
  count = var.alarm_email != null ? 1 : 0

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# --- alarms: fjord metrics ------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "wal_fsync_latency" {
  alarm_name          = "${var.name}-wal-fsync-latency"
  alarm_description   = "p99 WAL fsync latency of a storage node above ${var.wal_fsync_p99_threshold_ms} ms: produce latency rises with it. Check the WAL volumes' IOPS/throughput (VolumeQueueLength, burst) and the node's load."
  namespace           = var.metrics_namespace
  metric_name         = var.metric_names.wal_fsync_p99
  dimensions          = { Role = "storage-node" }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.wal_fsync_p99_threshold_ms / 1000
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "tiering_lag" {
  alarm_name          = "${var.name}-tiering-lag"
  alarm_description   = "A storage node's oldest WAL data not yet in S3 is older than ${var.tiering_lag_threshold_seconds} s: uploads fail or fall behind, and the WAL volume fills. Check S3/KMS errors in the node logs and the node's network."
  namespace           = var.metrics_namespace
  metric_name         = var.metric_names.tiering_lag
  dimensions          = { Role = "storage-node" }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.tiering_lag_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "kafka_throttling" {
  alarm_name          = "${var.name}-kafka-throttling"
  alarm_description   = "Gateways throttled more than ${var.throttled_requests_threshold} Kafka requests in 5 minutes: tenants at their quotas, or the fleet at capacity."
  namespace           = var.metrics_namespace
  metric_name         = var.metric_names.throttled_requests
  dimensions          = { Role = "gateway" }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.throttled_requests_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = local.tags
}

# --- alarms: AWS metrics --------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "metadata_throttling" {
  alarm_name          = "${var.name}-metadata-throttling"
  alarm_description   = "DynamoDB throttled requests to the metadata table (on-demand capacity ramping, or a hot key)."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = local.tags

  metric_query {
    id          = "throttled"
    expression  = "reads + writes"
    label       = "Throttle events"
    return_data = true
  }

  metric_query {
    id = "reads"

    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "ReadThrottleEvents"
      dimensions  = { TableName = var.table_name }
      stat        = "Sum"
      period      = 60
    }
  }

  metric_query {
    id = "writes"

    metric {
      namespace   = "AWS/DynamoDB"
      metric_name = "WriteThrottleEvents"
      dimensions  = { TableName = var.table_name }
      stat        = "Sum"
      period      = 60
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "storage_at_max" {
  for_each = var.storage_autoscaling_group_names

  alarm_name          = "${var.name}-storage-nodes-at-max-${each.key}"
  alarm_description   = "The storage-node group in ${each.key} runs at its maximum (${var.storage_max_size_per_az}): the controller wants more capacity than allowed. Raise max_size_per_az or check quotas."
  namespace           = "AWS/AutoScaling"
  metric_name         = "GroupInServiceInstances"
  dimensions          = { AutoScalingGroupName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.storage_max_size_per_az
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "gateways_at_max" {
  alarm_name          = "${var.name}-gateways-at-max"
  alarm_description   = "The gateway group runs at its maximum (${var.gateway_max_size}): CPU or connections exceed what it may scale to. Raise max_size."
  namespace           = "AWS/AutoScaling"
  metric_name         = "GroupInServiceInstances"
  dimensions          = { AutoScalingGroupName = var.gateway_autoscaling_group_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.gateway_max_size
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "gateways_unhealthy" {
  for_each = var.gateway_target_group_arn_suffixes

  alarm_name          = "${var.name}-gateways-unhealthy-${each.key}"
  alarm_description   = "Gateways failing the NLB health check on port ${each.key} for 5 minutes."
  namespace           = "AWS/NetworkELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = { LoadBalancer = var.gateway_load_balancer_arn_suffix, TargetGroup = each.value }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = local.tags
}

# --- Prometheus -----------------------------------------------------------------------------------

resource "aws_ssm_parameter" "prometheus_config" {
  name        = "/fjord/${var.name}/prometheus/scrape-config"
  description = "Prometheus scrape configuration for Fjord ${var.name} (EC2 service discovery)"
  type        = "SecureString"
  key_id      = var.kms_key_arn
  tier        = "Intelligent-Tiering"
  value       = local.prometheus_config
  tags        = local.tags
}

data "aws_iam_policy_document" "prometheus" {
  statement {
    sid       = "Ec2ServiceDiscovery"
    actions   = ["ec2:DescribeInstances", "ec2:DescribeAvailabilityZones"]
    resources = ["*"]
  }

  statement {
    sid       = "ReadScrapeConfig"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.prometheus_config.arn]
  }

  statement {
    sid       = "DecryptScrapeConfig"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ssm.${data.aws_region.current.name}.amazonaws.com"]
    }
  }
}
