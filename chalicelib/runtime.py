"""Wiring: configuration, clients and services, built once per Lambda container.

``Runtime.from_environ()`` validates configuration at cold start; clients and
services are created on first use so importing app.py stays fast and side-effect
free.
"""

from __future__ import annotations

import json
import logging
import time
from functools import cached_property

from chalicelib.aws import Clients
from chalicelib.config import Config
from chalicelib.connections_api import ConnectionsApi


class Runtime:
    def __init__(self, config: Config, clients: Clients = None, clock=time.time) -> None:
        self.config = config
        self.clients = clients or Clients()
        self.clock = clock

    @classmethod
    def from_environ(cls, environ=None) -> "Runtime":
        config = Config.from_environ(environ)
        logging.getLogger("chalicelib").setLevel(config.log_level)
        return cls(config)

    @cached_property
    def store(self):
        from chalicelib.store import Store

        return Store(self.clients.dynamodb(), self.config)

    def connections_api(self, endpoint: str) -> ConnectionsApi:
        return ConnectionsApi(self.clients.management(endpoint))

    def dispatch_welcome(self, welcome) -> None:
        """Hand the first message to ``deliver_welcome`` as an asynchronous Lambda
        invocation: it runs after ``$connect`` has returned, when posting works."""
        self.clients.lambda_().invoke(
            FunctionName=self.config.welcome_function_name,
            InvocationType="Event",
            Payload=json.dumps(welcome.to_payload()).encode("utf-8"),
        )

    @cached_property
    def lifecycle(self):
        from chalicelib.lifecycle import Lifecycle

        return Lifecycle(
            config=self.config,
            store=self.store,
            connections_api=self.connections_api,
            dispatch_welcome=self.dispatch_welcome,
            broadcaster=self.broadcaster,
            rate_limiter=self.rate_limiter,
            clock=self.clock,
        )

    @cached_property
    def rate_limiter(self):
        from chalicelib.rate_limits import RateLimiter

        return RateLimiter(self.clients.dynamodb(), self.config.rate_limits_table, self.clock)

    @cached_property
    def broadcaster(self):
        from chalicelib import audio
        from chalicelib.broadcast import Broadcaster

        broadcaster = Broadcaster(config=self.config, store=self.store, clock=self.clock)
        sink = self.config.audio_sink
        if sink == "relay":
            broadcaster.audio_sink = audio.RelaySink(broadcaster)
        elif sink == "kinesis":
            broadcaster.audio_sink = audio.KinesisSink(
                self.clients.client("kinesis"), self.config.audio_stream_name, self.clock
            )
        else:
            broadcaster.audio_sink = audio.NoSink()
        return broadcaster

    def configured_connections_api(self, purpose: str) -> ConnectionsApi:
        """For functions without a WebSocket event to derive the endpoint from."""
        from chalicelib.config import ConfigError

        if not self.config.management_api_url:
            raise ConfigError(f"MANAGEMENT_API_URL must be set for the {purpose} function")
        return self.connections_api(self.config.management_api_url)

    @cached_property
    def sweeper(self):
        from chalicelib.sweeper import Sweeper

        return Sweeper(
            config=self.config,
            store=self.store,
            lifecycle=self.lifecycle,
            api=self.configured_connections_api("sweep"),
            clock=self.clock,
        )

    @cached_property
    def verifier(self):
        from chalicelib.tokens import TokenVerifier

        return TokenVerifier.from_config(self.config)
