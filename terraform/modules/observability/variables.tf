variable "name" {
  description = "Deployment name: prefix of log groups, alarms and the SNS topic."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name))
    error_message = "name must be 3-20 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key encrypting the log groups, the SNS topic and the SSM parameter."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the Fjord log groups, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention period CloudWatch Logs accepts."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace into which the instances' CloudWatch agents publish fjord's Prometheus metrics."
  type        = string
  default     = "Fjord"
}

variable "metrics_port" {
  description = "Port of fjord's Prometheus endpoint on every instance."
  type        = number
  default     = 9464
}

variable "scrape_interval" {
  description = "Scrape interval in the rendered Prometheus configuration."
  type        = string
  default     = "30s"

  validation {
    condition     = can(regex("^[0-9]+(ms|s|m)$", var.scrape_interval))
    error_message = "scrape_interval must be a Prometheus duration such as 15s or 1m."
  }
}

variable "metric_names" {
  description = "Names of the Prometheus metrics the alarms watch (as exported by fjord's metrics endpoint): wal_fsync_p99 (gauge, seconds), tiering_lag (gauge, seconds of the oldest WAL byte not yet in S3), throttled_requests (counter)."
  type = object({
    wal_fsync_p99      = string
    tiering_lag        = string
    throttled_requests = string
  })
  default = {
    wal_fsync_p99      = "fjord_wal_fsync_p99_seconds"
    tiering_lag        = "fjord_tiering_lag_seconds"
    throttled_requests = "fjord_throttled_requests_total"
  }
}

variable "gateway_autoscaling_group_name" {
  description = "Name of the gateways' Auto Scaling group."
  type        = string
}

variable "gateway_max_size" {
  description = "Maximum size of the gateways' group (the at-max alarm threshold)."
  type        = number
}

variable "gateway_load_balancer_arn_suffix" {
  description = "ARN suffix of the gateways' NLB."
  type        = string
}

variable "gateway_target_group_arn_suffixes" {
  description = "ARN suffixes of the gateways' target groups, by instance port."
  type        = map(string)
}

variable "storage_autoscaling_group_names" {
  description = "Storage-node Auto Scaling group per availability zone."
  type        = map(string)
}

variable "storage_max_size_per_az" {
  description = "Maximum size of each storage-node group (the at-max alarm threshold)."
  type        = number
}

variable "table_name" {
  description = "Name of the DynamoDB metadata table (throttling alarm)."
  type        = string
}

variable "wal_fsync_p99_threshold_ms" {
  description = "Alarm when the p99 WAL fsync latency of any storage node stays above this many milliseconds (3 of 5 minutes). Produce latency is at least this."
  type        = number
  default     = 50
}

variable "tiering_lag_threshold_seconds" {
  description = "Alarm when the oldest WAL data not yet uploaded to S3 is older than this (5 minutes in a row): S3 trouble, or a node that cannot keep up; the WAL volume fills."
  type        = number
  default     = 120
}

variable "throttled_requests_threshold" {
  description = "Alarm when gateways throttle more than this many Kafka requests in 5 minutes (a tenant at its quota, or the fleet at capacity)."
  type        = number
  default     = 1000
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (confirm the subscription mail). Null: subscribe yourself."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
