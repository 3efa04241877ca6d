output "bootstrap_brokers_sasl_iam" {
  description = "Bootstrap broker string for SASL/IAM clients (AWS_MSK_IAM or OAUTHBEARER over TLS)."
  value       = module.gateways.bootstrap_brokers_sasl_iam
}

output "bootstrap_brokers_sasl_scram" {
  description = "Bootstrap broker string for SASL/SCRAM clients (null unless enable_scram_listener)."
  value       = module.gateways.bootstrap_brokers_sasl_scram
}

output "control_plane_url" {
  description = "Control-plane API URL: `aws kafka list-clusters-v2 --endpoint-url <this>`."
  value       = one(module.control_plane[*].url)
}

output "bucket_name" {
  description = "S3 bucket holding the tiered data."
  value       = module.data.bucket_name
}

output "table_name" {
  description = "DynamoDB metadata table."
  value       = module.data.table_name
}

output "kms_key_arn" {
  description = "Customer-managed KMS key of the deployment's data (S3, DynamoDB, EBS, logs, SNS)."
  value       = module.data.kms_key_arn
}

output "secret_sealing_kms_key_arn" {
  description = "KMS key wrapping the secret-sealing data key (FJORD_KMS_KEY_ID of every instance)."
  value       = module.data.secret_sealing_kms_key_arn
}

output "metadata_url" {
  description = "FJORD_METADATA of this deployment (for `fjord admin ...` from an operator machine)."
  value       = module.data.metadata_url
}

output "object_store_url" {
  description = "FJORD_OBJECT_STORE of this deployment."
  value       = module.data.object_store_url
}

output "kafka_load_balancer_dns_name" {
  description = "DNS name of the Kafka NLB (target of your DNS records when route53_zone_id is null)."
  value       = module.gateways.load_balancer_dns_name
}

output "control_plane_load_balancer_dns_name" {
  description = "DNS name of the control-plane NLB."
  value       = one(module.control_plane[*].load_balancer_dns_name)
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.observability.alarm_topic_arn
}

output "prometheus_scrape_config_ssm_parameter" {
  description = "SSM parameter with the Prometheus scrape configuration."
  value       = module.observability.prometheus_scrape_config_ssm_parameter
}

output "prometheus_scrape_config" {
  description = "The Prometheus scrape configuration (YAML)."
  value       = module.observability.prometheus_scrape_config
}
