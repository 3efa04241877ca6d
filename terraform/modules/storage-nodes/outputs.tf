output "autoscaling_group_names" {
  description = "Storage-node Auto Scaling group per availability zone."
  value       = { for az, asg in aws_autoscaling_group.this : az => asg.name }
}

output "max_size_per_az" {
  description = "Maximum size of each storage-node Auto Scaling group."
  value       = var.max_size_per_az
}

output "security_group_id" {
  description = "Security group of the storage nodes."
  value       = aws_security_group.this.id
}

output "role_arn" {
  description = "IAM role of the storage nodes."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the IAM role of the storage nodes."
  value       = aws_iam_role.this.name
}

output "node_rpc_port" {
  description = "UDP port of the nodes' QUIC RPC endpoint."
  value       = var.node_rpc_port
}
