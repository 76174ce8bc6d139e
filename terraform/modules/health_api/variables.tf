variable "name" {
  description = "Name of the HTTP API (e.g. broadcast-dev-health)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,128}$", var.name))
    error_message = "name must be 1 to 128 characters of a-z, A-Z, 0-9, '_' and '-'."
  }
}

variable "function" {
  description = "The function serving the route (Chalice's api_handler): its name and invoke ARN."
  type = object({
    name       = string
    invoke_arn = string
  })
}

variable "timeout_milliseconds" {
  description = "Integration timeout (HTTP APIs allow 50 to 30,000 ms); a slower check is a failed one."
  type        = number
  default     = 10000

  validation {
    condition     = var.timeout_milliseconds >= 50 && var.timeout_milliseconds <= 30000
    error_message = "timeout_milliseconds must be between 50 and 30000."
  }
}

variable "throttling_rate_limit" {
  description = "Requests per second the route accepts (uptime monitors need a few a minute)."
  type        = number
  default     = 5

  validation {
    condition     = var.throttling_rate_limit > 0
    error_message = "throttling_rate_limit must be positive."
  }
}

variable "throttling_burst_limit" {
  description = "Burst the route accepts above the rate."
  type        = number
  default     = 10

  validation {
    condition     = var.throttling_burst_limit >= 0 && floor(var.throttling_burst_limit) == var.throttling_burst_limit
    error_message = "throttling_burst_limit must be a non-negative integer."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
