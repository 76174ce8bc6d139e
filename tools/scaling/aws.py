"""AWS prices, default quotas and call latencies the model uses, with their sources.

Prices are public on-demand list prices for us-east-1 as read on PRICES_READ_ON
from the pages named; check them again there before relying on a cost (the `search`
tool's docs/pages corpora hold copies of these pages). Quotas are the documented
defaults. Latencies are assumptions (see LATENCY_MS).
"""

from __future__ import annotations

import attrs

PRICES_READ_ON = "2026-12-02"
REGION = "us-east-1"


@attrs.frozen
class Price:
    value: float  # USD per unit
    unit: str
    source: str


PRICES = {
    "apigw_message": Price(1.00 / 1e6, "message (32 KB metered), first 1 billion a month; $0.80/M beyond",
                           "https://aws.amazon.com/api-gateway/pricing/"),
    "apigw_connection_minute": Price(0.25 / 1e6, "connection minute",
                                     "https://aws.amazon.com/api-gateway/pricing/"),
    "lambda_request": Price(0.20 / 1e6, "invocation", "https://aws.amazon.com/lambda/pricing/"),
    "lambda_gb_second": Price(0.0000166667, "GB-second (x86_64, first 6 billion a month)",
                              "https://aws.amazon.com/lambda/pricing/"),
    "dynamodb_wru": Price(0.625 / 1e6, "write request unit (on-demand, since the November 2024 cut)",
                          "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "dynamodb_rru": Price(0.125 / 1e6, "read request unit (on-demand)",
                          "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "kinesis_gb_in": Price(0.08, "GB written, each record rounded up to 1 KB (on-demand)",
                           "https://aws.amazon.com/kinesis/data-streams/pricing/"),
    "kinesis_stream_hour": Price(0.04, "on-demand stream-hour",
                                 "https://aws.amazon.com/kinesis/data-streams/pricing/"),
    "logs_gb": Price(0.50, "GB ingested (CloudWatch Logs standard; Lambda's own logs are tiered down from this)",
                     "https://aws.amazon.com/cloudwatch/pricing/"),
    "transfer_out_gb": Price(0.09, "GB out to the internet (first 10 TB a month; less beyond)",
                             "https://aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer"),
}


@attrs.frozen
class Quota:
    name: str
    limit: float
    unit: str
    adjustable: str  # "yes" (AWS raises it on request), "no", or "project" (our own setting)
    source: str


LAMBDA_LIMITS = "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"
WEBSOCKET_LIMITS = "https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html"
APIGW_LIMITS = "https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html"
DYNAMODB_LIMITS = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html"
DYNAMODB_PARTITIONS = "https://repost.aws/knowledge-center/on-demand-table-throttling-dynamodb"
KINESIS_LIMITS = "https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html"

QUOTAS = {
    "lambda_concurrency": Quota(
        "Lambda concurrent executions (Region)", 1000, "executions", "yes", LAMBDA_LIMITS),
    "lambda_sync_rate": Quota(
        "Lambda synchronous invocations per function (10 x the concurrency quota)", 10_000,
        "invocations/s", "yes", LAMBDA_LIMITS),
    "lambda_scaling": Quota(
        "Lambda scaling rate per function", 1000, "new environments per 10 s", "no",
        "https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html"),
    "apigw_new_connections": Quota(
        "API Gateway WebSocket new connections (account, Region)", 500, "connections/s", "yes",
        WEBSOCKET_LIMITS),
    "apigw_account_rps": Quota(
        "API Gateway account throttle (WebSocket messages, connects and @connections calls)",
        10_000, "requests/s", "yes", APIGW_LIMITS),
    "apigw_route_rps": Quota(
        "API Gateway stage route throttle (terraform throttling_rate_limit, per route)", 10_000,
        "requests/s", "project", "terraform/variables.tf"),
    "dynamodb_table_rru": Quota(
        "DynamoDB on-demand reads per table or GSI", 40_000, "RRU/s", "yes", DYNAMODB_LIMITS),
    "dynamodb_table_wru": Quota(
        "DynamoDB on-demand writes per table or GSI", 40_000, "WRU/s", "yes", DYNAMODB_LIMITS),
    "dynamodb_partition": Quota(
        "DynamoDB partition (3,000 RRU/s or 1,000 WRU/s, or a linear combination)", 1.0,
        "of a partition", "no", DYNAMODB_PARTITIONS),
    "kinesis_shard_records": Quota(
        "Kinesis shard writes (one session's records share a shard: partition key = session)",
        1000, "records/s", "no", KINESIS_LIMITS),
    "kinesis_shard_bytes": Quota(
        "Kinesis shard write bytes (one session's records share a shard)", 1.0, "MB/s", "no",
        KINESIS_LIMITS),
    "kinesis_stream_bytes": Quota(
        "Kinesis on-demand stream write throughput (us-east-1 maximum)", 10_240, "MB/s", "yes",
        KINESIS_LIMITS),
}

# Typical in-Region latency of one call from a warm Lambda, in ms. Assumptions, not
# measurements: DynamoDB is documented as "single-digit millisecond" for item
# operations (https://aws.amazon.com/dynamodb/); a transaction does a prepare and a
# commit round, so about twice a write; @connections, Lambda's Invoke and Kinesis
# PutRecord are HTTPS calls to a regional endpoint, typically 10-20 ms. Change them
# with --latency OP=MS to see how durations and concurrency move.
LATENCY_MS = {
    "dynamodb.GetItem": 4.0,
    "dynamodb.BatchGetItem": 5.0,
    "dynamodb.Query": 6.0,
    "dynamodb.PutItem": 6.0,
    "dynamodb.UpdateItem": 6.0,
    "dynamodb.DeleteItem": 6.0,
    "dynamodb.BatchWriteItem": 10.0,
    "dynamodb.TransactWriteItems": 15.0,
    "apigatewaymanagementapi.PostToConnection": 15.0,
    "apigatewaymanagementapi.DeleteConnection": 15.0,
    "apigatewaymanagementapi.GetConnection": 10.0,
    "lambda.Invoke": 15.0,
    "kinesis.PutRecord": 15.0,
}

# Lambda gives a function CPU in proportion to its memory; at 1,769 MB it has the
# equivalent of one vCPU (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html).
# Our measured CPU time is stretched by 1769 / memory below that.
FULL_VCPU_MB = 1769

# Log lines per request, bytes (assumptions: a text START/END/REPORT triple from
# Lambda for each invocation; one JSON access-log line of the 16 fields in
# terraform/modules/websocket_api/variables.tf per API Gateway request).
LAMBDA_LOG_BYTES = 320
ACCESS_LOG_BYTES = 450
