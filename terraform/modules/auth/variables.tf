variable "name" {
  description = "Name of the user pool (e.g. broadcast-dev-speakers); the app client is <name>-client."
  type        = string

  validation {
    condition     = can(regex("^[\\w\\s+=,.@-]{1,128}$", var.name))
    error_message = "name must be 1 to 128 characters of letters, digits, spaces and + = , . @ - _."
  }
}

variable "region" {
  description = "Region of the user pool: the tokens' issuer is https://cognito-idp.<region>.amazonaws.com/<pool id>."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be a region name such as us-east-1."
  }
}

variable "deletion_protection" {
  description = "Refuse deleting the user pool (and its speakers) until turned off (prod)."
  type        = bool
  default     = false
}

variable "password_minimum_length" {
  description = "Minimum length of speakers' passwords."
  type        = number
  default     = 12

  validation {
    condition     = var.password_minimum_length >= 8 && var.password_minimum_length <= 99
    error_message = "password_minimum_length must be between 8 and 99."
  }
}

variable "id_token_validity_minutes" {
  description = "Lifetime of ID and access tokens, in minutes (Cognito allows 5 to 1440). Short: the token travels in a URL."
  type        = number
  default     = 60

  validation {
    condition     = var.id_token_validity_minutes >= 5 && var.id_token_validity_minutes <= 1440
    error_message = "id_token_validity_minutes must be between 5 and 1440."
  }
}

variable "refresh_token_validity_days" {
  description = "Lifetime of refresh tokens, in days (Cognito allows 1 to 3650)."
  type        = number
  default     = 30

  validation {
    condition     = var.refresh_token_validity_days >= 1 && var.refresh_token_validity_days <= 3650
    error_message = "refresh_token_validity_days must be between 1 and 3650."
  }
}

variable "jwks_base_url" {
  description = "Base URL of an emulator's Cognito (moto serves the keys at <base>/<pool id>/.well-known/jwks.json). null: AWS, where the keys are at <issuer>/.well-known/jwks.json."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to the user pool."
  type        = map(string)
  default     = {}
}
