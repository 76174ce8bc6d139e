"""``python -m local_stack run-deployed`` (``make run-deployed``) in front of the
stack Terraform applied to moto: the deployed functions, wired as deployed.

The end-to-end scenario signs a speaker in with the emulator's Cognito, creates
a session, joins a listener, gets a heartbeat acknowledged, and ends the session
by closing the speaker's socket: the listener is told and disconnected. Then a
copy of the deployed configuration is broken in the emulator (and restored) in
the ways AWS would fail: a wrong handler, a missing variable, a route wired to
the wrong function, an authorizer API Gateway may not invoke.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.terraform.tfsupport import ROOT

pytestmark = [pytest.mark.terraform, pytest.mark.e2e, pytest.mark.slow]

BANNER = re.compile(r"deployed stack ready: ws=(?P<ws>\S+) http=(?P<http>\S+)")
PASSWORD = "Speaker-Passw0rd!"
EMAIL = "speaker@example.com"


class RunDeployed:
    """The command as a user runs it, on a free port, stopped with Ctrl-C."""

    def __init__(self, stack, workdir):
        self.stack, self.workdir = stack, workdir
        self.log_path = workdir / "run-deployed.log"
        self.process = None
        self.ws = None

    def start(self, timeout=60):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_ENDPOINT_URL", "HOST", "PORT", "MANAGEMENT_API_URL"))}
        env.update(PORT="0", PYTHONUNBUFFERED="1")
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_stack", "run-deployed",
             "--outputs", str(self.stack.outputs_file), "--package", str(self.stack.package.zip),
             "--cache-dir", str(self.workdir / "cache")],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self._log)
        line = {}
        reader = threading.Thread(target=lambda: line.setdefault("text", self.process.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        match = BANNER.search(line.get("text", b"").decode())
        if not match:
            self.stop()
            raise AssertionError(f"run-deployed did not start:\n{self.log()[-4000:]}")
        self.ws = match["ws"]
        return self

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self._log.close()
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def url(self, **query):
        return f"{self.ws}?{urlencode(query)}"

    def status(self, **query) -> int:
        try:
            with connect(self.url(**query), open_timeout=30):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code


@pytest.fixture(scope="module")
def speaker_token(applied_stack):
    """An ID token of a speaker created in the stack's own (moto) user pool."""
    from tools import speakers

    outputs = speakers.read_outputs(applied_stack.outputs_file)
    client = speakers.cognito_client(outputs)
    speakers.create_speaker(client, outputs, EMAIL, PASSWORD)
    return speakers.speaker_token(client, outputs, EMAIL, PASSWORD)


@contextmanager
def run_deployed(stack, workdir):
    server = RunDeployed(stack, workdir).start()
    try:
        yield server
    finally:
        server.stop()


def recv(ws, timeout=30):
    return json.loads(ws.recv(timeout=timeout))


class TestEndToEnd:
    def test_speaker_listener_heartbeat_and_end(self, applied_stack, speaker_token, tmp_path):
        """A Cognito speaker creates a session, a listener joins, a heartbeat is
        acknowledged; the speaker leaves and the listener gets sessionEnded and is closed."""
        with run_deployed(applied_stack, tmp_path) as server:
            with connect(server.url(action="createSession", sourceLanguage="en", token=speaker_token),
                         open_timeout=30) as speaker:
                created = recv(speaker)
                assert created["type"] == "sessionCreated", created
                session = created["sessionId"]
                with connect(server.url(action="joinSession", sessionId=session, targetLanguage="es"),
                             open_timeout=30) as listener:
                    joined = recv(listener)
                    assert (joined["type"], joined["sessionId"]) == ("sessionJoined", session)
                    listener.send(json.dumps({"action": "heartbeat"}))
                    assert recv(listener)["type"] == "heartbeatAck"
                    speaker.close()  # the speaker leaves: $disconnect ends the session
                    ended = recv(listener)
                    assert (ended["type"], ended["reason"]) == ("sessionEnded", "speakerDisconnected")
                    with pytest.raises(ConnectionClosed):
                        listener.recv(timeout=30)
                    assert listener.close_code == 1000
            log = server.log()
        # What ran is what was deployed, and the log says how it was adapted.
        assert "route $connect     -> broadcast-dev-websocket_connect" in log
        assert "authorizer on $connect -> broadcast-dev-authorizer" in log
        assert re.search(r"MANAGEMENT_API_URL: https://\w+\.execute-api\.us-east-1\.amazonaws\.com/dev -> "
                         r"http://127\.0\.0\.1:\d+/dev", log)
        if sys.version_info[:2] != (3, 13):
            assert "is compiled for another Python than this" in log and "imported from .venv instead" in log

    def test_a_token_from_another_issuer_is_refused(self, applied_stack, tmp_path):
        """The deployed authorizer checks the deployed pool: a local-issuer token gets 401."""
        from local_stack.issuer import LocalIssuer

        token = LocalIssuer(tmp_path / "issuer").token("mallory")
        with run_deployed(applied_stack, tmp_path) as server:
            assert server.status(action="createSession", sourceLanguage="en", token=token) == 401
            assert server.status(action="createSession", sourceLanguage="en") == 401


