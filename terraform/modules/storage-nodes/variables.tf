variable "name" {
  description = "Deployment name: prefix of resource names and value of the fjord:deployment tag."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name))
    error_message = "name must be 3-20 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC to run in."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the VPC (node-to-node RPC, interface endpoints, default metrics scrapers)."
  type        = string
}

variable "s3_prefix_list_id" {
  description = "Prefix list of the S3 gateway endpoint (tiered data, artifact download)."
  type        = string
}

variable "dynamodb_prefix_list_id" {
  description = "Prefix list of the DynamoDB gateway endpoint (egress to the metadata table)."
  type        = string
}

variable "allow_internet_egress" {
  description = "Allow HTTPS egress to 0.0.0.0/0 (only useful with a NAT gateway, e.g. for package mirrors outside AWS)."
  type        = bool
  default     = false
}

variable "subnet_ids_by_az" {
  description = "Private subnet per availability zone (from the network module). One storage-node Auto Scaling group is created per zone, so a node and the WAL volumes it may adopt share a zone."
  type        = map(string)

  validation {
    condition     = length(var.subnet_ids_by_az) >= 2
    error_message = "Give at least two zones (three recommended)."
  }
}

variable "gateway_security_group_id" {
  description = "Security group of the gateways, allowed to reach the nodes' QUIC RPC port."
  type        = string
}

variable "rpc_client_security_group_ids" {
  description = "Further security groups allowed to reach the nodes' QUIC RPC port (e.g. the control plane's)."
  type        = list(string)
  default     = []
}

variable "instance_type" {
  description = "Storage-node instance type. Null: m7g.xlarge (arm64) or m7i.xlarge (x86_64). Memory feeds the tail and block caches; network bandwidth bounds ingest plus tiering."
  type        = string
  default     = null
}

variable "wal_volume_size_gb" {
  description = "Size of each node's gp3 WAL volume in GiB. The WAL holds only data not yet tiered to S3 (seconds to minutes of ingest), so size follows the longest S3 outage to ride through."
  type        = number
  default     = 100

  validation {
    condition     = var.wal_volume_size_gb >= 10 && var.wal_volume_size_gb <= 16384
    error_message = "wal_volume_size_gb must be between 10 and 16384."
  }
}

variable "wal_volume_iops" {
  description = "Provisioned IOPS of each gp3 WAL volume (3000 are included in the gp3 price)."
  type        = number
  default     = 3000

  validation {
    condition     = var.wal_volume_iops >= 3000 && var.wal_volume_iops <= 16000
    error_message = "wal_volume_iops must be between 3000 and 16000."
  }
}

variable "wal_volume_throughput_mbps" {
  description = "Provisioned throughput of each gp3 WAL volume in MiB/s (125 are included in the gp3 price). Bounds a node's ingest."
  type        = number
  default     = 250

  validation {
    condition     = var.wal_volume_throughput_mbps >= 125 && var.wal_volume_throughput_mbps <= 1000
    error_message = "wal_volume_throughput_mbps must be between 125 and 1000."
  }
}

variable "wal_volume_delete_on_termination" {
  description = "Delete a node's WAL volume with its instance. Keep false: acked data that is not yet in S3 lives only on that volume, and the controller must be able to attach it to a survivor after the instance died. Cleanly drained nodes delete their own volume on scale-in."
  type        = bool
  default     = false
}

variable "min_size_per_az" {
  description = "Fewest storage nodes per zone."
  type        = number
  default     = 1

  validation {
    condition     = var.min_size_per_az >= 1
    error_message = "min_size_per_az must be at least 1 (a zone without a node cannot adopt its WAL volumes)."
  }
}

variable "max_size_per_az" {
  description = "Most storage nodes per zone the capacity provider may run."
  type        = number
  default     = 10
}

variable "drain_timeout_seconds" {
  description = "Longest a storage node may take to drain on scale-in (hand its partitions over, upload its WAL tail) before the lifecycle hook lets the instance go anyway (its volume is then recovered like a failed node's)."
  type        = number
  default     = 900

  validation {
    condition     = var.drain_timeout_seconds >= 60 && var.drain_timeout_seconds <= 7000
    error_message = "drain_timeout_seconds must be between 60 and 7000 (the lifecycle heartbeat limit is 7200)."
  }
}

