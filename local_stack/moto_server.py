"""The one way the project starts moto: a moto server in a child process.

``make run`` (:mod:`local_stack.runner`), ``make deploy-local``
(``tools/deploy_local.py``, ``tools/moto_endpoint.py``), the functional and
Terraform tests and the scaling simulation all start their emulator with
:class:`MotoServer`, so every one of them gets the same server:

- moto's own WSGI application (what ``moto_server`` serves), with the patches of
  :mod:`local_stack.moto_patches` (DynamoDB requests atomic, cancelled transactions
  undoing only their own writes, no leak, cached dispatch);
- served by waitress rather than werkzeug's development server, which cost about
  1.5 ms of CPU per request and held each response back by Nagle's algorithm
  (headers and body in two writes): waitress costs about 0.4 ms;
- in its own process, so it runs on another core than the gateway and the app
  (one process cannot use two: the GIL). It exits when the process that started
  it does (it watches its standard input, a pipe from the parent: killed or not,
  the parent's end closes), so ``make run`` still leaves nothing behind;
- on 127.0.0.1 only: it holds the app's state and accepts any credentials;
- with test credentials and no ``AWS_PROFILE`` in its environment: moto builds
  botocore sessions of its own, and a developer's real keys never reach it.

``python -m local_stack.moto_server [--port 4566]`` runs one in the foreground
(Ctrl-C stops it), for a command of your own to use with ``AWS_ENDPOINT_URL``.
"""
from __future__ import annotations

import argparse
import errno as errno_codes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Iterable, Mapping, Optional

log = logging.getLogger("local_stack.moto")

#: The server listens here only, whatever HOST the gateway uses.
MOTO_HOST = "127.0.0.1"
#: LocalStack's port, which AWS tooling expects an emulator on.
DEFAULT_PORT = 4566
#: How long :meth:`MotoServer.start` waits for the server to answer.
START_TIMEOUT = 30.0
#: Comma-separated patch names the server leaves out (``make bench`` baselines).
SKIP_PATCHES_VARIABLE = "LOCAL_MOTO_SKIP_PATCHES"
#: Worker threads of the HTTP server. DynamoDB requests run one at a time
#: anyway (``serialise_dynamodb``); the others (IAM, Lambda, API Gateway...
#: from Terraform, ten at a time) overlap.
SERVER_THREADS = 8

_ROOT = Path(__file__).resolve().parent.parent
_CREDENTIAL_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN",
                         "AWS_SECURITY_TOKEN")


class MotoPortInUse(OSError):
    """The server's port cannot be bound; the message says what to change."""


def _port_message(host: str, port: int, reason: str) -> str:
    return (f"cannot start the embedded moto on {host}:{port} ({reason}): set MOTO_PORT to a "
            f"free port (0 picks one), or AWS_ENDPOINT_URL to an AWS endpoint that is already "
            f"running (LocalStack, say) instead")


