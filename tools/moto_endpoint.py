#!/usr/bin/env python3
"""Run a command against a LocalStack-compatible AWS endpoint.

The endpoint is ``AWS_ENDPOINT_URL`` when set (it must answer), else whatever
answers at LocalStack's default address, http://127.0.0.1:4566 (LocalStack, a
``moto_server``). When nothing does, the project's moto server
(:mod:`local_stack.moto_server`, as ``make run`` starts it) is started there for
the occasion (``--port`` moves it), ``AWS_ENDPOINT_URL`` points the command at
it, and the server stops when the command ends. The command always gets test
credentials (never a developer's real ones).

    python tools/moto_endpoint.py -- terraform -chdir=terraform apply ...

moto keeps its state in memory: what the command created is gone when it ends
(unless ``--hold`` keeps the server up). Run several commands in one occasion by
wrapping them in ``sh -c``; they see ``MOTO_ENDPOINT_EMBEDDED=1`` when the server
is the embedded one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from local_stack.moto_server import (  # noqa: E402  (the one way the project starts moto)
    DEFAULT_PORT, MOTO_HOST as DEFAULT_HOST, MotoPortInUse, MotoServer, endpoint_answers,
    port_in_use, test_environment,
)

# Set in the command's environment when it runs against the embedded server, so
# it knows the endpoint starts empty (e.g. to discard state left by a past run).
EMBEDDED_FLAG = "MOTO_ENDPOINT_EMBEDDED"


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
    server = MotoServer(args.port)
    try:
        server.start()
    except MotoPortInUse as exc:
        print(f"moto_endpoint: {exc.strerror}", file=sys.stderr)
        return 2
    try:
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
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
