output "bootstrap_brokers_sasl_iam" {
  description = "Bootstrap broker string for SASL/IAM clients (host:port), like MSK's BootstrapBrokerStringSaslIam."
  value       = "${local.bootstrap_host}:${var.iam_listener_port}"
}

output "bootstrap_brokers_sasl_scram" {
  description = "Bootstrap broker string for SASL/SCRAM clients, or null when the SCRAM listener is off."
  value       = var.enable_scram_listener ? "${local.bootstrap_host}:${var.scram_listener_port}" : null
}

output "load_balancer_arn" {
  description = "ARN of the gateways' Network Load Balancer."
  value       = aws_lb.this.arn
}

output "load_balancer_arn_suffix" {
  description = "ARN suffix of the NLB (the LoadBalancer dimension of AWS/NetworkELB metrics)."
  value       = aws_lb.this.arn_suffix
}

output "load_balancer_dns_name" {
  description = "DNS name of the NLB (point your own DNS at it when route53_zone_id is null)."
  value       = aws_lb.this.dns_name
}

output "load_balancer_zone_id" {
  description = "Route 53 zone id of the NLB, for alias records."
  value       = aws_lb.this.zone_id
}

output "target_group_arn_suffixes" {
  description = "ARN suffixes of the target groups, by instance port (the TargetGroup dimension of NLB metrics)."
  value       = { for port, tg in aws_lb_target_group.this : port => tg.arn_suffix }
}

output "autoscaling_group_name" {
  description = "Name of the gateways' Auto Scaling group."
  value       = aws_autoscaling_group.this.name
}

output "max_size" {
  description = "Maximum size of the gateways' Auto Scaling group."
  value       = aws_autoscaling_group.this.max_size
}

output "security_group_id" {
  description = "Security group of the gateway instances (storage nodes allow QUIC RPC from it)."
  value       = aws_security_group.instances.id
}

output "role_arn" {
  description = "IAM role of the gateway instances."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the IAM role of the gateway instances."
  value       = aws_iam_role.this.name
}