def endpoint_answers(url: str, timeout: float = 1.0) -> bool:
    """True when an HTTP server answers at ``url`` (any status)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        opener.open(url, timeout=timeout).close()
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return True


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def reset(url: str) -> None:
    """Wipe every resource of the server at ``url`` (moto's ``/moto-api/reset``)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    opener.open(urllib.request.Request(url + "/moto-api/reset", method="POST"), timeout=10).close()


def test_environment(environ: Mapping[str, str], endpoint: Optional[str]) -> Dict[str, str]:
    """``environ`` for talking to an emulator: its endpoint (when given), test
    credentials (never a developer's real ones) and, where unset, a region."""
    env = dict(environ)
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    env["AWS_ACCESS_KEY_ID"] = "test"
    env["AWS_SECRET_ACCESS_KEY"] = "test"
    for key in _CREDENTIAL_VARIABLES:
        env.pop(key, None)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.setdefault("AWS_REGION", env["AWS_DEFAULT_REGION"])
    return env


def _server_environment(environ: Mapping[str, str]) -> Dict[str, str]:
    env = test_environment(environ, None)
    for key in [k for k in env if k.startswith("AWS_ENDPOINT_URL")]:
        del env[key]  # moto never calls an endpoint of its own choosing
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    return env


class MotoServer:
    """A patched moto server in a child process on ``host:port`` (0: a free port).

    ``start()`` returns its URL or raises :class:`MotoPortInUse` (port taken) or
    :class:`OSError` (did not start in time); ``stop()`` ends it. Also a
    context manager.
    """

    def __init__(self, port: int = DEFAULT_PORT, *, host: str = MOTO_HOST,
                 start_timeout: float = START_TIMEOUT, skip_patches: Iterable[str] = (),
                 environ: Optional[Mapping[str, str]] = None):
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self.skip_patches = list(skip_patches)
        self.environ = dict(os.environ if environ is None else environ)
        self.url: Optional[str] = None
        self._process: Optional[subprocess.Popen] = None

    def start(self) -> str:
        command = [sys.executable, "-m", "local_stack.moto_server", "--host", self.host,
                   "--port", str(self.port), "--exit-with-stdin"]
        for name in self.skip_patches:
            command += ["--skip-patch", name]
        self._process = process = subprocess.Popen(
            command, cwd=_ROOT, env=_server_environment(self.environ),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            # Its own session: a Ctrl-C in the terminal reaches the parent only,
            # which stops cleanly (firing $disconnect against this server) first.
            start_new_session=True)
        answer: Dict[str, object] = {}
        reader = threading.Thread(target=lambda: answer.update(_first_line(process.stdout)),
                                  daemon=True, name="moto-start")
        reader.start()
        reader.join(self.start_timeout)
        if "url" in answer:
            self.url = str(answer["url"])
            self.port = int(self.url.rsplit(":", 1)[1])
            return self.url
        self.stop()
        if answer.get("errno") in (errno_codes.EADDRINUSE, errno_codes.EACCES,
                                   errno_codes.EADDRNOTAVAIL):
            raise MotoPortInUse(answer["errno"], _port_message(self.host, self.port,
                                                               str(answer.get("error"))))
        if answer:
            raise OSError(f"the embedded moto could not start: {answer.get('error')}")
        raise OSError(f"the embedded moto did not start within {self.start_timeout:g} s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()  # the server exits when its standard input ends
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> "MotoServer":
        if self._process is None:  # not started yet
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _first_line(stream) -> Dict[str, object]:
    line = stream.readline()
    try:
        return json.loads(line)
    except ValueError:
        return {"error": line.decode(errors="replace").strip() or "exited before answering"}


# -- the server's own process ---------------------------------------------------


def _wsgi_app():
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    dispatcher = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        # moto reads the undecoded request target from RAW_URI (gunicorn's name,
        # werkzeug sets it too); waitress calls it REQUEST_URI.
        environ.setdefault("RAW_URI", environ.get("REQUEST_URI", ""))
        return dispatcher(environ, start_response)

    return app


def serve(host: str, port: int, *, skip: Iterable[str] = (), exit_with_stdin: bool = False,
          ready=print) -> int:
    """Apply the patches and serve until stopped; ``ready`` gets the answer line."""
    from waitress.server import create_server

    from local_stack import moto_patches

    applied = moto_patches.apply(skip)
    try:
        server = create_server(_wsgi_app(), host=host, port=port, threads=SERVER_THREADS,
                               connection_limit=1000, asyncore_use_poll=True, ident="",
                               clear_untrusted_proxy_headers=True)
    except OSError as exc:
        ready(json.dumps({"error": exc.strerror or str(exc), "errno": exc.errno}))
        return 3
    url = f"http://{host}:{server.effective_port}"
    ready(json.dumps({"url": url, "patches": applied}))
    if exit_with_stdin:
        def watch() -> None:
            sys.stdin.buffer.read()  # returns at EOF: the parent stopped us, or died
            os._exit(0)  # state is in memory only: nothing to flush

        threading.Thread(target=watch, daemon=True, name="parent-watch").start()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.moto_server",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=MOTO_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--skip-patch", action="append", default=[], metavar="NAME",
                        help="leave out one of local_stack.moto_patches.PATCHES (to measure it)")
    parser.add_argument("--exit-with-stdin", action="store_true",
                        help="exit when standard input ends (how MotoServer ties it to its parent)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" under load
    skip = args.skip_patch + [n for n in os.environ.get(SKIP_PATCHES_VARIABLE, "").split(",") if n]
    stdout = sys.stdout

    def ready(line: str) -> None:
        stdout.write(line + "\n")
        stdout.flush()
        if args.exit_with_stdin:
            # The parent reads one line only: anything moto prints later goes to stderr.
            os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if args.exit_with_stdin:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent says when (stdin)
    try:
        return serve(args.host, args.port, skip=skip, exit_with_stdin=args.exit_with_stdin,
                     ready=ready)
    except ValueError as exc:  # an unknown patch name
        ready(json.dumps({"error": str(exc)}))
        return 2


if __name__ == "__main__":
    sys.exit(main())
