terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.40"
    }
  }

  # Keep state remote and locked in production, e.g.:
  # backend "s3" {
  #   bucket         = "my-terraform-state"
  #   key            = "fjord/prod.tfstate"
  #   region         = "eu-west-1"
  #   dynamodb_table = "terraform-locks"
  #   encrypt        = true
  # }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { "fjord:deployment" = var.name, "managed-by" = "terraform" })
  }
}
