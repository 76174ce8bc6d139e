#!/usr/bin/env python3
"""Run a command against a LocalStack-compatible AWS endpoint.

The endpoint is ``AWS_ENDPOINT_URL`` when set (it must answer), else whatever
answers at LocalStack's default address, http://127.0.0.1:4566 (LocalStack, a
``moto_server``). When nothing does, an in-process moto server is started there
for the occasion (``--port`` moves it), ``AWS_ENDPOINT_URL`` points the command
at it, and the server stops when the command ends. The command always gets test credentials (never a developer's real ones).

    python tools/moto_endpoint.py -- terraform -chdir=terraform apply ...

moto keeps its state in memory: what the command created is gone when it ends
(unless ``--hold`` keeps the server up). Run several commands in one occasion by
wrapping them in ``sh -c``; they see ``MOTO_ENDPOINT_EMBEDDED=1`` when the server
is the embedded one.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566
# Set in the command's environment when it runs against the embedded server, so
# it knows the endpoint starts empty (e.g. to discard state left by a past run).
EMBEDDED_FLAG = "MOTO_ENDPOINT_EMBEDDED"


def endpoint_answers(url: str, timeout: float = 1.0) -> bool:
    """True when an HTTP server answers at ``url`` (any status)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        opener.open(url, timeout=timeout)
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return True


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class MotoServer:
    """An in-process moto server bound to ``host:port`` (a context manager)."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.host, self.port = host, port
        self._server = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> "MotoServer":
        from moto.server import ThreadedMotoServer

        # One access-log line per AWS call drowns the command's own output.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        deadline = time.monotonic() + 15
        while not endpoint_answers(f"{self.url}/moto-api/"):
            if time.monotonic() > deadline:
                self._server.stop()
                raise RuntimeError(f"moto did not start on {self.url}")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def test_environment(environ: dict[str, str], endpoint: str) -> dict[str, str]:
    """``environ`` with the endpoint, test credentials and (where unset) a region."""
    env = dict(environ)
    env["AWS_ENDPOINT_URL"] = endpoint
    # Always test credentials: a developer's real keys never go to an emulator.
    env["AWS_ACCESS_KEY_ID"] = "test"
    env["AWS_SECRET_ACCESS_KEY"] = "test"
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        env.pop(key, None)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.setdefault("AWS_REGION", env["AWS_DEFAULT_REGION"])
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port of the embedded moto server (default {DEFAULT_PORT})")
    parser.add_argument("--hold", action="store_true",
                        help="after the command succeeds, keep the embedded moto server "
                             "running until Ctrl-C (what the command created stays)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="command to run (after --)")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")

    given = os.environ.get("AWS_ENDPOINT_URL")
    if given:
        if not endpoint_answers(given):
            print(f"moto_endpoint: nothing answers at AWS_ENDPOINT_URL={given}", file=sys.stderr)
            return 2
        print(f"moto_endpoint: using AWS_ENDPOINT_URL={given}", file=sys.stderr)
        return subprocess.call(command, env=test_environment(dict(os.environ), given))

    default = f"http://{DEFAULT_HOST}:{args.port}"
    if endpoint_answers(default):
        # LocalStack's default address: something (LocalStack, moto_server) already runs.
        print(f"moto_endpoint: using the endpoint already running at {default}", file=sys.stderr)
        return subprocess.call(command, env=test_environment(dict(os.environ), default))
    if port_in_use(DEFAULT_HOST, args.port):
        print(f"moto_endpoint: {DEFAULT_HOST}:{args.port} is taken by something that is not "
              f"an HTTP endpoint; pass --port or set AWS_ENDPOINT_URL", file=sys.stderr)
        return 2
    # moto runs in this process and builds botocore sessions of its own: a
    # developer's AWS_PROFILE (SSO, or absent from ~/.aws/config) must not reach it.
    server_env = test_environment(dict(os.environ), "")
    del server_env["AWS_ENDPOINT_URL"]
    os.environ.clear()
    os.environ.update(server_env)
    with MotoServer(DEFAULT_HOST, args.port) as server:
        print(f"moto_endpoint: started moto on {server.url} for this run", file=sys.stderr)
        env = test_environment(dict(os.environ), server.url)
        env[EMBEDDED_FLAG] = "1"
        code = subprocess.call(command, env=env)
        if code == 0 and args.hold:
            print(f"moto_endpoint: moto keeps running on {server.url}; Ctrl-C stops it",
                  file=sys.stderr)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return code


if __name__ == "__main__":
    sys.exit(main())
