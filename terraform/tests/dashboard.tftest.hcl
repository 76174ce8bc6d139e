# Plan-level checks of modules/dashboard.

mock_provider "aws" {
  override_during = plan
  source          = "./tests"
}

variables {
  name           = "broadcast-dev"
  region         = "eu-west-1"
  stage          = "dev"
  function_names = { websocket_connect = "broadcast-dev-websocket_connect", sweep_shard = "broadcast-dev-sweep_shard" }
  api            = { id = "a1b2c3d4e5", stage_name = "dev" }
  table_names    = { sessions = "broadcast-dev-Sessions", connections = "broadcast-dev-Connections" }
}

run "the_issue_widgets" {
  command = plan

  module {
    source = "./modules/dashboard"
  }

  assert {
    condition = length(setsubtract([
      "Sessions and listeners now", "Joins (connections admitted by intent)", "Refusals by code ($connect)",
      "First message: latency (ms)", "First message: outcomes", "Sweep: runs and runs finished in time",
      "Lambda errors per function", "Lambda duration p99 per function (ms)", "Lambda throttles per function",
      "DynamoDB consumed capacity", "DynamoDB throttles (tables)",
    ], output.widget_titles)) == 0
    error_message = "Sessions and listeners now, joins and refusals by code, delivery latency and failures, sweep health, Lambda per function, DynamoDB capacity and throttles."
  }

  assert {
    condition     = strcontains(aws_cloudwatch_dashboard.this.dashboard_body, "broadcast-dev-sweep_shard") && strcontains(aws_cloudwatch_dashboard.this.dashboard_body, "broadcast-dev-Connections")
    error_message = "Lambda widgets name every function, DynamoDB widgets every table."
  }

  assert {
    condition     = output.dashboard_url == "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards/dashboard/broadcast-dev"
    error_message = "dashboard_url opens the dashboard in its region's console."
  }
}
