output "log_group_names" {
  description = "CloudWatch log group per role (gateway, storage-node, control-plane)."
  value       = { for role, lg in aws_cloudwatch_log_group.role : role => lg.name }
}

output "log_group_arns" {
  description = "ARN of the log group per role."
  value       = { for role, lg in aws_cloudwatch_log_group.role : role => lg.arn }
}

output "metrics_log_group_name" {
  description = "Log group receiving the CloudWatch agents' embedded-metric-format records."
  value       = aws_cloudwatch_log_group.metrics.name
}

output "metrics_log_group_arn" {
  description = "ARN of the metrics log group."
  value       = aws_cloudwatch_log_group.metrics.arn
}

output "metrics_namespace" {
  description = "CloudWatch namespace of fjord's metrics."
  value       = var.metrics_namespace
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies (subscribe your paging here)."
  value       = aws_sns_topic.alarms.arn
}

output "prometheus_scrape_config" {
  description = "Prometheus scrape configuration (YAML) finding every Fjord instance by EC2 tags."
  value       = local.prometheus_config
}

output "prometheus_scrape_config_ssm_parameter" {
  description = "SSM parameter (SecureString) holding the Prometheus scrape configuration."
  value       = aws_ssm_parameter.prometheus_config.name
}

output "prometheus_iam_policy_json" {
  description = "IAM policy for the Prometheus server's role: EC2 service discovery and reading the scrape configuration."
  value       = data.aws_iam_policy_document.prometheus.json
}
