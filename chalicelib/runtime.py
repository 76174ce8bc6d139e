"""Wiring: configuration, clients and services, built once per Lambda container.

``Runtime.from_environ()`` validates configuration at cold start; clients and
services are created on first use, so importing app.py stays fast and side-effect
free, and each function builds only what it uses (the authorizer never builds a
store, ``deliver_welcome`` never builds a router).
"""

from __future__ import annotations

import json
import time
from functools import cached_property

from chalicelib.aws import Clients
from chalicelib.config import Config, ConfigError
from chalicelib.connections_api import ConnectionsApi
from chalicelib.observability import logs
from chalicelib.observability.telemetry import Telemetry


class Runtime:
    def __init__(self, config: Config, clients: Clients = None, clock=time.time,
                 emit_metrics=logs.write_emf) -> None:
        self.config = config
        self.clients = clients or Clients()
        self.clock = clock
        # Per invocation: app.py's middleware opens one, services record into it.
        self.telemetry = Telemetry(stage=config.stage, emit=emit_metrics)
        self.metrics = self.telemetry.metrics

    @classmethod
    def from_environ(cls, environ=None) -> "Runtime":
        config = Config.from_environ(environ)
        logs.install(level=config.log_level, privacy_key=config.privacy_key)
        return cls(config)

    # -- I/O -------------------------------------------------------------------------

    @cached_property
    def store(self):
        from chalicelib.state.store import Store

        return Store(self.clients.dynamodb, self.config)  # the client on first use

    @cached_property
    def health(self):
        from chalicelib.health import Health

        return Health(self.clients.dynamodb, self.config, self.metrics)

    @cached_property
    def rate_limiter(self):
        from chalicelib.state.rate_limits import RateLimiter

        return RateLimiter(self.clients.dynamodb, self.config.rate_limits_table, self.clock)

    def connections_api(self, endpoint: str) -> ConnectionsApi:
        return ConnectionsApi(self.clients.management(endpoint))

    def configured_connections_api(self, purpose: str) -> ConnectionsApi:
        """For functions without a WebSocket event to derive the endpoint from."""
        if not self.config.management_api_url:
            raise ConfigError(f"MANAGEMENT_API_URL must be set for the {purpose} function")
        return self.connections_api(self.config.management_api_url)

    def dispatch_welcome(self, welcome) -> None:
        """Hand the first message to ``deliver_welcome`` as an asynchronous Lambda
        invocation: it runs after ``$connect`` has returned, when posting works."""
        self._invoke_async(self.config.welcome_function_name, welcome.to_payload())

    def dispatch_sweep(self, shard: int) -> None:
        """Start the sweep of one shard in its own (asynchronous) invocation."""
        self._invoke_async(self.config.sweep_function_name, {"shard": shard})

    def _invoke_async(self, function_name: str, payload: dict) -> None:
        self.clients.lambda_().invoke(
            FunctionName=function_name,
            InvocationType="Event",
            Payload=json.dumps(payload).encode("utf-8"),
        )

    @cached_property
    def hasher(self):
        from chalicelib.privacy import Hasher

        return Hasher(self.config.privacy_key)

    @cached_property
    def verifier(self):
        from chalicelib.auth.tokens import TokenVerifier

        return TokenVerifier.from_config(
            self.config, on_keys_unavailable=lambda: self.metrics.add("JwksFetchFailures"))

    # -- services ----------------------------------------------------------------------

    @cached_property
    def departures(self):
        from chalicelib.departures import Departures

        return Departures(config=self.config, store=self.store, metrics=self.metrics,
                          clock=self.clock)

    @cached_property
    def keepalive(self):
        from chalicelib.keepalive import KeepAlive

        return KeepAlive(config=self.config, store=self.store, departures=self.departures)

    @cached_property
    def admission(self):
        from chalicelib.admission import Admission

        return Admission(
            config=self.config,
            store=self.store,
            departures=self.departures,
            rate_limiter=self.rate_limiter,
            hasher=self.hasher,
            connections_api=self.connections_api,
            dispatch_welcome=self.dispatch_welcome,
            metrics=self.metrics,
            clock=self.clock,
        )

    @cached_property
    def publisher(self):
        from chalicelib.publisher import Publisher

        return Publisher(
            config=self.config, store=self.store, departures=self.departures,
            metrics=self.metrics, clock=self.clock,
        )

    @cached_property
    def audio_sink(self):
        from chalicelib import audio

        sink = self.config.audio_sink
        if sink == "relay":
            return audio.RelaySink(self.publisher)
        if sink == "kinesis":
            return audio.KinesisSink(
                self.clients.client("kinesis"), self.config.audio_stream_name, self.clock
            )
        return audio.NoSink()

    @cached_property
    def router(self):
        from chalicelib.broadcast import BroadcastActions
        from chalicelib.router import Router

        return Router(
            store=self.store,
            admission=self.admission,
            departures=self.departures,
            keepalive=self.keepalive,
            broadcast=BroadcastActions(
                config=self.config,
                store=self.store,
                publisher=self.publisher,
                audio_sink=self.audio_sink,
            ),
            connections_api=self.connections_api,
            metrics=self.metrics,
            clock=self.clock,
        )

    @cached_property
    def sweeper(self):
        from chalicelib.sweeper import Sweeper

        return Sweeper(
            config=self.config,
            store=self.store,
            departures=self.departures,
            keepalive=self.keepalive,
            api=self.configured_connections_api("sweep"),
            metrics=self.metrics,
            clock=self.clock,
        )
