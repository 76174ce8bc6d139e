"""Cold starts measured the way Lambda has them: for each function, a fresh Python
process imports app.py from the deployment package (no .pyc: the zip ships none and
Lambda's file system is read-only) and serves its first request, against a moto
server and a stand-in for @connections and Lambda's Invoke API on 127.0.0.1.

boto3/botocore are the runtime's in Lambda, where they come compiled; here they are
the virtualenv's, compiled once beforehand to match. Reported per function, as the
median of several runs: the import of app.py, the first request, and the whole from
process start to the request served; and the bare interpreter's start, which Lambda
pays too. Run by `make bench`, or alone: ``python bench/cold_start.py``.
"""

from __future__ import annotations

import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
SITE = Path(sysconfig.get_paths()["purelib"])  # this virtualenv's
RUNTIME_PACKAGES = ("boto3", "botocore", "urllib3", "jmespath", "dateutil", "s3transfer", "six.py")

# What each function's first request is: (handler attribute, event maker).
CHILD = r"""
import json, os, sys, time
started = float(os.environ["BENCH_SPAWNED_AT"])
t0 = time.perf_counter()
import app
t1 = time.perf_counter()
event = json.loads(os.environ["BENCH_EVENT"])
handler = getattr(app, os.environ["BENCH_HANDLER"])

class Context:
    function_name = os.environ["BENCH_HANDLER"]
    aws_request_id = "bench"
    def get_remaining_time_in_millis(self):
        return 30000

result = handler(event, Context())
t2 = time.perf_counter()
print(json.dumps({"import_ms": 1000 * (t1 - t0), "request_ms": 1000 * (t2 - t1),
                  "total_ms": 1000 * (time.time() - started), "result": str(result)[:200]}))
"""


class _Endpoint(BaseHTTPRequestHandler):
    """@connections (every post and close succeeds), Lambda Invoke (accepted) and a JWKS."""

    jwks = b"{}"

    def _answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(202 if "/functions/" in self.path else 200)

    def do_DELETE(self):
        self._answer(204)

    def do_GET(self):
        self._answer(200, self.jwks if self.path.endswith("jwks.json") else b"{}")

    def log_message(self, *args):
        pass


def _task_root(zip_path: Path, into: Path) -> Path:
    """The deployment zip, unpacked; compiled extensions built for another Python
    (the package targets python3.13) are taken from the virtualenv instead."""
    with zipfile.ZipFile(zip_path) as package:
        package.extractall(into)
    tag = f"cpython-{sys.version_info[0]}{sys.version_info[1]}"
    for extension in list(into.rglob("*.so")):
        if "abi3" not in extension.name and tag not in extension.name:
            top = extension.relative_to(into).parts[0]
            shutil.rmtree(into / top, ignore_errors=True) if (into / top).is_dir() else extension.unlink()
    for stale in into.rglob("__pycache__"):
        shutil.rmtree(stale, ignore_errors=True)
    return into


def _events(session_id, speaker, listener, token, endpoint):
    now_ms = int(time.time() * 1000)

    def context(cid, route, kind):
        return {"routeKey": route, "eventType": kind, "connectionId": cid, "connectedAt": now_ms,
                "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com", "stage": "dev",
                "apiId": "abcdef1234", "requestTimeEpoch": now_ms, "messageId": "bench",
                "identity": {"sourceIp": "203.0.113.9", "userAgent": "bench"}}

    join = {"action": "joinSession", "sessionId": session_id, "targetLanguage": "es"}
    arn = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/dev/$connect"
    return {
        "authorizer": ("authorizer", {"type": "REQUEST", "methodArn": arn,
                                      "queryStringParameters": {"action": "createSession",
                                                                "sourceLanguage": "en", "token": token},
                                      "requestContext": context("new", "$connect", "CONNECT")}),
        "websocket_connect": ("on_ws_connect", {"queryStringParameters": join, "isBase64Encoded": False,
                                                "requestContext": {**context("Bench0000000000=", "$connect", "CONNECT"),
                                                                   "authorizer": {"principalId": "anonymous",
                                                                                  "role": "listener"}}}),
        "websocket_message": ("on_ws_message", {"body": json.dumps({"action": "heartbeat"}),
                                                "isBase64Encoded": False,
                                                "requestContext": context(listener, "$default", "MESSAGE")}),
        "websocket_disconnect": ("on_ws_disconnect", {"isBase64Encoded": False, "requestContext": {
            **context(listener, "$disconnect", "DISCONNECT"), "disconnectStatusCode": 1001}}),
        "deliver_welcome": ("deliver_welcome", {"connection_id": listener, "endpoint": endpoint,
                                                "message": {"type": "sessionJoined"},
                                                "deadline": time.time() + 5}),
        "publish": ("publish", {"sessionId": session_id, "type": "translation", "data": {"text": "hola"}}),
        "sweep_shard": ("sweep_shard", {"shard": 0}),
    }


