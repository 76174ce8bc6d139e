"""``python -m local_stack``: run the stack, or mint a token.

``run`` starts the AWS endpoint (an embedded moto server in a child process,
unless ``AWS_ENDPOINT_URL`` is set), the tables, and, in this process, the app
with its environment for local use and the gateway; prints one line saying
where everything is; and stops everything on Ctrl-C (SIGINT) or SIGTERM (a
second one exits at once, status 130). The moto child exits with this process,
however it ends, so nothing is left behind.
"""
from __future__ import annotations

import argparse
import asyncio
import errno
import ipaddress
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Dict, List, MutableMapping, Optional

from . import aws
from .moto_server import MotoPortInUse, MotoServer
from .issuer import LocalIssuer
from .metrics import Collector, StdoutTap
from .settings import Settings

log = logging.getLogger("local_stack")

#: Exit status after a second Ctrl-C (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130


def app_environment(settings: Settings, *, gateway_url: str, aws_url: str,
                    issuer: LocalIssuer) -> Dict[str, str]:
    """What the app needs to run locally; applied with ``setdefault`` so the
    user's own variables (``MAX_LISTENERS_PER_SESSION=3 make run``) win."""
    return {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": settings.region,
        "AWS_REGION": settings.region,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": aws_url,
        "AWS_ENDPOINT_URL_LAMBDA": gateway_url,
        "MANAGEMENT_API_URL": gateway_url,
        "JWKS_URL": f"{gateway_url}/.well-known/jwks.json",
        "TOKEN_ISSUER": issuer.issuer,
        "TOKEN_AUDIENCE": issuer.audience,
        "AUDIO_SINK": "relay",
        "STAGE": settings.stage,
    }


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) is only reachable from this machine."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback
                               for info in infos)


class GatewayAddressError(OSError):
    """The gateway's HOST:PORT cannot be bound; the message says what to change."""


