variable "name" {
  description = "Deployment name: prefix of resource names and value of the fjord:deployment tag."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name))
    error_message = "name must be 3-20 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

# --- network ---------------------------------------------------------------------------------------

variable "vpc_id" {
  description = "VPC to run in."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the VPC (egress to storage nodes and interface endpoints, default metrics scrapers)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (one per availability zone) for the gateway instances, and for the load balancer when it is internal."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "Spread the gateways over at least two availability zones."
  }
}

variable "public_subnet_ids" {
  description = "Public subnets for an internet-facing load balancer (internal = false). Ignored when internal."
  type        = list(string)
  default     = []
}

variable "availability_zones" {
  description = "Availability zones of private_subnet_ids, in the same order (for the zonal DNS names)."
  type        = list(string)
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

# --- load balancer and listeners --------------------------------------------------------------------

variable "internal" {
  description = "Internal load balancer (reachable from the VPC and peered networks, like MSK Serverless) or internet-facing (in public_subnet_ids)."
  type        = bool
  default     = true
}

variable "allowed_client_cidrs" {
  description = "CIDR blocks Kafka clients may connect from. Empty: the VPC CIDR only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.allowed_client_cidrs : can(cidrnetmask(c))])
    error_message = "allowed_client_cidrs must be IPv4 CIDR blocks."
  }
}

variable "tls_termination" {
  description = "Where client TLS ends. \"nlb\": TLS listeners on the NLB with the ACM certificate, plain TCP to the gateway inside the VPC (the gateway finds the cluster from the signed IAM host). \"gateway\": TCP pass-through, the gateway terminates TLS itself and also sees SNI (needs the gateway TLS listener of issue 3 and its certificate on the instance)."
  type        = string
  default     = "nlb"

  validation {
    condition     = contains(["nlb", "gateway"], var.tls_termination)
    error_message = "tls_termination must be \"nlb\" or \"gateway\"."
  }
}

variable "certificate_arn" {
  description = "ACM certificate for the TLS listeners; must cover domain_name and *.domain_name (per-cluster and per-zone names). Required when tls_termination = \"nlb\"."
  type        = string
  default     = null
}

variable "tls_policy" {
  description = "TLS security policy of the NLB listeners."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "iam_listener_port" {
  description = "Client port for SASL/IAM (AWS_MSK_IAM and OAUTHBEARER), as on MSK Serverless."
  type        = number
  default     = 9098
}

variable "enable_scram_listener" {
  description = "Also listen for SASL/SCRAM clients."
  type        = bool
  default     = false
}

variable "scram_listener_port" {
  description = "Client port for SASL/SCRAM, as on MSK."
  type        = number
  default     = 9096
}

variable "kafka_port" {
  description = "Port of the gateway's Kafka listener on the instance (FJORD_KAFKA_ADDR=0.0.0.0:<port>); both NLB listeners forward to it."
  type        = number
  default     = 9092

  validation {
    condition     = var.kafka_port > 0 && var.kafka_port < 65536
    error_message = "kafka_port must be a TCP port."
  }
}

variable "scram_target_port" {
  description = "Instance port the SCRAM listener forwards to. Null: kafka_port (one gateway listener accepts every mechanism)."
  type        = number
  default     = null
}

variable "cross_zone_load_balancing" {
  description = "Spread each zone's client connections over gateways in all zones. Off by default: clients that dial a zonal name stay in their zone (no cross-AZ data charges), and the ASG keeps the zones balanced."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Deletion protection on the load balancer."
  type        = bool
  default     = true
}

variable "access_logs_bucket" {
  description = "S3 bucket for NLB access logs (TLS listeners), under prefix lb/<name>-gateways. The data module's log bucket allows this."
  type        = string
}

variable "deregistration_delay_seconds" {
  description = "Seconds a deregistering gateway keeps its open connections before the NLB closes them."
  type        = number
  default     = 120
}

# --- DNS -------------------------------------------------------------------------------------------

variable "domain_name" {
  description = "DNS name clients use as bootstrap, e.g. \"kafka.eu-west-1.example.com\" (include the region: the Java MSK IAM client takes the region from the host name). Null: the NLB's own DNS name (only usable with tls_termination = \"gateway\", since ACM cannot issue for it)."
  type        = string
  default     = null
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone in which to create domain_name, *.domain_name (per-cluster bootstrap names) and <az>.domain_name (zonal names). Null: manage DNS yourself."
  type        = string
  default     = null
}

variable "zonal_advertised_addresses" {
  description = "Each gateway advertises <its az>.<domain_name> in Metadata responses, so a client's connections after bootstrap stay in the gateway's zone. Needs domain_name and route53_zone_id; with cross_zone_load_balancing = false."
  type        = bool
  default     = true
}

# --- instances -------------------------------------------------------------------------------------

variable "architecture" {
  description = "CPU architecture of the instances and of the fjord artifact: arm64 (Graviton) or x86_64."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "instance_type" {
  description = "Gateway instance type. Null: c7g.large (arm64) or c7i.large (x86_64). Gateways are CPU-bound (TLS, SigV4, protocol) and hold no data."
  type        = string
  default     = null
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

variable "min_size" {
  description = "Fewest gateways (at least one per zone is recommended)."
  type        = number
  default     = 3

  validation {
    condition     = var.min_size >= 1
    error_message = "min_size must be at least 1."
  }
}

variable "max_size" {
  description = "Most gateways the scaling policies may run."
  type        = number
  default     = 30
}

variable "cpu_target_percent" {
  description = "Target average CPU utilisation of the gateway group (target tracking)."
  type        = number
  default     = 55

  validation {
    condition     = var.cpu_target_percent > 10 && var.cpu_target_percent < 95
    error_message = "cpu_target_percent must be between 10 and 95."
  }
}

variable "connections_per_gateway_target" {
  description = "Target number of client connections per gateway instance (target tracking on the NLB's active flow count divided by in-service instances)."
  type        = number
  default     = 3000
}

variable "stop_timeout_seconds" {
  description = "Longest a gateway may take to drain its connections on scale-in before it is killed."
  type        = number
  default     = 120
}

variable "max_connections" {
  description = "FJORD_MAX_CONNECTIONS of each gateway."
  type        = number
  default     = 10000
}

# --- fjord -----------------------------------------------------------------------------------------

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
  description = "ARN of the DynamoDB metadata table the gateways read and write."
  type        = string
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

variable "node_rpc_port" {
  description = "UDP port of the storage nodes' QUIC RPC endpoint (egress from gateways)."
  type        = number
  default     = 7100
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

variable "extra_environment" {
  description = "Extra FJORD_* (or other) environment variables for the gateway process; they override the module's."
  type        = map(string)
  default     = {}
}

variable "log_group_name" {
  description = "CloudWatch log group for the gateways' logs."
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
