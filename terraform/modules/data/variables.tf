variable "name" {
  description = "Deployment name: prefix of resource names. The metadata table is \"<name>-metadata\", which is what `--metadata dynamodb://<name>?region=...` opens."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name))
    error_message = "name must be 3-20 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "bucket_name" {
  description = "Name of the S3 bucket for tiered data. Null: \"<name>-data-<account id>-<region>\"."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name."
  }
}

variable "object_prefix" {
  description = "Key prefix under which Fjord keeps its objects. IAM policies grant access to this prefix only."
  type        = string
  default     = "fjord"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]*$", var.object_prefix))
    error_message = "object_prefix must be one path segment of letters, digits, '_', '.' or '-' (no slashes)."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days a deleted or overwritten object version is kept (versioning protects against accidental deletes; Fjord itself never overwrites an object)."
  type        = number
  default     = 7

  validation {
    condition     = var.noncurrent_version_retention_days >= 1
    error_message = "noncurrent_version_retention_days must be at least 1."
  }
}

variable "abort_incomplete_multipart_days" {
  description = "Days after which an unfinished multipart upload (a crashed uploader) is aborted and its parts deleted."
  type        = number
  default     = 1

  validation {
    condition     = var.abort_incomplete_multipart_days >= 1
    error_message = "abort_incomplete_multipart_days must be at least 1."
  }
}

variable "access_log_retention_days" {
  description = "Days S3 server access logs and load-balancer access logs are kept in the log bucket."
  type        = number
  default     = 365

  validation {
    condition     = var.access_log_retention_days >= 1
    error_message = "access_log_retention_days must be at least 1."
  }
}

variable "force_destroy" {
  description = "Allow `terraform destroy` to delete the buckets even when they still hold objects. Leave false in production: it deletes all tiered data."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "DynamoDB deletion protection on the metadata table. Must be switched off (and applied) before the table can be destroyed."
  type        = bool
  default     = true
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the KMS keys (data, secret sealing) are deleted after `terraform destroy` (7-30 days); they can be restored during it."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

variable "kms_admin_role_arns" {
  description = "IAM principals (ARNs) allowed to administer the KMS keys (data, secret sealing), besides the account root (whose IAM policies decide the rest)."
  type        = list(string)
  default     = []
}

variable "autoscaling_service_role_arn" {
  description = "ARN of the IAM role EC2 Auto Scaling uses to launch instances; it needs the KMS key to create the encrypted EBS volumes. Null: the account's service-linked role AWSServiceRoleForAutoScaling."
  type        = string
  default     = null
}

variable "create_autoscaling_service_linked_role" {
  description = "Create the EC2 Auto Scaling service-linked role. Only for accounts that have never used Auto Scaling (the role exists once per account; creating it twice fails)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
