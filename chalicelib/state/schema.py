"""The one definition of the DynamoDB tables, shared by the store, the local
bootstrap, the tests, and checked against Terraform's (tests/terraform).
"""

from __future__ import annotations

from typing import Dict, Iterable

# Sessions being swept: active ones, and ended ones until their connections are
# released. Sparse (only they carry sweepShard), spread over SWEEP_SHARDS partition
# keys, and projecting only what the sweep decides on: a write to a session item
# that changes none of these (listener counts, sequence numbers, broadcast state:
# nearly all writes) does not touch the index at all.
SESSIONS_SWEEP_INDEX = "sweep-index"
SWEEP_PROJECTION = ("status", "speakerConnectionId", "speakerDisconnectedAt", "endedReason")
# Every connection of a session, listeners by language ("member" is the listener's
# language, or SPEAKER_MEMBER for speaker connections, which sorts after every
# language code): fan-out reads one language or all listeners, the sweep reads
# everything of a session in one query.
CONNECTIONS_MEMBERS_INDEX = "session-members-index"
SPEAKER_MEMBER = "~speaker"

SESSIONS_TTL_ATTRIBUTE = "expiresAt"
CONNECTIONS_TTL_ATTRIBUTE = "ttl"
RATE_LIMITS_TTL_ATTRIBUTE = "expiresAt"


def _gsi(name: str, hash_key: str, range_key: str, include=None) -> dict:
    projection = {"ProjectionType": "ALL"}
    if include:
        projection = {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(include)}
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": range_key, "KeyType": "RANGE"},
        ],
        "Projection": projection,
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
                {"AttributeName": "sweepShard", "AttributeType": "N"},
                {"AttributeName": "expiresAt", "AttributeType": "N"},
            ],
            "GlobalSecondaryIndexes": [
                _gsi(SESSIONS_SWEEP_INDEX, "sweepShard", "expiresAt", SWEEP_PROJECTION)
            ],
        },
        config.connections_table: {
            "TableName": config.connections_table,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "connectionId", "KeyType": "HASH"}],
            "AttributeDefinitions": [
                {"AttributeName": "connectionId", "AttributeType": "S"},
                {"AttributeName": "sessionId", "AttributeType": "S"},
                {"AttributeName": "member", "AttributeType": "S"},
            ],
            "GlobalSecondaryIndexes": [
                _gsi(CONNECTIONS_MEMBERS_INDEX, "sessionId", "member")
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
