# Optional: the browser pages (web/) as a static site on S3 + CloudFront, with
# a config.js naming this stage's WebSocket URL (modules/static_site). Off by
# default; `static_site_enabled = true` in a stage's tfvars turns it on.
# Everything about it lives in this file: its variables, the module, its outputs.

variable "static_site_enabled" {
  description = "Deploy the listener and speaker pages as a static site (S3 + CloudFront)."
  type        = bool
  default     = false
}

variable "static_site_cognito" {
  description = "Optional Hosted UI sign-in on the speaker page: {domain, client_id, redirect_uri?} of the user pool's Hosted UI and a public app client (callback <site>/speak). null: speakers paste a token."
  type = object({
    domain       = string
    client_id    = string
    redirect_uri = optional(string)
  })
  default = null
}

variable "static_site_aliases" {
  description = "Custom domain names for the site; needs static_site_acm_certificate_arn."
  type        = list(string)
  default     = []
}

variable "static_site_acm_certificate_arn" {
  description = "ACM certificate in us-east-1 covering static_site_aliases."
  type        = string
  default     = null
}

variable "static_site_force_destroy" {
  description = "Let terraform destroy the site's bucket with its objects."
  type        = bool
  default     = false
}

module "static_site" {
  source = "./modules/static_site"
  count  = var.static_site_enabled ? 1 : 0

  name                       = "${var.app_name}-${var.stage}-site"
  websocket_url              = module.websocket_api.stage_invoke_url
  heartbeat_interval_seconds = var.heartbeat_interval_seconds
  languages                  = length(var.supported_languages) > 0 ? var.supported_languages : null
  cognito                    = var.static_site_cognito
  aliases                    = var.static_site_aliases
  acm_certificate_arn        = var.static_site_acm_certificate_arn
  force_destroy              = var.static_site_force_destroy
}

output "static_site_listen_url" {
  description = "The listener page of the static site (null when static_site_enabled is false)."
  value       = one(module.static_site[*].listen_url)
}

output "static_site_speak_url" {
  description = "The speaker page of the static site (null when static_site_enabled is false)."
  value       = one(module.static_site[*].speak_url)
}

output "static_site_cloudfront_distribution_id" {
  description = "CloudFront distribution of the static site, for invalidations (null when disabled)."
  value       = one(module.static_site[*].cloudfront_distribution_id)
}
