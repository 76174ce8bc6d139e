"""Fixtures for the gateway tests: an in-process stack on a free port.

The stack runs the fixture app (``fixture_app.py``) in a background thread
with its own event loop; tests talk to it over real sockets with the
``websockets`` sync client, boto3 and urllib, and inspect what the app
recorded. Every thread started here is stopped at the end.
"""
import asyncio
import os
import threading
import time
from pathlib import Path

import pytest

from local_stack.runner import Stack
from local_stack.settings import Settings

HERE = Path(__file__).parent


class StackThread:
    """A :class:`Stack` running in a thread; ``stop()`` joins it."""

    def __init__(self, settings, environ):
        self.settings = settings
        self.environ = environ
        self.stack = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="stack", daemon=True)

    def _run(self):
        asyncio.set_event_loop(self._loop)
        try:
            self.stack = Stack(self.settings, self.environ)
            self._loop.run_until_complete(self.stack.start())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.stack.stop())
        self._loop.close()

    def start(self):
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def stop(self):
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)

    def call(self, fn, *args):
        """Run ``fn(*args)`` on the stack's loop and return its result."""
        result = {}
        done = threading.Event()

        def run():
            try:
                result["value"] = fn(*args)
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(10)
        return result.get("value")

    # conveniences
    @property
    def http(self):
        return self.stack.gateway_url

    @property
    def ws(self):
        return self.stack.gateway_url.replace("http://", "ws://") + "/" + self.settings.stage

    @property
    def module(self):
        return self.stack.lambda_app.module

    def events(self, route):
        with self.module.LOCK:
            return [e for r, e in self.module.EVENTS if r == route]

    def wait_for(self, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        return predicate()


@pytest.fixture
def make_stack(tmp_path):
    """Start fixture-app stacks with settings overrides; stop them and restore
    the environment (the stack sets the app's variables in it) at the end."""
    saved = dict(os.environ)
    for key in ("MANAGEMENT_API_URL", "AWS_ENDPOINT_URL_LAMBDA", "JWKS_URL", "AWS_ENDPOINT_URL",
                "TOKEN_ISSUER", "TOKEN_AUDIENCE"):
        os.environ.pop(key, None)
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    })
    started = []

    def make(**overrides):
        for key in ("MANAGEMENT_API_URL", "AWS_ENDPOINT_URL_LAMBDA", "JWKS_URL"):
            os.environ.pop(key, None)  # this stack's own URLs, not a previous one's
        values = dict(
            host="127.0.0.1", port=0, app=str(HERE / "fixture_app.py"), app_dir=HERE,
            aws_endpoint_url="http://127.0.0.1:9", create_tables=False,
            state_dir=tmp_path / "state", close_timeout=1.0,
        )
        values.update(overrides)
        thread = StackThread(Settings(**values), os.environ).start()
        started.append(thread)
        return thread

    try:
        yield make
    finally:
        for thread in started:
            thread.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def stack(make_stack):
    return make_stack()
