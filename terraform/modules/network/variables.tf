variable "name" {
  description = "Deployment name: prefix of every resource name and value of the fjord:deployment tag."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name))
    error_message = "name must be 3-20 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR block of the VPC. Split into one private and one public subnet per availability zone."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && try(tonumber(split("/", var.vpc_cidr)[1]) <= 20, false)
    error_message = "vpc_cidr must be a valid IPv4 CIDR block of /20 or larger."
  }
}

variable "availability_zones" {
  description = "Availability zones to use (names, e.g. [\"eu-west-1a\", \"eu-west-1b\", \"eu-west-1c\"]). Empty: the first az_count zones of the region that are available."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.availability_zones) == 0 || length(var.availability_zones) >= 2
    error_message = "Give at least two availability zones (three recommended), or none to pick them automatically."
  }
}

variable "az_count" {
  description = "Number of availability zones to pick when availability_zones is empty."
  type        = number
  default     = 3

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6
    error_message = "az_count must be between 2 and 6."
  }
}

variable "create_public_subnets" {
  description = "Create public subnets (and an internet gateway). Needed only for internet-facing load balancers or NAT gateways; gateways, storage nodes and the control plane always run in private subnets."
  type        = bool
  default     = true
}

variable "nat_gateway_mode" {
  description = "Outbound internet access for the private subnets: \"none\" (all AWS traffic goes through VPC endpoints), \"single\" (one NAT gateway) or \"per_az\" (one per zone, survives a zone failure). Fjord's data path never uses it: S3 and DynamoDB are reached through gateway endpoints."
  type        = string
  default     = "none"

  validation {
    condition     = contains(["none", "single", "per_az"], var.nat_gateway_mode)
    error_message = "nat_gateway_mode must be one of none, single, per_az."
  }
}

variable "interface_endpoints" {
  description = "AWS services reached through interface VPC endpoints (PrivateLink) from the private subnets. The defaults are what the instances need without NAT: KMS, STS, CloudWatch Logs and metrics, EC2 (WAL volume hand-over), Auto Scaling (lifecycle hooks, capacity), SSM (Session Manager, parameters)."
  type        = set(string)
  default     = ["kms", "sts", "logs", "monitoring", "ec2", "autoscaling", "ssm", "ssmmessages", "ec2messages"]
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key that encrypts the VPC flow-log log group."
  type        = string
}

variable "flow_log_retention_days" {
  description = "Retention of the VPC flow-log log group, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "flow_log_traffic_type" {
  description = "Which traffic the VPC flow log records: ACCEPT, REJECT or ALL."
  type        = string
  default     = "REJECT"

  validation {
    condition     = contains(["ACCEPT", "REJECT", "ALL"], var.flow_log_traffic_type)
    error_message = "flow_log_traffic_type must be ACCEPT, REJECT or ALL."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
