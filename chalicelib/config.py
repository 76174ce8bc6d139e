"""Configuration, read from environment variables once at cold start.

Every setting has a documented default (README, "Configuration"). Durations accept
decimals so tests can shrink minutes to seconds. Invalid values raise
:class:`ConfigError` naming the variable, which fails the cold start loudly instead
of misbehaving later.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping, Optional, Tuple, TypeVar

import attrs

from chalicelib.languages import DEFAULT_SUPPORTED_LANGUAGES, is_language_code

T = TypeVar("T")

QUALITY_TIERS = ("standard", "premium")
AUDIO_SINKS = ("none", "relay", "kinesis")
TOKEN_USES = ("id", "access")


class ConfigError(ValueError):
    """A configuration variable is missing or malformed."""


def _number(name: str, raw: str, *, minimum: float, integer: bool = False) -> float:
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name} must be {kind}, got {raw!r}") from None
    if value != value or value < minimum:  # NaN or below the floor
        raise ConfigError(f"{name} must be >= {minimum}, got {raw!r}")
    return value


def _languages(name: str, raw: str) -> Tuple[str, ...]:
    codes = tuple(dict.fromkeys(c.strip() for c in raw.split(",") if c.strip()))
    if not codes:
        raise ConfigError(f"{name} must list at least one language code, got {raw!r}")
    bad = [c for c in codes if not is_language_code(c)]
    if bad:
        raise ConfigError(
            f"{name} must hold ISO 639-1 codes (two lower-case letters), got {bad!r}"
        )
    return codes


def _choice(name: str, raw: str, choices: Tuple[str, ...]) -> str:
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


@attrs.frozen(kw_only=True)
class Config:
    sessions_table: str = "Sessions"
    connections_table: str = "Connections"
    rate_limits_table: str = "RateLimits"

    session_max_duration_hours: float = 2.0
    max_listeners_per_session: int = 500
    connection_refresh_minutes: float = 100.0
    connection_warning_minutes: float = 105.0
    connection_max_duration_minutes: float = 120.0
    heartbeat_interval_seconds: float = 30.0
    heartbeat_timeout_seconds: float = 90.0
    speaker_reconnect_grace_seconds: float = 0.0

    supported_languages: Tuple[str, ...] = DEFAULT_SUPPORTED_LANGUAGES

    token_issuer: str = ""
    token_audience: str = ""
    token_use: str = "id"
    jwks_url: str = ""
    jwks_refetch_cooldown_seconds: float = 300.0

    management_api_url: Optional[str] = None
    welcome_function_name: str = "deliver_welcome"
    welcome_delivery_timeout_seconds: float = 5.0

    rate_limit_connects_per_minute: int = 1000
    rate_limit_sessions_per_hour: int = 20

    audio_sink: str = "none"
    audio_stream_name: str = ""
    publish_concurrency: int = 16

    log_level: str = "INFO"

    def __attrs_post_init__(self) -> None:
        # The notices only make sense in this order; a warning after the forced close
        # would never be seen.
        if not (
            self.connection_refresh_minutes
            <= self.connection_warning_minutes
            <= self.connection_max_duration_minutes
        ):
            raise ConfigError(
                "expected CONNECTION_REFRESH_MINUTES <= CONNECTION_WARNING_MINUTES <= "
                "CONNECTION_MAX_DURATION_MINUTES, got "
                f"{self.connection_refresh_minutes} / {self.connection_warning_minutes}"
                f" / {self.connection_max_duration_minutes}"
            )
        if self.heartbeat_timeout_seconds <= self.heartbeat_interval_seconds:
            raise ConfigError(
                "HEARTBEAT_TIMEOUT_SECONDS must exceed HEARTBEAT_INTERVAL_SECONDS, got "
                f"{self.heartbeat_timeout_seconds} <= {self.heartbeat_interval_seconds}"
            )
        if self.audio_sink == "kinesis" and not self.audio_stream_name:
            raise ConfigError("AUDIO_SINK=kinesis requires AUDIO_STREAM_NAME")

    # --- derived values -------------------------------------------------------

    @property
    def session_max_duration_seconds(self) -> int:
        return max(1, round(self.session_max_duration_hours * 3600))

    @property
    def connection_ttl_seconds(self) -> int:
        """Connection rows outlive the longest session by an hour, then TTL reaps them."""
        return self.session_max_duration_seconds + 3600

    @property
    def effective_jwks_url(self) -> str:
        if self.jwks_url:
            return self.jwks_url
        if self.token_issuer:
            return self.token_issuer.rstrip("/") + "/.well-known/jwks.json"
        return ""

    # --- construction ---------------------------------------------------------

    @classmethod
    def from_environ(cls, environ: Optional[Mapping[str, str]] = None) -> "Config":
        env = os.environ if environ is None else environ

        def get(name: str, parse: Callable[[str, str], T], default: T) -> T:
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                return default
            return parse(name, raw.strip())

        def text(name: str, default: str) -> str:
            return get(name, lambda _n, raw: raw, default)

        def positive(name: str, default: float) -> float:
            return get(name, lambda n, r: _number(n, r, minimum=0.001), default)

        return cls(
            sessions_table=text("SESSIONS_TABLE", "Sessions"),
            connections_table=text("CONNECTIONS_TABLE", "Connections"),
            rate_limits_table=text("RATE_LIMITS_TABLE", "RateLimits"),
            session_max_duration_hours=positive("SESSION_MAX_DURATION_HOURS", 2.0),
            max_listeners_per_session=get(
                "MAX_LISTENERS_PER_SESSION",
                lambda n, r: int(_number(n, r, minimum=1, integer=True)),
                500,
            ),
            connection_refresh_minutes=positive("CONNECTION_REFRESH_MINUTES", 100.0),
            connection_warning_minutes=positive("CONNECTION_WARNING_MINUTES", 105.0),
            connection_max_duration_minutes=positive(
                "CONNECTION_MAX_DURATION_MINUTES", 120.0
            ),
            heartbeat_interval_seconds=positive("HEARTBEAT_INTERVAL_SECONDS", 30.0),
            heartbeat_timeout_seconds=positive("HEARTBEAT_TIMEOUT_SECONDS", 90.0),
            speaker_reconnect_grace_seconds=get(
                "SPEAKER_RECONNECT_GRACE_SECONDS",
                lambda n, r: _number(n, r, minimum=0),
                0.0,
            ),
            supported_languages=get(
                "SUPPORTED_LANGUAGES", _languages, DEFAULT_SUPPORTED_LANGUAGES
            ),
            token_issuer=text("TOKEN_ISSUER", ""),
            token_audience=text("TOKEN_AUDIENCE", ""),
            token_use=get("TOKEN_USE", lambda n, r: _choice(n, r, TOKEN_USES), "id"),
            jwks_url=text("JWKS_URL", ""),
            jwks_refetch_cooldown_seconds=get(
                "JWKS_REFETCH_COOLDOWN_SECONDS",
                lambda n, r: _number(n, r, minimum=0),
                300.0,
            ),
            management_api_url=get(
                "MANAGEMENT_API_URL", lambda _n, r: r.rstrip("/"), None
            ),
            welcome_function_name=text("WELCOME_FUNCTION_NAME", "deliver_welcome"),
            welcome_delivery_timeout_seconds=positive(
                "WELCOME_DELIVERY_TIMEOUT_SECONDS", 5.0
            ),
            rate_limit_connects_per_minute=get(
                "RATE_LIMIT_CONNECTS_PER_MINUTE",
                lambda n, r: int(_number(n, r, minimum=0, integer=True)),
                1000,
            ),
            rate_limit_sessions_per_hour=get(
                "RATE_LIMIT_SESSIONS_PER_HOUR",
                lambda n, r: int(_number(n, r, minimum=0, integer=True)),
                20,
            ),
            audio_sink=get("AUDIO_SINK", lambda n, r: _choice(n, r, AUDIO_SINKS), "none"),
            audio_stream_name=text("AUDIO_STREAM_NAME", ""),
            publish_concurrency=get(
                "PUBLISH_CONCURRENCY",
                lambda n, r: int(_number(n, r, minimum=1, integer=True)),
                16,
            ),
            log_level=get(
                "LOG_LEVEL",
                lambda n, r: _choice(
                    n, r.upper(), ("DEBUG", "INFO", "WARNING", "ERROR")
                ),
                "INFO",
            ),
        )
