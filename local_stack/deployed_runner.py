"""``python -m local_stack run-deployed``: the local gateway in front of the
functions Terraform deployed to an emulator (``make run-deployed``).

Reads the stack's ``terraform output -json`` (``make deploy-local`` writes
``build/local/<stage>/outputs.json``) for the emulator's URL and the API, then
everything else from the emulator itself (see :mod:`local_stack.deployed`).
Logs what it serves, every endpoint substitution, and where third-party code
comes from; prints one ``deployed stack ready: ws=...`` line on stdout; stops on
Ctrl-C (a second one exits at once).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import List, Optional

from botocore.exceptions import EndpointConnectionError

from .deployed import DeployedApp, DeploymentError, Emulator
from .runner import EXIT_INTERRUPTED, bind, is_loopback
from .settings import Settings

log = logging.getLogger("local_stack.deployed")


def read_outputs(path: Path) -> dict:
    if not path.is_file():
        raise DeploymentError(f"{path} does not exist: run `make deploy-local HOLD=1` first "
                              f"(it applies the stack to an emulator and writes the outputs)")
    raw = json.loads(path.read_text())
    return {name: value.get("value") if isinstance(value, dict) else value
            for name, value in raw.items()}


def describe(app: DeployedApp) -> List[str]:
    """What is served, for the log: routes, authorizer, schedules, functions."""
    wiring = app.wiring
    lines = [f"API {wiring.name} ({wiring.api_id}), stage {wiring.stage}"]
    for route, name in sorted(app.routes.items()):
        lines.append(f"  route {route:<12} -> {name}")
    authorizer = app.connect_authorizer()
    lines.append(f"  authorizer on $connect -> {authorizer.name if authorizer else '(none)'}")
    for function in app.scheduled():
        lines.append(f"  schedule {function.schedule} -> {function.name}")
    for name, function in sorted(app.functions.items()):
        lines.append(f"  function {name}: handler {function.handler_string}, {function.runtime}, "
                     f"timeout {function.timeout:g} s, {len(function.environment)} variables")
        for key, (deployed, local) in sorted(app.substitutions.get(name, {}).items()):
            lines.append(f"    {key}: {deployed} -> {local}")
    for note in app.notes:
        lines.append(f"  {note}")
    return lines


async def serve(args) -> int:
    from .gateway import Gateway

    outputs = read_outputs(args.outputs)
    endpoint = args.endpoint or os.environ.get("AWS_ENDPOINT_URL") or outputs.get("emulator_endpoint_url")
    if not endpoint:
        raise DeploymentError("no emulator: this stack was applied to AWS (no emulator_endpoint_url); "
                              "run-deployed serves what `make deploy-local` applied")
    region = outputs.get("aws_region") or os.environ.get("AWS_REGION") or "us-east-1"
    stage = args.stage or outputs.get("api_stage_name")
    package = args.package or Path("build") / (stage or "dev") / "deployment.zip"
    if not package.is_file():
        raise DeploymentError(f"{package} does not exist: the deployed zip is read from the "
                              f"build directory (run `make deploy-local`), or pass --package")

    settings = Settings.from_environ(host=args.host, port=args.port, create_tables=False,
                                     schedule_period=args.schedule_period)
    if not is_loopback(settings.host):
        log.warning("HOST=%s is not a loopback address: the gateway, including its Lambda Invoke "
                    "API, is reachable from the network", settings.host)
    sock = bind(settings.host, settings.port)
    app = None
    gateway = None
    try:
        gateway_url = f"http://{settings.host}:{sock.getsockname()[1]}"
        emulator = Emulator(endpoint, region)
        try:
            wiring = emulator.api(args.api_id or outputs.get("api_id"), stage)
        except EndpointConnectionError:
            raise DeploymentError(
                f"nothing answers at {endpoint}: the emulator the stack was applied to is gone "
                f"(an embedded moto stops with `make deploy-local` unless HOLD=1). Run "
                f"`make deploy-local HOLD=1` and keep it running, then `make run-deployed`") from None
        account_id = "123456789012"
        if wiring.authorizer_function_arn:
            account_id = wiring.authorizer_function_arn.split(":")[4]
        app = DeployedApp(emulator, wiring, package=package.resolve(),
                          cache_dir=Path(args.cache_dir).resolve(), gateway_url=gateway_url,
                          account_id=account_id)
        await asyncio.get_running_loop().run_in_executor(None, app.load)
        for line in describe(app):
            log.info("%s", line)
        import attrs

        settings = attrs.evolve(settings, stage=wiring.stage, api_id=wiring.api_id,
                                region=region, account_id=account_id)
        gateway = Gateway(app, settings)
        await gateway.start(sock=sock)
    except BaseException:
        sock.close()
        if gateway is not None:
            await gateway.stop()
        if app is not None:
            app.shutdown()
        raise

    ws = gateway_url.replace("http://", "ws://")
    print(f"deployed stack ready: ws={ws}/{wiring.stage} http={gateway_url} aws={endpoint} "
          f"api={wiring.api_id} functions={len(app.functions)} (Ctrl-C stops)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            os._exit(EXIT_INTERRUPTED)
        log.info("stopping (Ctrl-C again to exit at once)")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    await stop.wait()
    await gateway.stop()
    app.shutdown()
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack run-deployed",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--outputs", type=Path, default=Path("build/local/dev/outputs.json"),
                        help="the stack's `terraform output -json` (default build/local/dev/outputs.json)")
    parser.add_argument("--package", type=Path,
                        help="the deployed zip (default build/<stage>/deployment.zip); its SHA-256 "
                             "must be the deployed CodeSha256")
    parser.add_argument("--endpoint", help="the emulator (default AWS_ENDPOINT_URL, else the outputs')")
    parser.add_argument("--api-id", help="the WebSocket API (default: the outputs' api_id)")
    parser.add_argument("--stage", help="the API stage (default: the outputs' api_stage_name)")
    parser.add_argument("--host", help="gateway host (HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="gateway port (PORT, default 8000; 0 picks one)")
    parser.add_argument("--schedule-period", type=float,
                        help="run scheduled functions at this period in seconds "
                             "(GATEWAY_SCHEDULE_PERIOD_SECONDS; default: their rule's schedule)")
    parser.add_argument("--cache-dir", default="build/run-deployed",
                        help="where the deployed zip is extracted (default build/run-deployed)")
    parser.add_argument("--log-level", default=os.environ.get("LOCAL_STACK_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("botocore", "urllib3", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return asyncio.run(serve(args))
    except DeploymentError as exc:
        print(f"run-deployed: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"run-deployed: {exc}", file=sys.stderr)
        return 1
