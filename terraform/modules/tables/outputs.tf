output "table_names" {
  description = "Table name by role (sessions, connections, rate_limits)."
  value       = { for key, table in aws_dynamodb_table.this : key => table.name }
}

output "table_arns" {
  description = "Table ARN by role."
  value       = { for key, table in aws_dynamodb_table.this : key => table.arn }
}

output "index_arns" {
  description = "ARN of each global secondary index, by role and index name."
  value = {
    for key, table in aws_dynamodb_table.this : key => {
      for index in keys(local.schema[key].global_secondary_indexes) : index => "${table.arn}/index/${index}"
    }
  }
}

output "index_names" {
  description = "Global secondary index names, by role."
  value       = { for key, spec in local.schema : key => keys(spec.global_secondary_indexes) }
}

output "ttl_attributes" {
  description = "TTL attribute name, by role."
  value       = { for key, spec in local.schema : key => spec.ttl_attribute }
}