variable "object_store_url" {
  description = "FJORD_OBJECT_STORE: s3://<bucket>/<prefix>?region=...&sse_kms_key_id=... (from the data module)."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the data bucket."
  type        = string
}

variable "object_prefix" {
  description = "Key prefix of Fjord's objects; the nodes' S3 permissions are limited to it."
  type        = string
}

variable "secret_sealing_kms_key_arn" {
  description = "FJORD_KMS_KEY_ID: ARN of the KMS key wrapping the secret-sealing data key (from the data module). The role may call GenerateDataKeyWithoutPlaintext and Decrypt with it only under the encryption context fjord=secret-sealing."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the data KMS key: SSE-KMS on S3, EBS encryption (including attaching a failed node's volume)."
  type        = string
}

variable "node_rpc_port" {
  description = "UDP port of the node's QUIC RPC endpoint (FJORD_NODE_RPC_ADDR=<private ip>:<port>)."
  type        = number
  default     = 7100
}

variable "extra_environment" {
  description = "Extra FJORD_* (or other) environment variables for the storage-node process; they override the module's."
  type        = map(string)
  default     = {}
}

variable "architecture" {
  description = "CPU architecture of the instances and of the fjord artifact: arm64 (Graviton) or x86_64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "ami_id" {
  description = "AMI for the instances (e.g. one with fjord pre-baked). Null: the latest Amazon Linux 2023 from ami_ssm_parameter."
  type        = string
  default     = null
}

variable "ami_ssm_parameter" {
  description = "SSM parameter holding the AMI id when ami_id is null. Null: the public Amazon Linux 2023 parameter for the architecture."
  type        = string
  default     = null
}

variable "root_volume_size_gb" {
  description = "Root volume size in GiB."
  type        = number
  default     = 16
}

variable "fjord_artifact" {
  description = "Release artifact installed at boot: S3 bucket and key of the fjord binary (or a .tar.gz containing it) and its SHA-256. Null: the AMI already contains fjord at binary_path."
  type = object({
    bucket = string
    key    = string
    sha256 = string
  })
  default = null

  validation {
    condition     = var.fjord_artifact == null || can(regex("^[0-9a-f]{64}$", var.fjord_artifact.sha256))
    error_message = "fjord_artifact.sha256 must be 64 lower-case hex digits."
  }
}

variable "binary_path" {
  description = "Where the fjord binary is (installed) on the instance."
  type        = string
  default     = "/usr/local/bin/fjord"
}

variable "metadata_url" {
  description = "FJORD_METADATA: dynamodb://<prefix>?region=<region> (from the data module)."
  type        = string
}

variable "table_arn" {
  description = "ARN of the DynamoDB metadata table the storage nodes read and write."
  type        = string
}

variable "metrics_port" {
  description = "Port of fjord's Prometheus endpoint on each instance (FJORD_METRICS_ADDR=0.0.0.0:<port>)."
  type        = number
  default     = 9464
}

variable "metrics_allowed_cidrs" {
  description = "CIDR blocks of Prometheus servers allowed to scrape metrics_port. Empty: the VPC CIDR."
  type        = list(string)
  default     = []
}

variable "log_group_name" {
  description = "CloudWatch log group for the storage nodes' logs."
  type        = string
}

variable "log_group_arn" {
  description = "ARN of log_group_name (IAM scope)."
  type        = string
}

variable "metrics_log_group_name" {
  description = "CloudWatch log group receiving the embedded-metric-format records of the Prometheus metrics."
  type        = string
}

variable "metrics_log_group_arn" {
  description = "ARN of metrics_log_group_name (IAM scope)."
  type        = string
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of fjord's own metrics."
  type        = string
  default     = "Fjord"
}

variable "install_cloudwatch_agent" {
  description = "Install the CloudWatch agent with dnf at boot (set false when the AMI already has it)."
  type        = bool
  default     = true
}

variable "enable_ssm_session_manager" {
  description = "Attach AmazonSSMManagedInstanceCore so operators can open shells through Session Manager (no SSH, no open port)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
