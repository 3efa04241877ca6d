output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "IPv4 CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "availability_zones" {
  description = "Availability zones in use, in subnet order."
  value       = local.azs
}

output "private_subnet_ids" {
  description = "Private subnet IDs, one per availability zone, in the order of availability_zones."
  value       = aws_subnet.private[*].id
}

output "private_subnet_ids_by_az" {
  description = "Private subnet ID per availability zone name."
  value       = zipmap(local.azs, aws_subnet.private[*].id)
}

output "public_subnet_ids" {
  description = "Public subnet IDs (empty when create_public_subnets is false and there is no NAT gateway)."
  value       = aws_subnet.public[*].id
}

output "s3_prefix_list_id" {
  description = "Prefix list of the S3 gateway endpoint, for security-group egress rules."
  value       = aws_vpc_endpoint.s3.prefix_list_id
}

output "dynamodb_prefix_list_id" {
  description = "Prefix list of the DynamoDB gateway endpoint, for security-group egress rules."
  value       = aws_vpc_endpoint.dynamodb.prefix_list_id
}

output "s3_endpoint_id" {
  description = "ID of the S3 gateway endpoint (usable in aws:SourceVpce conditions)."
  value       = aws_vpc_endpoint.s3.id
}

output "dynamodb_endpoint_id" {
  description = "ID of the DynamoDB gateway endpoint."
  value       = aws_vpc_endpoint.dynamodb.id
}

output "has_nat" {
  description = "Whether the private subnets have a route to the internet through NAT."
  value       = local.nat_count > 0
}
