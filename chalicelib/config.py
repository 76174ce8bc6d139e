"""Configuration, read from environment variables once at cold start.

Each setting is declared once, as a field of :class:`Config`: its environment
variable, parser, default and documentation live together in the field's metadata.
``Config.from_environ`` and the README's configuration table (checked by a test)
are both derived from those declarations. Durations accept decimals so tests can
shrink minutes to seconds. An invalid value raises :class:`ConfigError` naming the
variable, which fails the cold start loudly instead of misbehaving later.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, Mapping, Optional, Tuple

import attrs

from chalicelib.wire.languages import DEFAULT_SUPPORTED_LANGUAGES, is_language_code

QUALITY_TIERS = ("standard", "premium")
AUDIO_SINKS = ("none", "relay", "kinesis")
TOKEN_USES = ("id", "access")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# Below this, forged key ids would turn the authorizer into a JWKS request amplifier.
MIN_JWKS_REFETCH_COOLDOWN_SECONDS = 30


class ConfigError(ValueError):
    """A configuration variable is missing or malformed."""


# -- parsers: (variable name, stripped raw value) -> value ----------------------------


def text(_name: str, raw: str) -> str:
    return raw


def url(_name: str, raw: str) -> str:
    return raw.rstrip("/")


def _number(name: str, raw: str, *, minimum: float, integer: bool) -> float:
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name} must be {kind}, got {raw!r}") from None
    if value != value or value < minimum:  # NaN or below the floor
        raise ConfigError(f"{name} must be >= {minimum}, got {raw!r}")
    return value


def number(minimum: float) -> Callable[[str, str], float]:
    return lambda name, raw: _number(name, raw, minimum=minimum, integer=False)


def integer(minimum: int) -> Callable[[str, str], int]:
    return lambda name, raw: int(_number(name, raw, minimum=minimum, integer=True))


def choice(*choices: str, upper: bool = False) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.upper() if upper else raw
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


def languages(name: str, raw: str) -> Tuple[str, ...]:
    codes = tuple(dict.fromkeys(c.strip() for c in raw.split(",") if c.strip()))
    if not codes:
        raise ConfigError(f"{name} must list at least one language code, got {raw!r}")
    bad = [c for c in codes if not is_language_code(c)]
    if bad:
        raise ConfigError(
            f"{name} must hold ISO 639-1 codes (two lower-case letters), got {bad!r}"
        )
    return codes


POSITIVE = number(0.001)


def setting(env: str, default: Any, parse: Callable[[str, str], Any], doc: str, *,
            shown_default: Optional[str] = None, secret: bool = False):
    """A configuration field: read from ``env`` with ``parse``; unset or blank means
    ``default``. ``shown_default`` is how the README shows a default that is not
    simply the value (a derived or empty one); a ``secret`` never shows in a repr."""
    return attrs.field(
        default=default,
        repr=not secret,
        metadata={"env": env, "parse": parse, "doc": doc, "shown_default": shown_default},
    )


@attrs.frozen(kw_only=True)
class Config:
    sessions_table: str = setting("SESSIONS_TABLE", "Sessions", text, "sessions table")
    connections_table: str = setting(
        "CONNECTIONS_TABLE", "Connections", text, "connections table")
    rate_limits_table: str = setting(
        "RATE_LIMITS_TABLE", "RateLimits", text, "rate limits table")

    session_max_duration_hours: float = setting(
        "SESSION_MAX_DURATION_HOURS", 2.0, POSITIVE,
        "session lifetime (`expiresAt`); a speaker refresh extends it by as much again")
    max_listeners_per_session: int = setting(
        "MAX_LISTENERS_PER_SESSION", 500, integer(1),
        "capacity; joins past it get `SESSION_FULL`")
    connection_refresh_minutes: float = setting(
        "CONNECTION_REFRESH_MINUTES", 100.0, POSITIVE,
        "connection age at which `connectionRefreshRequired` is sent, once")
    connection_warning_minutes: float = setting(
        "CONNECTION_WARNING_MINUTES", 105.0, POSITIVE,
        "age at which `connectionWarning` is sent, once")
    connection_max_duration_minutes: float = setting(
        "CONNECTION_MAX_DURATION_MINUTES", 120.0, POSITIVE,
        "age at which the server closes the connection (`maxDuration`)")
    heartbeat_interval_seconds: float = setting(
        "HEARTBEAT_INTERVAL_SECONDS", 30.0, POSITIVE, "how often clients should heartbeat")
    heartbeat_timeout_seconds: float = setting(
        "HEARTBEAT_TIMEOUT_SECONDS", 90.0, POSITIVE,
        "silence after which a connection is closed (`heartbeatTimeout`)")
    speaker_reconnect_grace_seconds: float = setting(
        "SPEAKER_RECONNECT_GRACE_SECONDS", 0.0, number(0),
        "how long a session waits for its dropped speaker to come back (0: ends at once)")

    supported_languages: Tuple[str, ...] = setting(
        "SUPPORTED_LANGUAGES", DEFAULT_SUPPORTED_LANGUAGES, languages,
        "ISO 639-1 codes both Amazon Translate and Polly neural voices support",
        shown_default=f"`{','.join(DEFAULT_SUPPORTED_LANGUAGES)}`")

    token_issuer: str = setting(
        "TOKEN_ISSUER", "", text,
        "Cognito issuer, `https://cognito-idp.{region}.amazonaws.com/{userPoolId}`",
        shown_default="empty (no speaker can connect)")
    token_audience: str = setting(
        "TOKEN_AUDIENCE", "", text, "Cognito app client id", shown_default="empty")
    token_use: str = setting(
        "TOKEN_USE", "id", choice(*TOKEN_USES),
        "`id` (checks `aud`) or `access` (checks `client_id`)")
    jwks_url: str = setting(
        "JWKS_URL", "", text, "where signing keys are fetched",
        shown_default="`${TOKEN_ISSUER}/.well-known/jwks.json`")
    jwks_refetch_cooldown_seconds: float = setting(
        "JWKS_REFETCH_COOLDOWN_SECONDS", 300.0, number(MIN_JWKS_REFETCH_COOLDOWN_SECONDS),
        f"at most one JWKS refetch per period for unknown key ids (at least "
        f"{MIN_JWKS_REFETCH_COOLDOWN_SECONDS}: each forged `kid` may cost one fetch per period)")

    management_api_url: Optional[str] = setting(
        "MANAGEMENT_API_URL", None, url,
        "`@connections` endpoint; required by `sweep` and `publish`",
        shown_default="from the event: `https://{apiId}.execute-api.{region}.amazonaws.com/{stage}`")
    welcome_function_name: str = setting(
        "WELCOME_FUNCTION_NAME", "deliver_welcome", text,
        "function `$connect` invokes for the first message")
    welcome_delivery_timeout_seconds: float = setting(
        "WELCOME_DELIVERY_TIMEOUT_SECONDS", 5.0, POSITIVE,
        "how long the first message is retried while `$connect` completes")

    privacy_key: str = setting(
        "PRIVACY_KEY", "local-development-key", text,
        "key of the keyed hashes that stand in for client addresses, user ids and "
        "connection ids in rate-limit keys and logs; Terraform sets a random one per stack",
        shown_default="a fixed development key", secret=True)
    rate_limit_connects_per_minute: int = setting(
        "RATE_LIMIT_CONNECTS_PER_MINUTE", 1000, integer(0),
        "connects per source address in any sliding minute, refused ones included "
        "(0: off); generous because a congregation may share one NAT address")
    rate_limit_sessions_per_hour: int = setting(
        "RATE_LIMIT_SESSIONS_PER_HOUR", 20, integer(0),
        "sessions one speaker may create in any sliding hour (0: off)")

    sweep_shards: int = setting(
        "SWEEP_SHARDS", 16, integer(1),
        "partitions of the sweep index; the sweep runs one worker per shard, in parallel "
        "(raise it, never lower it: sessions keep the shard they were created in)")
    sweep_concurrency: int = setting(
        "SWEEP_CONCURRENCY", 16, integer(1), "sessions one sweep worker checks at once")
    sweep_function_name: str = setting(
        "SWEEP_FUNCTION_NAME", "sweep_shard", text,
        "function the scheduled sweep invokes, once per shard")

    audio_sink: str = setting(
        "AUDIO_SINK", "none", choice(*AUDIO_SINKS),
        "`none`, `relay` (to listeners, untranslated) or `kinesis`",
        shown_default="`none` (`relay` in `make run`)")
    audio_stream_name: str = setting(
        "AUDIO_STREAM_NAME", "", text, "Kinesis stream for `AUDIO_SINK=kinesis`",
        shown_default="empty")
    publish_concurrency: int = setting(
        "PUBLISH_CONCURRENCY", 16, integer(1), "parallel `@connections` posts in a fan-out")

    stage: str = setting(
        "STAGE", "dev", text,
        "the deployment's stage: the `Stage` dimension of every metric (namespace `Broadcast`)")
    log_level: str = setting(
        "LOG_LEVEL", "INFO", choice(*LOG_LEVELS, upper=True), "`DEBUG`, `INFO`, `WARNING`, `ERROR`")

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
        values = {}
        for field in attrs.fields(cls):
            raw = env.get(field.metadata["env"])
            if raw is not None and raw.strip():
                values[field.name] = field.metadata["parse"](field.metadata["env"], raw.strip())
        return cls(**values)


@attrs.frozen
class Variable:
    """One documented environment variable (for the README and Terraform checks)."""

    name: str
    default: str
    doc: str


def variables() -> Iterator[Variable]:
    """Every variable ``Config.from_environ`` reads, with its default as documented."""
    for field in attrs.fields(Config):
        shown = field.metadata["shown_default"]
        if shown is None:
            value = field.default
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            shown = f"`{value}`"
        yield Variable(field.metadata["env"], shown, field.metadata["doc"])
