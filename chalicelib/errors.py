"""The one exception hierarchy of the service.

Each subclass carries the wire ``code`` and the HTTP ``status`` used when it refuses
a ``$connect``; after the handshake the same code travels in an ``error`` message.
They become replies in one place per kind of reply: :mod:`chalicelib.wire.responses`
for a ``$connect`` refusal, :mod:`chalicelib.router` for an ``error`` message.
"""

from __future__ import annotations


class BroadcastError(Exception):
    code = "INTERNAL_ERROR"
    status = 500
    default_message = "internal error"
    # A fault of ours (counted in the Faults metric, which alarms), not a refusal
    # that routine client behaviour earns.
    fault = True

    def __init__(self, message: str = "") -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def to_body(self) -> dict:
        return {"code": self.code, "message": self.message}


# -- 400: the request itself is wrong -------------------------------------------
class BadRequest(BroadcastError):
    status = 400
    fault = False


class MissingParameter(BadRequest):
    code = "MISSING_PARAMETER"


class InvalidSessionId(BadRequest):
    code = "INVALID_SESSION_ID"
    default_message = "sessionId must look like faithful-shepherd-427"


class InvalidLanguage(BadRequest):
    code = "INVALID_LANGUAGE"


class UnsupportedLanguage(BadRequest):
    code = "UNSUPPORTED_LANGUAGE"


class InvalidQualityTier(BadRequest):
    code = "INVALID_QUALITY_TIER"


class InvalidAction(BadRequest):
    code = "INVALID_ACTION"


class InvalidParameter(BadRequest):
    code = "INVALID_PARAMETER"


class InvalidMessage(BadRequest):
    code = "INVALID_MESSAGE"


class UnknownAction(BadRequest):
    code = "UNKNOWN_ACTION"


# -- 401 / 403: who is asking ---------------------------------------------------
class Unauthorized(BroadcastError):
    code = "UNAUTHORIZED"
    status = 401
    default_message = "a valid speaker token is required"
    fault = False


class Forbidden(BroadcastError):
    code = "FORBIDDEN"
    status = 403
    default_message = "this role may not do that"
    fault = False


class ConnectionReplaced(Forbidden):
    code = "CONNECTION_REPLACED"
    default_message = (
        "this connection was replaced by a refreshed one; act through the new connection"
    )


# -- 404 / 503: the state of the world ------------------------------------------
class SessionNotFound(BroadcastError):
    code = "SESSION_NOT_FOUND"
    status = 404
    default_message = "no active session with this id"
    fault = False


class SessionFull(BroadcastError):
    code = "SESSION_FULL"
    status = 503
    default_message = "the session has reached its listener limit"
    fault = False


class ServiceUnavailable(BroadcastError):
    code = "SERVICE_UNAVAILABLE"
    status = 503
    default_message = "the state store is unavailable, retry shortly"


class KeysUnavailable(ServiceUnavailable):
    """The authorizer could not fetch the signing keys: its own metric
    (JwksFetchFailures) and alarm say so, not Faults."""

    default_message = "speaker tokens cannot be checked right now, retry"
    fault = False


class ConnectNotCompleted(ServiceUnavailable):
    """The first message could not be handed to delivery: the connect is undone."""

    default_message = "could not complete the connection, retry"


class SessionIdExhausted(ServiceUnavailable):
    code = "SERVICE_UNAVAILABLE"
    default_message = "could not allocate a session id, retry shortly"


class InvalidAudio(BadRequest):
    code = "INVALID_AUDIO"


class AudioTooLarge(BadRequest):
    code = "AUDIO_TOO_LARGE"


class RateLimited(BroadcastError):
    code = "RATE_LIMITED"
    status = 429
    default_message = "too many requests, slow down"
    fault = False
