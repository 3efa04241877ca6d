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
  description = "CIDR of the VPC (interface endpoints, default metrics scrapers)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (one per availability zone) for the control-plane instances, and for its load balancer when internal."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "Spread the control plane over at least two availability zones."
  }
}

variable "public_subnet_ids" {
  description = "Public subnets for an internet-facing control-plane load balancer (internal = false). Ignored when internal."
  type        = list(string)
  default     = []
}

variable "internal" {
  description = "Internal load balancer (reachable from the VPC and peered networks) or internet-facing."
  type        = bool
  default     = true
}

variable "allowed_client_cidrs" {
  description = "CIDR blocks allowed to call the control-plane API. Empty: the VPC CIDR only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.allowed_client_cidrs : can(cidrnetmask(c))])
    error_message = "allowed_client_cidrs must be IPv4 CIDR blocks."
  }
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS endpoint; must cover domain_name."
  type        = string
}

variable "tls_policy" {
  description = "TLS security policy of the HTTPS listener."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "listener_port" {
  description = "Port of the HTTPS endpoint."
  type        = number
  default     = 443
}

variable "api_port" {
  description = "Port of the control-plane HTTP listener on the instance (FJORD_CONTROL_PLANE_ADDR=0.0.0.0:<port>); TLS ends at the NLB."
  type        = number
  default     = 9080
}

variable "domain_name" {
  description = "DNS name of the control-plane endpoint, e.g. \"kafka-api.eu-west-1.example.com\". Null: the NLB's DNS name (the certificate cannot match it, so clients would have to skip verification: set it in production)."
  type        = string
  default     = null
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone in which to create domain_name. Null: manage DNS yourself."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Deletion protection on the load balancer."
  type        = bool
  default     = true
}

variable "access_logs_bucket" {
  description = "S3 bucket for NLB access logs, under prefix lb/<name>-control-plane."
  type        = string
}

variable "instance_type" {
  description = "Control-plane instance type. Null: t4g.small (arm64) or t3.small (x86_64); the API is light."
  type        = string
  default     = null
}

variable "min_size" {
  description = "Fewest control-plane instances (two keep the API up through a zone failure)."
  type        = number
  default     = 2

  validation {
    condition     = var.min_size >= 1
    error_message = "min_size must be at least 1."
  }
}

variable "max_size" {
  description = "Most control-plane instances."
  type        = number
  default     = 4
}

variable "cpu_target_percent" {
  description = "Target average CPU utilisation of the control-plane group."
  type        = number
  default     = 50
}

variable "stop_timeout_seconds" {
  description = "Longest an instance may take to finish in-flight API calls on scale-in."
  type        = number
  default     = 60
}

variable "object_store_url" {
  description = "FJORD_OBJECT_STORE: s3://<bucket>/<prefix>?region=...&sse_kms_key_id=... (from the data module). This role uses it only for the wrapped secret-sealing key (<prefix>/_fjord/secret-sealing.key)."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the data bucket; the role may read and create only <prefix>/_fjord/secret-sealing.key in it."
  type        = string
}

variable "object_prefix" {
  description = "Key prefix of Fjord's objects in the data bucket (from the data module)."
  type        = string
}

variable "secret_sealing_kms_key_arn" {
  description = "FJORD_KMS_KEY_ID: ARN of the KMS key wrapping the secret-sealing data key (from the data module). The role may call GenerateDataKeyWithoutPlaintext and Decrypt with it only under the encryption context fjord=secret-sealing."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the data KMS key: EBS encryption, and SSE-KMS of the secret-sealing key object in S3."
  type        = string
}

variable "extra_environment" {
  description = "Extra FJORD_* (or other) environment variables for the control-plane process; they override the module's."
  type        = map(string)
  default     = {}
}

variable "s3_prefix_list_id" {
  description = "Prefix list of the S3 gateway endpoint (egress for the artifact download)."
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
  description = "ARN of the DynamoDB metadata table the control plane reads and writes."
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
  description = "CloudWatch log group for the control plane's logs."
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

variable "node_rpc_port" {
  description = "UDP port of the storage nodes' QUIC RPC endpoint (egress from the control plane)."
  type        = number
  default     = 7100
}

variable "kafka_bootstrap_brokers" {
  description = "Bootstrap broker string of the gateways (SASL/IAM), returned by GetBootstrapBrokers (FJORD_BOOTSTRAP_BROKERS)."
  type        = string
}

variable "kafka_domain_name" {
  description = "DNS name under which each cluster gets its own bootstrap name <cluster>.<kafka_domain_name> (FJORD_CLUSTER_DOMAIN). Null: every cluster uses kafka_bootstrap_brokers."
  type        = string
  default     = null
}
