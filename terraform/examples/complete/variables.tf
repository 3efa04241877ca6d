variable "region" {
  description = "AWS region to deploy into, e.g. \"eu-west-1\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "name" {
  description = "Deployment name: prefix of every resource, and the metadata table prefix (table \"<name>-metadata\")."
  type        = string
  default     = "fjord"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name))
    error_message = "name must be 3-20 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "availability_zones" {
  description = "Availability zones (pin them in production). Empty: the region's first three."
  type        = list(string)
  default     = []
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.42.0.0/16"
}

variable "nat_gateway_mode" {
  description = "none, single or per_az (see the network module). Fjord needs none: AWS APIs are reached through VPC endpoints."
  type        = string
  default     = "none"
}

variable "internal" {
  description = "Keep the Kafka and control-plane endpoints internal to the VPC (as MSK Serverless does). false: internet-facing load balancers in public subnets."
  type        = bool
  default     = true
}

variable "allowed_client_cidrs" {
  description = "CIDR blocks allowed to reach the Kafka listeners and the control-plane API. Empty: the VPC CIDR."
  type        = list(string)
  default     = []
}

variable "kafka_domain_name" {
  description = "Bootstrap DNS name of the Kafka endpoint, containing the region, e.g. \"kafka.eu-west-1.example.com\". Clusters get <cluster>.<kafka_domain_name>, zones <az>.<kafka_domain_name>."
  type        = string
}

variable "kafka_certificate_arn" {
  description = "ACM certificate (same region) for kafka_domain_name and *.kafka_domain_name."
  type        = string
}

variable "enable_control_plane" {
  description = "Deploy the control-plane API (needs a fjord release with the `control-plane` role, issue 3)."
  type        = bool
  default     = true
}

variable "control_plane_domain_name" {
  description = "DNS name of the control-plane API, e.g. \"kafka-api.eu-west-1.example.com\"."
  type        = string
}

variable "control_plane_certificate_arn" {
  description = "ACM certificate (same region) for control_plane_domain_name."
  type        = string
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone for the DNS records. Null: create them yourself from the load_balancer outputs."
  type        = string
  default     = null
}

variable "enable_scram_listener" {
  description = "Open the SASL/SCRAM listener on 9096 besides SASL/IAM on 9098."
  type        = bool
  default     = false
}

variable "architecture" {
  description = "arm64 (Graviton, default) or x86_64: must match the fjord artifact."
  type        = string
  default     = "arm64"
}

variable "ami_id" {
  description = "AMI with fjord pre-baked (then leave fjord_artifact null). Null: latest Amazon Linux 2023 and the artifact installed at boot."
  type        = string
  default     = null
}

variable "fjord_artifact" {
  description = "Release artifact installed at boot: bucket, key (binary or .tar.gz) and SHA-256. Null when ami_id has fjord pre-baked."
  type = object({
    bucket = string
    key    = string
    sha256 = string
  })
  default = null
}

variable "gateway_max_size" {
  description = "Most gateway instances."
  type        = number
  default     = 30
}

variable "storage_max_size_per_az" {
  description = "Most storage nodes per zone."
  type        = number
  default     = 10
}

variable "wal_volume_size_gb" {
  description = "Size of each storage node's WAL volume in GiB."
  type        = number
  default     = 100
}

variable "deletion_protection" {
  description = "Deletion protection on the metadata table and the load balancers. Switch off and apply before `terraform destroy`."
  type        = bool
  default     = true
}

variable "force_destroy_buckets" {
  description = "Let `terraform destroy` delete the buckets with their objects (all tiered data). Only for throw-away deployments."
  type        = bool
  default     = false
}

variable "alarm_email" {
  description = "E-mail address for alarm notifications. Null: subscribe to the alarm topic yourself."
  type        = string
  default     = null
}

variable "create_autoscaling_service_linked_role" {
  description = "Create the EC2 Auto Scaling service-linked role (only in an account that has never used Auto Scaling)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
