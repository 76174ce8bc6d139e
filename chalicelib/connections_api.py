"""The API Gateway ``@connections`` management API: send and close.

A 410 GoneException is an expected outcome (the client left) and is returned as
``False``, never raised; it is recognised by error code *or* by status, because a
bare 410 without the ``x-amzn-ErrorType`` header surfaces as a generic ClientError.
Other failures raise :class:`DeliveryFailed`.
"""

from __future__ import annotations

import logging

from chalicelib.wire.messages import encode

logger = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """A send or close failed for a reason other than the connection being gone."""


def _is_gone(exc) -> bool:
    response = getattr(exc, "response", {}) or {}
    code = response.get("Error", {}).get("Code")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code == "GoneException" or status == 410


def management_endpoint(config, api_id: str, stage: str, region: str) -> str:
    """The configured endpoint, else the one API Gateway gives every WebSocket API."""
    if config.management_api_url:
        return config.management_api_url
    return f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}"


class ConnectionsApi:
    def __init__(self, client) -> None:
        self._client = client

    def _call(self, operation: str, connection_id: str, **kwargs) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            getattr(self._client, operation)(ConnectionId=connection_id, **kwargs)
            return True
        except ClientError as exc:
            if _is_gone(exc):
                return False
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            raise DeliveryFailed(f"{operation} {code}") from None
        except BotoCoreError as exc:
            raise DeliveryFailed(f"{operation} {type(exc).__name__}") from None

    def send(self, connection_id: str, message) -> bool:
        """Post one message (a dict, or bytes already encoded). False if gone."""
        data = message if isinstance(message, bytes) else encode(message)
        return self._call("post_to_connection", connection_id, Data=data)

    def say_and_close(self, connection_id: str, message: dict) -> bool:
        """Send a last message, then close; False if the connection was gone."""
        if not self.send(connection_id, message):
            return False
        self.close(connection_id)
        return True

    def close(self, connection_id: str) -> bool:
        """Close the socket (the client sees 1000; ``$disconnect`` follows).
        False if it was already gone."""
        return self._call("delete_connection", connection_id)
