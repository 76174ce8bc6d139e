"""Configuration of the local stack, read once from the environment."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional

import attrs

#: API Gateway's documented WebSocket limits (API Gateway developer guide,
#: "Amazon API Gateway quotas for configuring and running a WebSocket API").
IDLE_TIMEOUT_SECONDS = 600.0
MAX_CONNECTION_SECONDS = 7200.0
MAX_FRAME_BYTES = 32 * 1024
MAX_MESSAGE_BYTES = 128 * 1024
#: Lambda's payload quota for synchronous invocations (Lambda developer guide,
#: "Lambda quotas": 6 MB request and response).
MAX_INVOKE_PAYLOAD_BYTES = 6 * 1024 * 1024


def _positive_float(instance, attribute, value):
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _port(instance, attribute, value):
    if not 0 <= value <= 65535:
        raise ValueError(f"{attribute.name} must be a port number, got {value!r}")


@attrs.frozen(kw_only=True)
class Settings:
    """Everything the local stack needs to know; safe defaults throughout."""

    host: str = "127.0.0.1"
    port: int = attrs.field(default=8000, validator=_port)
    stage: str = "dev"
    region: str = "us-east-1"
    account_id: str = "123456789012"
    #: API Gateway ids are 10 lower-case alphanumerics.
    api_id: str = "local00api"
    #: Module name (``app``) or path to a ``.py`` file holding the Chalice app.
    app: str = "app"
    app_dir: Path = attrs.field(factory=Path.cwd, converter=Path)
    #: External AWS endpoint (LocalStack...); None starts an embedded moto.
    aws_endpoint_url: Optional[str] = None
    moto_port: int = attrs.field(default=4566, validator=_port)
    create_tables: bool = True
    idle_timeout: float = attrs.field(default=IDLE_TIMEOUT_SECONDS, validator=_positive_float)
    max_connection_duration: float = attrs.field(
        default=MAX_CONNECTION_SECONDS, validator=_positive_float
    )
    #: Run every scheduled function at this period instead of its expression.
    schedule_period: Optional[float] = attrs.field(default=None, validator=_positive_float)
    #: Where the issuer's signing key lives (ignored by git).
    state_dir: Path = attrs.field(default=Path(".local"), converter=Path)
    #: How long a server-initiated close waits for the client's close frame.
    close_timeout: float = attrs.field(default=2.0, validator=_positive_float)
    #: Handler threads: no more than the app's DynamoDB connection pool
    #: (chalicelib/aws.py, 32), or calls beyond it open connections urllib3 then
    #: discards; under one GIL, more threads would not run more Python anyway.
    max_workers: int = 32
    #: ``make run``'s one-line summary, for each period of this many seconds in
    #: which anything was connected or counted (0: never).
    summary_period: float = 60.0
    #: Key of the keyed hashes that stand in for connection ids in the log
    #: (``PRIVACY_KEY``, the app's variable); None: a random key per run.
    privacy_key: Optional[str] = attrs.field(default=None, repr=False)

    @classmethod
    def from_environ(cls, environ: Optional[Mapping[str, str]] = None, **overrides) -> "Settings":
        """Read ``HOST``, ``PORT``, ``GATEWAY_*``, ``MOTO_PORT``... from ``environ``."""
        env = os.environ if environ is None else environ
        values = {}

        def take(name, key, convert=str):
            raw = env.get(name)
            if raw is None or raw == "":
                return
            try:
                values[key] = convert(raw)
            except ValueError:
                raise ValueError(f"{name}: expected {convert.__name__}, got {raw!r}") from None

        take("HOST", "host")
        take("PORT", "port", int)
        take("GATEWAY_STAGE", "stage")
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if region:
            values["region"] = region
        take("GATEWAY_API_ID", "api_id")
        take("LOCAL_APP", "app")
        take("LOCAL_APP_DIR", "app_dir", Path)
        take("AWS_ENDPOINT_URL", "aws_endpoint_url")
        take("MOTO_PORT", "moto_port", int)
        take("GATEWAY_IDLE_TIMEOUT_SECONDS", "idle_timeout", float)
        take("GATEWAY_MAX_CONNECTION_SECONDS", "max_connection_duration", float)
        take("GATEWAY_SCHEDULE_PERIOD_SECONDS", "schedule_period", float)
        take("LOCAL_STATE_DIR", "state_dir", Path)
        take("PRIVACY_KEY", "privacy_key")
        take("GATEWAY_SUMMARY_SECONDS", "summary_period", float)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