def measure(zip_path: Path, runs: int = RUNS) -> dict:
    """{function: {import_ms, request_ms, total_ms}} medians, plus the interpreter's."""
    from chalicelib.config import Config
    from local_stack.moto_server import MotoServer

    for name in RUNTIME_PACKAGES:  # compiled, as in the Lambda runtime
        path = SITE / name
        if path.is_dir():
            compileall.compile_dir(str(path), quiet=2)
        elif path.is_file():
            compileall.compile_file(str(path), quiet=2)

    moto = MotoServer(port=0)  # the project's one way of starting moto
    aws = moto.start()
    from local_stack.issuer import LocalIssuer

    state = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    issuer = LocalIssuer(state / "issuer")
    _Endpoint.jwks = json.dumps(issuer.jwks()).encode()
    endpoint = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    threading.Thread(target=endpoint.serve_forever, daemon=True).start()
    local = f"http://127.0.0.1:{endpoint.server_address[1]}"
    env = {**os.environ, "AWS_ENDPOINT_URL": aws, "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
           "AWS_ENDPOINT_URL_LAMBDA": local, "MANAGEMENT_API_URL": local,
           "TOKEN_ISSUER": issuer.issuer, "TOKEN_AUDIENCE": issuer.audience,
           "JWKS_URL": f"{local}/.well-known/jwks.json", "SWEEP_SHARDS": "1",
           "PYTHONDONTWRITEBYTECODE": "1", "LOG_LEVEL": "WARNING"}
    try:
        session_id, speaker, listener = _seed(aws, Config.from_environ(env), env)
        task_root = _task_root(zip_path, state / "task")
        env["PYTHONPATH"] = os.pathsep.join([str(task_root), str(SITE)])
        results = {}
        bare = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-I", "-c", "pass"], check=True)
            bare.append(1000 * (time.perf_counter() - start))
        results["(interpreter start)"] = {"total_ms": statistics.median(bare)}
        for function, (handler, event) in _events(session_id, speaker, listener,
                                                  issuer.token("bench"), local).items():
            samples = []
            for _ in range(runs):
                if function == "websocket_disconnect":  # each run needs a listener to leave
                    _seed_listener(aws, Config.from_environ(env), env, session_id, listener)
                run_env = {**env, "BENCH_HANDLER": handler, "BENCH_EVENT": json.dumps(event),
                           "BENCH_SPAWNED_AT": repr(time.time())}
                out = subprocess.run([sys.executable, "-c", CHILD], cwd=task_root, env=run_env,
                                     capture_output=True, text=True, timeout=120)
                if out.returncode != 0:
                    raise RuntimeError(f"{function}: {out.stderr[-2000:]}")
                samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
            results[function] = {key: statistics.median(s[key] for s in samples)
                                 for key in ("import_ms", "request_ms", "total_ms")}
            results[function]["result"] = samples[-1]["result"]  # what the handler returned
        return results
    finally:
        endpoint.shutdown()
        moto.stop()
        shutil.rmtree(state, ignore_errors=True)


def _store(aws, config):
    import botocore.session

    from chalicelib.state.schema import ensure_tables
    from chalicelib.state.store import Store

    client = botocore.session.get_session().create_client(
        "dynamodb", region_name="us-east-1", endpoint_url=aws,
        aws_access_key_id="test", aws_secret_access_key="test")
    ensure_tables(client, config)
    return Store(client, config)


def _seed(aws, config, env):
    """A session with its speaker and one listener, written with the app's own store."""
    from chalicelib.state.records import ACTIVE, LISTENER, SPEAKER, BroadcastState, Connection, Session

    store = _store(aws, config)
    now = time.time()
    now_ms = int(now * 1000)
    session = Session(session_id="faithful-shepherd-427", speaker_user_id="bench",
                      speaker_connection_id="BenchSpeaker000=", source_language="en",
                      quality_tier="standard", status=ACTIVE, listener_count=0, created_at=now_ms,
                      expires_at=int(now) + 7200, sweep_shard=0,
                      broadcast_state=BroadcastState(last_state_change=now_ms))
    speaker = Connection(connection_id="BenchSpeaker000=", session_id=session.session_id, role=SPEAKER,
                         connected_at=now_ms, last_seen_at=now_ms, ttl=int(now) + 10800)
    store.create_session(session, speaker)
    listener = Connection(connection_id="BenchListener00=", session_id=session.session_id, role=LISTENER,
                          target_language="es", connected_at=now_ms - 60000, last_seen_at=now_ms,
                          ttl=int(now) + 10800, speaker_connection_id=speaker.connection_id)
    store.add_listener(listener, None)
    return session.session_id, speaker.connection_id, listener.connection_id


def _seed_listener(aws, config, env, session_id, listener_id):
    from chalicelib.state.records import LISTENER, Connection

    store = _store(aws, config)
    if store.get_connection(listener_id) is None:
        now_ms = int(time.time() * 1000)
        store.add_listener(Connection(connection_id=listener_id, session_id=session_id, role=LISTENER,
                                      target_language="es", connected_at=now_ms - 60000,
                                      last_seen_at=now_ms, ttl=int(time.time()) + 10800,
                                      speaker_connection_id="BenchSpeaker000="), None)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    zip_path = ROOT / "build" / "dev" / "deployment.zip"
    if not zip_path.is_file():
        print("no build/dev/deployment.zip: `make package` first", file=sys.stderr)
        return 1
    for function, numbers in measure(zip_path).items():
        print(f"  {function:<22} " + "  ".join(f"{k} {v:7.1f}" for k, v in numbers.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
