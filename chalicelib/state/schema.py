"""The one definition of the DynamoDB tables, shared by the store, the local
bootstrap, the tests, and checked against Terraform's (tests/terraform).
"""

from __future__ import annotations

from typing import Dict, Iterable

SESSIONS_STATUS_INDEX = "status-expiresAt-index"
CONNECTIONS_SESSION_INDEX = "sessionId-targetLanguage-index"

SESSIONS_TTL_ATTRIBUTE = "expiresAt"
CONNECTIONS_TTL_ATTRIBUTE = "ttl"
RATE_LIMITS_TTL_ATTRIBUTE = "expiresAt"


def _gsi(name: str, hash_key: str, range_key: str) -> dict:
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": range_key, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


def table_definitions(config) -> Dict[str, dict]:
    """CreateTable keyword arguments per logical table, keyed by the table's name."""
    return {
        config.sessions_table: {
            "TableName": config.sessions_table,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "sessionId", "KeyType": "HASH"}],
            "AttributeDefinitions": [
                {"AttributeName": "sessionId", "AttributeType": "S"},
                {"AttributeName": "status", "AttributeType": "S"},
                {"AttributeName": "expiresAt", "AttributeType": "N"},
            ],
            "GlobalSecondaryIndexes": [
                _gsi(SESSIONS_STATUS_INDEX, "status", "expiresAt")
            ],
        },
        config.connections_table: {
            "TableName": config.connections_table,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "connectionId", "KeyType": "HASH"}],
            "AttributeDefinitions": [
                {"AttributeName": "connectionId", "AttributeType": "S"},
                {"AttributeName": "sessionId", "AttributeType": "S"},
                {"AttributeName": "targetLanguage", "AttributeType": "S"},
            ],
            "GlobalSecondaryIndexes": [
                _gsi(CONNECTIONS_SESSION_INDEX, "sessionId", "targetLanguage")
            ],
        },
        config.rate_limits_table: {
            "TableName": config.rate_limits_table,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "limitKey", "KeyType": "HASH"}],
            "AttributeDefinitions": [
                {"AttributeName": "limitKey", "AttributeType": "S"}
            ],
        },
    }


def ttl_attributes(config) -> Dict[str, str]:
    return {
        config.sessions_table: SESSIONS_TTL_ATTRIBUTE,
        config.connections_table: CONNECTIONS_TTL_ATTRIBUTE,
        config.rate_limits_table: RATE_LIMITS_TTL_ATTRIBUTE,
    }


def ensure_tables(dynamodb_client, config) -> Iterable[str]:
    """Create missing tables (with TTL enabled) and return the names it created.

    For local development and tests; in AWS, Terraform owns the tables.
    """
    existing = set()
    for page in dynamodb_client.get_paginator("list_tables").paginate():
        existing.update(page["TableNames"])
    created = []
    ttl = ttl_attributes(config)
    for name, definition in table_definitions(config).items():
        if name in existing:
            continue
        dynamodb_client.create_table(**definition)
        dynamodb_client.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        dynamodb_client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl[name]},
        )
        created.append(name)
    return created
