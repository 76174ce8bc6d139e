output "site_url" {
  description = "https:// address of the site (its first alias, else the cloudfront.net name)."
  value       = local.site_origin
}

output "listen_url" {
  description = "The listener page; share links are <listen_url>?session=<id>."
  value       = "${local.site_origin}/listen"
}

output "speak_url" {
  description = "The speaker page (also the Hosted UI callback URL to register)."
  value       = "${local.site_origin}/speak"
}

output "bucket_name" {
  description = "Name of the private bucket holding the pages."
  value       = aws_s3_bucket.this.id
}

output "cloudfront_distribution_id" {
  description = "ID of the CloudFront distribution (for invalidations)."
  value       = aws_cloudfront_distribution.this.id
}

output "cloudfront_domain_name" {
  description = "The distribution's cloudfront.net domain name (the target of alias CNAMEs)."
  value       = aws_cloudfront_distribution.this.domain_name
}

output "config" {
  description = "The settings written to config.js (window.BROADCAST_CONFIG)."
  value       = local.config
}
