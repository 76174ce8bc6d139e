"""Errors become responses here, and only here. No stack trace reaches a client."""

from __future__ import annotations

import json
import logging

from chalicelib import errors

logger = logging.getLogger(__name__)


def connect_refusal(exc: Exception) -> dict:
    """The ``$connect`` response for a failure: its status refuses the handshake."""
    if not isinstance(exc, errors.BroadcastError):
        logger.exception("unexpected error in $connect")
        exc = errors.BroadcastError()
    return {
        "statusCode": exc.status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(exc.to_body()),
    }


def connect_accepted() -> dict:
    return {"statusCode": 200}
