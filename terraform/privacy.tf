################################################################################
# Privacy key (PRIVACY_KEY)
#
# The functions replace client addresses, user ids and connection ids with keyed
# hashes (HMAC-SHA256) in rate-limit keys and logs. The key is random per stack:
# uuid() is evaluated once, at creation, and ignore_changes keeps it stable across
# plans (terraform_data is built into Terraform; no random provider is needed).
# It lives in the Terraform state, which must be protected anyway.
################################################################################

variable "privacy_key" {
  description = "PRIVACY_KEY: key of the keyed hashes in rate-limit keys and logs. null: a random key generated once for this stack."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.privacy_key == null || length(coalesce(var.privacy_key, "-")) >= 16
    error_message = "privacy_key must be null or at least 16 characters."
  }
}

resource "terraform_data" "privacy_key" {
  input = uuid()

  lifecycle {
    ignore_changes = [input]
  }
}

locals {
  privacy_key = coalesce(var.privacy_key, terraform_data.privacy_key.output)
}
