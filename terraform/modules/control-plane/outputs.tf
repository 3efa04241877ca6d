output "url" {
  description = "URL of the control-plane API (use with `aws kafka ... --endpoint-url` or boto3's endpoint_url)."
  value       = local.url
}

output "load_balancer_arn" {
  description = "ARN of the control plane's Network Load Balancer."
  value       = aws_lb.this.arn
}

output "load_balancer_arn_suffix" {
  description = "ARN suffix of the control plane's NLB (LoadBalancer dimension of AWS/NetworkELB metrics)."
  value       = aws_lb.this.arn_suffix
}

output "load_balancer_dns_name" {
  description = "DNS name of the control plane's NLB."
  value       = aws_lb.this.dns_name
}

output "autoscaling_group_name" {
  description = "Name of the control plane's Auto Scaling group."
  value       = aws_autoscaling_group.this.name
}

output "security_group_id" {
  description = "Security group of the control-plane instances."
  value       = aws_security_group.instances.id
}

output "role_arn" {
  description = "IAM role of the control-plane instances."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the IAM role of the control-plane instances."
  value       = aws_iam_role.this.name
}
