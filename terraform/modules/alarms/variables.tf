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

variable "stage" {
  description = "The Stage dimension of the app's own metrics (the STAGE its functions are given)."
  type        = string

  validation {
    condition     = length(var.stage) > 0
    error_message = "stage must not be empty."
  }
}

variable "metrics_namespace" {
  description = "Namespace of the app's own metrics (chalicelib/observability/metrics.py NAMESPACE)."
  type        = string
  default     = "Broadcast"
}

variable "api" {
  description = "The WebSocket API stage to watch (ExecutionError by ApiId and Stage)."
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
  default     = ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "TransactWriteItems", "BatchGetItem", "BatchWriteItem"]

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
  description = "Faults per period (AWS/Lambda Errors plus the app's Faults) at which a function's alarm fires."
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
  description = "ExecutionError count per period at which the API alarm fires."
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

variable "jwks_failures_threshold" {
  description = "Failed fetches of the signing keys per period at which the JWKS alarm fires (one blip retries 5 s later)."
  type        = number
  default     = 2

  validation {
    condition     = var.jwks_failures_threshold > 0
    error_message = "jwks_failures_threshold must be positive."
  }
}

variable "welcome_failure_percent" {
  description = "Percentage of first messages not delivered (to connections still there) above which the alarm fires."
  type        = number
  default     = 5

  validation {
    condition     = var.welcome_failure_percent > 0 && var.welcome_failure_percent < 100
    error_message = "welcome_failure_percent must be between 0 and 100."
  }
}

variable "welcome_minimum_attempts" {
  description = "First messages per period below which the welcome ratio is not judged (a few connects are no statistic)."
  type        = number
  default     = 20

  validation {
    condition     = var.welcome_minimum_attempts >= 1
    error_message = "welcome_minimum_attempts must be at least 1."
  }
}

variable "fanout_failure_percent" {
  description = "Percentage of fan-out posts that failed (not gone) above which the alarm fires."
  type        = number
  default     = 2

  validation {
    condition     = var.fanout_failure_percent > 0 && var.fanout_failure_percent < 100
    error_message = "fanout_failure_percent must be between 0 and 100."
  }
}

variable "fanout_minimum_posts" {
  description = "Fan-out posts per period below which the fan-out ratio is not judged."
  type        = number
  default     = 100

  validation {
    condition     = var.fanout_minimum_posts >= 1
    error_message = "fanout_minimum_posts must be at least 1."
  }
}

variable "sweep_enabled" {
  description = "Whether the sweep is scheduled: its alarms (not running, not finishing) exist only then, since missing runs breach."
  type        = bool
  default     = true
}

variable "sweep_shards" {
  description = "SWEEP_SHARDS: sweep_shard runs expected per minute (for the alarm's description)."
  type        = number
  default     = 16
}

variable "sweep_unfinished_periods" {
  description = "Periods in a row with an unfinished sweep run before the alarm fires."
  type        = number
  default     = 3

  validation {
    condition     = var.sweep_unfinished_periods >= 1
    error_message = "sweep_unfinished_periods must be at least 1."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
