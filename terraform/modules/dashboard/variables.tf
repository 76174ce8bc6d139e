variable "name" {
  description = "Dashboard name (e.g. broadcast-dev)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,255}$", var.name))
    error_message = "name must be 1 to 255 characters of a-z, A-Z, 0-9, '_' and '-'."
  }
}

variable "region" {
  description = "Region of the metrics (and of the console URL)."
  type        = string
}

variable "stage" {
  description = "The Stage dimension of the app's own metrics."
  type        = string
}

variable "metrics_namespace" {
  description = "Namespace of the app's own metrics."
  type        = string
  default     = "Broadcast"
}

variable "sweep_shards" {
  description = "SWEEP_SHARDS: how many shard runs make one sweep (sessions now = average per run x shards)."
  type        = number
  default     = 16

  validation {
    condition     = var.sweep_shards >= 1
    error_message = "sweep_shards must be at least 1."
  }
}

variable "function_names" {
  description = "Deployed function name, by Chalice function name."
  type        = map(string)
}

variable "api" {
  description = "The WebSocket API stage."
  type = object({
    id         = string
    stage_name = string
  })
}

variable "table_names" {
  description = "Table name, by role (sessions, connections, rate_limits)."
  type        = map(string)
}
