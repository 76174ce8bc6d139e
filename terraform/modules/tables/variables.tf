variable "table_names" {
  description = "Name of each table, by role. The app reads them from SESSIONS_TABLE, CONNECTIONS_TABLE and RATE_LIMITS_TABLE."
  type = object({
    sessions    = string
    connections = string
    rate_limits = string
  })

  validation {
    condition = alltrue([
      for name in values(var.table_names) : can(regex("^[a-zA-Z0-9_.-]{3,255}$", name))
    ])
    error_message = "Each table name must be 3 to 255 characters of a-z, A-Z, 0-9, '_', '-' and '.'."
  }

  validation {
    condition     = length(distinct(values(var.table_names))) == 3
    error_message = "The three table names must differ."
  }
}

variable "point_in_time_recovery_enabled" {
  description = "Enable point-in-time recovery (continuous backups) on every table."
  type        = bool
  default     = false
}

variable "deletion_protection_enabled" {
  description = "Refuse DeleteTable on every table (turn on for production; turn off before destroying)."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for server-side encryption. null uses the AWS owned key (DynamoDB's default)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be null or a KMS key ARN (arn:aws:kms:...)."
  }
}

variable "tags" {
  description = "Tags added to every table."
  type        = map(string)
  default     = {}
}
