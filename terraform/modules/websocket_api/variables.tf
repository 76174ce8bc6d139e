variable "name" {
  description = "Name of the WebSocket API (e.g. broadcast-dev-websocket-api)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,128}$", var.name))
    error_message = "name must be 1 to 128 characters of a-z, A-Z, 0-9, '_' and '-'."
  }
}

variable "description" {
  description = "Description of the API."
  type        = string
  default     = "Real-time multilingual audio broadcasting: WebSocket sessions."
}

variable "stage_name" {
  description = "Name of the API stage; it is the last path segment of the wss:// URL and of the @connections endpoint."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,128}$", var.stage_name)) && var.stage_name != "$default"
    error_message = "stage_name must be 1 to 128 characters of a-z, A-Z, 0-9, '_' and '-'."
  }
}

variable "routes" {
  description = "Lambda function behind each route key: the Chalice websocket handlers (function_name is the deployed name)."
  type = map(object({
    function_name = string
    invoke_arn    = string
  }))

  validation {
    condition     = alltrue([for key in ["$connect", "$default", "$disconnect"] : contains(keys(var.routes), key)])
    error_message = "routes must define $connect, $default and $disconnect."
  }

  validation {
    condition     = alltrue([for key in keys(var.routes) : contains(["$connect", "$default", "$disconnect"], key)])
    error_message = "All messages arrive at $default (the app dispatches on the body's action): no other route keys."
  }
}

variable "authorizer" {
  description = "Lambda function of the REQUEST authorizer attached to $connect (deployed name and invoke ARN)."
  type = object({
    function_name = string
    invoke_arn    = string
  })
}

variable "throttling_burst_limit" {
  description = "Default route burst limit (requests) of the stage (default: the account's default burst)."
  type        = number
  default     = 5000

  validation {
    condition     = var.throttling_burst_limit >= 0 && floor(var.throttling_burst_limit) == var.throttling_burst_limit
    error_message = "throttling_burst_limit must be a non-negative integer."
  }
}

variable "throttling_rate_limit" {
  description = "Default route steady-state rate limit (requests per second) of the stage (default: the account's default rate)."
  type        = number
  default     = 10000

  validation {
    condition     = var.throttling_rate_limit >= 0
    error_message = "throttling_rate_limit must be non-negative."
  }
}

variable "detailed_metrics_enabled" {
  description = "Emit per-route CloudWatch metrics (billed extra). Stage-level metrics are always emitted."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of the access log group, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key ARN to encrypt the access log group with. null uses CloudWatch Logs' default encryption."
  type        = string
  default     = null
}

variable "access_log_format" {
  description = "Fields of the JSON access log line: name to $context variable of WebSocket APIs. Never the connection id or the client address (the app logs a keyed hash of the first and nothing of the second; API Gateway can log only raw values)."
  type        = map(string)
  default = {
    requestId          = "$context.requestId"
    requestTime        = "$context.requestTimeEpoch"
    eventType          = "$context.eventType"
    routeKey           = "$context.routeKey"
    status             = "$context.status"
    userAgent          = "$context.identity.userAgent"
    integrationStatus  = "$context.integrationStatus"
    integrationError   = "$context.integration.error"
    integrationLatency = "$context.integrationLatency"
    authorizerStatus   = "$context.authorizer.status"
    authorizerError    = "$context.authorizer.error"
    errorMessage       = "$context.error.message"
    errorResponseType  = "$context.error.responseType"
    messageId          = "$context.messageId"
  }

  validation {
    condition     = contains(keys(var.access_log_format), "requestId") || contains(values(var.access_log_format), "$context.requestId")
    error_message = "The access log format must include $context.requestId."
  }

  validation {
    condition = alltrue([for value in values(var.access_log_format) : !strcontains(value, "$context.connectionId") && !strcontains(value, "$context.identity.sourceIp")])
    # A raw connection id lets anyone who reads the log post to that listener;
    # a client address is personal data. The app's own log lines carry neither.
    error_message = "The access log must not hold $context.connectionId or $context.identity.sourceIp."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
