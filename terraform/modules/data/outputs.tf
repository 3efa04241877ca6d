output "kms_key_arn" {
  description = "ARN of the customer-managed KMS key for data (S3, DynamoDB, EBS, CloudWatch Logs, SNS)."
  value       = aws_kms_key.this.arn
}

output "kms_key_id" {
  description = "ID of the KMS key."
  value       = aws_kms_key.this.key_id
}

output "secret_sealing_kms_key_arn" {
  description = "ARN of the KMS key wrapping the secret-sealing data key (`fjord --kms-key-id`); usable only with the encryption context fjord=secret-sealing."
  value       = aws_kms_key.secret_sealing.arn
}

output "bucket_name" {
  description = "Name of the S3 bucket for tiered data."
  value       = aws_s3_bucket.data.id
}

output "bucket_arn" {
  description = "ARN of the S3 bucket for tiered data."
  value       = aws_s3_bucket.data.arn
}

output "object_prefix" {
  description = "Key prefix of Fjord's objects in the data bucket."
  value       = var.object_prefix
}

output "log_bucket_name" {
  description = "Name of the bucket receiving S3 server access logs (prefix s3/) and load-balancer access logs (prefix lb/)."
  value       = aws_s3_bucket.logs.id
}

output "table_name" {
  description = "Name of the DynamoDB metadata table."
  value       = aws_dynamodb_table.metadata.name
}

output "table_arn" {
  description = "ARN of the DynamoDB metadata table."
  value       = aws_dynamodb_table.metadata.arn
}

output "metadata_url" {
  description = "Value of `fjord --metadata` for this table (the table is \"<prefix>-metadata\")."
  value       = "dynamodb://${var.name}?region=${local.region}"
}

output "object_store_url" {
  description = "Value of `fjord --object-store` for this bucket, prefix and KMS key."
  value       = "s3://${aws_s3_bucket.data.id}/${var.object_prefix}?region=${local.region}&sse_kms_key_id=${urlencode(aws_kms_key.this.arn)}"
}
