terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.76.0, < 6.0" # python3.13 runtime; event rule `state` (5.27.0): see ../../versions.tf
    }
  }
}
