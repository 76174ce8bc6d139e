variable "name_prefix" {
  description = "Prefix of the topic and alarm names (e.g. broadcast-dev)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,200}$", var.name_prefix))
    error_message = "name_prefix must be 1 to 200 characters of a-z, A-Z, 0-9, '_' and '-'."
  }
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (the recipient must confirm the subscription). null for none."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be null or an e-mail address."
  }
}

variable "sns_kms_key_id" {
  description = "KMS key for the topic. It must be a customer managed key whose policy lets cloudwatch.amazonaws.com use it (the AWS managed alias/aws/sns key would silently drop alarm notifications). null: unencrypted."
  type        = string
  default     = null
}

variable "function_names" {
  description = "Deployed Lambda function name, by Chalice function name: each gets an Errors and a Throttles alarm."
  type        = map(string)
}

variable "api" {
  description = "The WebSocket API stage to watch (IntegrationError and ExecutionError by ApiId and Stage)."
  type = object({
    id         = string
    stage_name = string
  })
}

variable "tables" {
  description = "DynamoDB tables to watch, by role: table name and its global secondary index names."
  type = map(object({
    name                     = string
    global_secondary_indexes = optional(list(string), [])
  }))
}

variable "dynamodb_operations" {
  description = "Operations whose SystemErrors are summed per table (SystemErrors is only emitted per TableName and Operation)."
  type        = list(string)
  default     = ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "TransactWriteItems"]

  validation {
    condition     = length(var.dynamodb_operations) >= 1 && length(var.dynamodb_operations) <= 9
    error_message = "Between 1 and 9 operations (an alarm holds at most 10 metrics, one of them the sum)."
  }
}

variable "period_seconds" {
  description = "Period over which each metric is summed."
  type        = number
  default     = 300

  validation {
    condition     = var.period_seconds >= 60 && var.period_seconds % 60 == 0
    error_message = "period_seconds must be a multiple of 60."
  }
}

variable "evaluation_periods" {
  description = "Number of periods over which each alarm is evaluated."
  type        = number
  default     = 1

  validation {
    condition     = var.evaluation_periods >= 1
    error_message = "evaluation_periods must be at least 1."
  }
}

variable "lambda_errors_threshold" {
  description = "Lambda Errors per period at which a function's alarm fires."
  type        = number
  default     = 1

  validation {
    condition     = var.lambda_errors_threshold > 0
    error_message = "lambda_errors_threshold must be positive."
  }
}

variable "lambda_throttles_threshold" {
  description = "Lambda Throttles per period at which a function's alarm fires."
  type        = number
  default     = 1

  validation {
    condition     = var.lambda_throttles_threshold > 0
    error_message = "lambda_throttles_threshold must be positive."
  }
}

variable "api_errors_threshold" {
  description = "IntegrationError / ExecutionError count per period at which the API alarms fire."
  type        = number
  default     = 5

  validation {
    condition     = var.api_errors_threshold > 0
    error_message = "api_errors_threshold must be positive."
  }
}

variable "dynamodb_throttles_threshold" {
  description = "Read or write throttle events (table plus indexes) per period at which a table's alarm fires."
  type        = number
  default     = 1

  validation {
    condition     = var.dynamodb_throttles_threshold > 0
    error_message = "dynamodb_throttles_threshold must be positive."
  }
}

variable "dynamodb_system_errors_threshold" {
  description = "SystemErrors per period (all operations) at which a table's alarm fires."
  type        = number
  default     = 1

  validation {
    condition     = var.dynamodb_system_errors_threshold > 0
    error_message = "dynamodb_system_errors_threshold must be positive."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