def bind(host: str, port: int) -> socket.socket:
    """Bind the gateway's socket first: its port goes into the app's env.

    Raises :class:`GatewayAddressError` naming the address, the variable to
    change and how, as the embedded moto does for ``MOTO_PORT``.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise GatewayAddressError(exc.errno, _bind_failure(host, port, exc)) from None
    sock.setblocking(False)
    return sock


def _bind_failure(host: str, port: int, exc: OSError) -> str:
    where = f"cannot start the gateway on {host}:{port} ({exc.strerror or exc})"
    if exc.errno == errno.EADDRINUSE:
        return (f"{where}: another program listens there, perhaps another `make run`. Stop it, "
                f"or set PORT to a free port (PORT=0 picks one) and give `make speak`/`make listen` "
                f"the same PORT (or WS_URL)")
    if exc.errno == errno.EACCES:
        return f"{where}: ports below 1024 need privileges; set PORT to 1024 or above (PORT=0 picks one)"
    return (f"{where}: set HOST to an address of this machine (default 127.0.0.1) "
            f"and PORT to a free port (PORT=0 picks one)")


class Stack:
    """The whole local stack in the running event loop."""

    def __init__(self, settings: Settings, environ: Optional[MutableMapping[str, str]] = None):
        self.settings = settings
        self.environ = os.environ if environ is None else environ
        self.moto: Optional[MotoServer] = None
        self.gateway = None
        self.lambda_app = None
        self.gateway_url: Optional[str] = None
        self.aws_url: Optional[str] = None
        self.tables: Optional[List[str]] = None
        self.issuer = LocalIssuer.from_environ(settings.state_dir.resolve(), self.environ)
        #: The app's metrics: what its functions print to stdout (EMF lines) is
        #: collected; their other lines (JSON logs) go to the stack's log, stderr.
        self.metrics = Collector()
        self.stdout = sys.stdout  # the stack's own output: the banner, the summaries

    async def start(self) -> None:
        from .gateway import Gateway
        from .lambda_runtime import LambdaApp

        s = self.settings
        if not is_loopback(s.host):
            log.warning(
                "HOST=%s is not a loopback address: the gateway is reachable from the network, "
                "including its Lambda Invoke API, which runs any of the app's functions for "
                "anyone who asks; use HOST=127.0.0.1 unless you mean it", s.host)
        sock = bind(s.host, s.port)
        try:
            port = sock.getsockname()[1]
            self.gateway_url = f"http://{s.host}:{port}"
            if s.aws_endpoint_url:
                self.aws_url = s.aws_endpoint_url
            else:
                # Always 127.0.0.1, whatever HOST is: the app reaches it locally.
                # A child process (its own core), tied to this one's lifetime.
                self.moto = MotoServer(s.moto_port, environ=self.environ)
                self.aws_url = self.moto.start()
            self.issuer.jwks()  # creates the key on first use
            for key, value in app_environment(s, gateway_url=self.gateway_url,
                                              aws_url=self.aws_url, issuer=self.issuer).items():
                self.environ.setdefault(key, value)
            if str(s.app_dir) not in sys.path:
                sys.path.insert(0, str(s.app_dir))
            sys.stdout = StdoutTap(self.metrics, sys.stderr)
            if s.create_tables:
                loop = asyncio.get_running_loop()
                self.tables = await loop.run_in_executor(None, aws.create_tables, dict(self.environ))
            self.lambda_app = LambdaApp.load(
                s.app, s.app_dir, stage=s.stage, region=s.region, account_id=s.account_id,
                max_workers=s.max_workers,
            )
            self.gateway = Gateway(self.lambda_app, s, issuer=self.issuer, metrics=self.metrics)
            self.gateway.summary_stream = self.stdout
            await self.gateway.start(sock=sock)
        except BaseException:
            sock.close()
            await self.stop()
            raise

    def banner(self) -> str:
        s = self.settings
        ws = self.gateway_url.replace("http://", "ws://")
        aws_kind = "external" if s.aws_endpoint_url else "embedded moto"
        return (
            f"local stack ready: ws={ws}/{s.stage} http={self.gateway_url} "
            f"aws={self.aws_url} ({aws_kind}) jwks={self.gateway_url}/.well-known/jwks.json "
            f"app={s.app} stage={s.stage} (Ctrl-C stops)"
        )

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
            self.gateway = None
        if self.lambda_app is not None:
            self.lambda_app.shutdown()
            self.lambda_app = None
        if self.moto is not None:
            self.moto.stop()
            self.moto = None
        if isinstance(sys.stdout, StdoutTap):
            sys.stdout.flush()
            sys.stdout = self.stdout


async def _run(settings: Settings) -> int:
    stack = Stack(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        # The first Ctrl-C stops cleanly (closing sockets, firing $disconnect,
        # waiting for handlers); a second one must not be swallowed by that.
        if stop.is_set():
            log.warning("%s again: exiting at once, without a clean stop",
                        signal.Signals(signum).name)
            os._exit(EXIT_INTERRUPTED)
        log.info("stopping (Ctrl-C again to exit at once)")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    await stack.start()
    print(stack.banner(), file=stack.stdout, flush=True)
    try:
        await stop.wait()
    finally:
        await stack.stop()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local_stack", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the local stack (the default)")
    run.add_argument("--host", help="gateway host (HOST, default 127.0.0.1)")
    run.add_argument("--port", type=int, help="gateway port (PORT, default 8000; 0 picks one)")
    run.add_argument("--app", help="module or .py file of the Chalice app (LOCAL_APP, default app)")
    run.add_argument("--app-dir", type=Path, help="directory of the app (LOCAL_APP_DIR, default .)")
    run.add_argument("--stage", help="stage (GATEWAY_STAGE, default dev)")
    run.add_argument("--moto-port", type=int, help="embedded moto port (MOTO_PORT, default 4566)")
    run.add_argument("--no-tables", action="store_true", help="do not create the app's tables")
    run.add_argument("--idle-timeout", type=float, help="seconds (GATEWAY_IDLE_TIMEOUT_SECONDS, 600)")
    run.add_argument("--max-connection-duration", type=float,
                     help="seconds (GATEWAY_MAX_CONNECTION_SECONDS, 7200)")
    run.add_argument("--schedule-period", type=float,
                     help="run every scheduled function at this period in seconds "
                          "(GATEWAY_SCHEDULE_PERIOD_SECONDS)")
    run.add_argument("--log-level", default=os.environ.get("LOCAL_STACK_LOG_LEVEL", "INFO"))
    token = sub.add_parser("token", help="print an ID token of the local issuer")
    token.add_argument("user", nargs="?", default="alice")
    token.add_argument("--ttl", type=int, default=None,
                       help="lifetime in seconds (default LOCAL_TOKEN_TTL_SECONDS, else 3600: "
                            "Cognito's default ID token lifetime)")
    token.add_argument("--email")
    token.add_argument("--state-dir", type=Path)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    if (sys.argv[1:] if argv is None else argv)[:1] == ["run-deployed"]:
        # What Terraform applied to an emulator, instead of app.py (make run-deployed).
        from .deployed_runner import main as run_deployed

        return run_deployed((sys.argv[1:] if argv is None else argv)[1:])
    args = _parser().parse_args(argv)
    if args.command == "token":
        try:
            settings = Settings.from_environ(state_dir=args.state_dir)
            issuer = LocalIssuer.from_environ(settings.state_dir.resolve())
        except ValueError as exc:
            print(f"local_stack: {exc}", file=sys.stderr)
            return 2
        kwargs = {"email": args.email}
        if args.ttl:
            kwargs["ttl"] = args.ttl
        claims_user = args.user
        print(f"# ID token for {claims_user} from {issuer.issuer}", file=sys.stderr)
        print(issuer.token(claims_user, **kwargs), flush=True)
        return 0
    if args.command is None:
        args = _parser().parse_args(["run"] + (argv or sys.argv[1:]))
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        settings = Settings.from_environ(
            host=args.host, port=args.port, app=args.app, app_dir=args.app_dir,
            stage=args.stage, moto_port=args.moto_port,
            create_tables=False if args.no_tables else None,
            idle_timeout=args.idle_timeout, max_connection_duration=args.max_connection_duration,
            schedule_period=args.schedule_period,
        )
        LocalIssuer.from_environ(settings.state_dir)  # LOCAL_TOKEN_TTL_SECONDS valid?
    except ValueError as exc:
        print(f"local_stack: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(settings))
    except (GatewayAddressError, MotoPortInUse) as exc:
        print(f"local_stack: {exc.strerror}", file=sys.stderr)  # the whole message, no [Errno]
        return 1
    except OSError as exc:
        print(f"local_stack: {exc}", file=sys.stderr)
        return 1