class TestBrokenDeployments:
    """Each break is made in the emulator (a copy of the deployed config changed
    through the AWS APIs), served, checked, then undone."""

    @pytest.fixture
    def lam(self, applied_stack):
        return applied_stack.client("lambda")

    @contextmanager
    def changed_configuration(self, lam, function, **changes):
        before = lam.get_function_configuration(FunctionName=function)
        lam.update_function_configuration(FunctionName=function, **changes)
        try:
            yield
        finally:
            lam.update_function_configuration(
                FunctionName=function, Handler=before["Handler"],
                Environment={"Variables": before["Environment"]["Variables"]})

    def test_a_wrong_handler_fails_the_connect(self, applied_stack, lam, tmp_path):
        """$connect's function with a handler that does not exist: 500, as Lambda's
        Runtime.HandlerNotFound makes API Gateway answer."""
        with self.changed_configuration(lam, "broadcast-dev-websocket_connect", Handler="app.on_ws_connnect"):
            with run_deployed(applied_stack, tmp_path) as server:
                assert server.status(action="joinSession", sessionId="quiet-river-123", targetLanguage="es") == 500
                log = server.log()
        assert "Runtime.HandlerNotFound" in log and "on_ws_connnect" in log

    def test_a_missing_variable_fails_as_in_aws(self, applied_stack, lam, speaker_token, tmp_path):
        """Without TOKEN_AUDIENCE the deployed authorizer refuses every speaker (401);
        listeners, which need no token, still get in."""
        function = "broadcast-dev-authorizer"
        variables = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
        broken = {k: v for k, v in variables.items() if k != "TOKEN_AUDIENCE"}
        with self.changed_configuration(lam, function, Environment={"Variables": broken}):
            with run_deployed(applied_stack, tmp_path) as server:
                assert server.status(action="createSession", sourceLanguage="en", token=speaker_token) == 401
                # A listener reaches $connect (404: no such session), past the authorizer.
                assert server.status(action="joinSession", sessionId="quiet-river-123", targetLanguage="es") == 404

    def test_a_route_on_the_wrong_function_breaks_messages(self, applied_stack, speaker_token, tmp_path):
        """$default wired to the $disconnect function: a heartbeat is never acknowledged."""
        api = applied_stack.client("apigatewayv2")
        api_id = applied_stack.outputs["api_id"]
        routes = {r["RouteKey"]: r for r in api.get_routes(ApiId=api_id)["Items"]}
        integrations = {i["IntegrationId"]: i for i in api.get_integrations(ApiId=api_id)["Items"]}
        default = integrations[routes["$default"]["Target"].split("/", 1)[1]]
        disconnect = integrations[routes["$disconnect"]["Target"].split("/", 1)[1]]
        api.update_integration(ApiId=api_id, IntegrationId=default["IntegrationId"],
                               IntegrationUri=disconnect["IntegrationUri"])
        try:
            with run_deployed(applied_stack, tmp_path) as server:
                assert "route $default     -> broadcast-dev-websocket_disconnect" in server.log()
                with connect(server.url(action="createSession", sourceLanguage="en",
                                        token=speaker_token), open_timeout=30) as speaker:
                    assert recv(speaker)["type"] == "sessionCreated"
                    speaker.send(json.dumps({"action": "heartbeat"}))
                    replies = []
                    try:
                        while True:
                            replies.append(recv(speaker, timeout=5))
                    except (TimeoutError, ConnectionClosed):
                        pass
                    assert "heartbeatAck" not in [r.get("type") for r in replies]
        finally:
            api.update_integration(ApiId=api_id, IntegrationId=default["IntegrationId"],
                                   IntegrationUri=default["IntegrationUri"])

    def test_an_authorizer_api_gateway_may_not_invoke_refuses_everyone(self, applied_stack, lam, tmp_path):
        """Without the lambda permission for the API's authorizer, every connect is a 500."""
        function = "broadcast-dev-authorizer"
        statements = json.loads(lam.get_policy(FunctionName=function)["Policy"])["Statement"]
        statement = next(s for s in statements if s["Sid"] == "AllowApiGatewayAuthorizer")
        lam.remove_permission(FunctionName=function, StatementId="AllowApiGatewayAuthorizer")
        try:
            with run_deployed(applied_stack, tmp_path) as server:
                assert server.status(action="joinSession", sessionId="quiet-river-123", targetLanguage="es") == 500
                log = server.log()
            assert "may not invoke broadcast-dev-authorizer as the API's authorizer" in log
        finally:
            lam.add_permission(
                FunctionName=function, StatementId="AllowApiGatewayAuthorizer",
                Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com",
                SourceArn=statement["Condition"]["ArnLike"]["AWS:SourceArn"])


class TestSpeakerCommands:
    def test_speaker_user_then_speaker_token(self, applied_stack):
        """`make speaker-user` prints a generated password once; `make speaker-token` prints
        an ID token alone on its last line that the deployed pool's keys verify; a wrong
        password is a clear refusal."""
        import jwt

        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_ENDPOINT_URL") and k != "PASSWORD"}
        command = [sys.executable, str(ROOT / "tools" / "speakers.py"), "--outputs",
                   str(applied_stack.outputs_file)]
        created = subprocess.run([*command, "create", "cli@example.com"], env=env,
                                 capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stderr
        password = re.search(r"^password .*: (\S+)$", created.stdout, re.MULTILINE).group(1)
        issued = subprocess.run([*command, "token", "cli@example.com"], env={**env, "PASSWORD": password},
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert issued.returncode == 0, issued.stderr
        token = issued.stdout.strip().splitlines()[-1]
        outputs = applied_stack.outputs
        key = jwt.PyJWKClient(outputs["jwks_url"]).get_signing_key_from_jwt(token).key
        claims = jwt.decode(token, key, algorithms=["RS256"], audience=outputs["token_audience"],
                            issuer=outputs["token_issuer"])
        assert (claims["token_use"], claims["email"]) == ("id", "cli@example.com")
        refused = subprocess.run([*command, "token", "cli@example.com"], env={**env, "PASSWORD": "Wrong-Passw0rd!"},
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and "sign-in of cli@example.com failed" in refused.stderr
