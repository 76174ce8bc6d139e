"""The log-privacy grep (issue 12): everything the local stacks and the app's
functions logged during the e2e run holds no token and, once issue 11 lands, no raw
connection id; and no address of a client.

It runs last among the e2e tests (file order) and reads every stack log the run
wrote (``stack_logs`` in conftest.py). It first drives the shared stack through
what tempted leaks before: a JWT as a language, ``;token=<JWT>`` glued to a value,
forged tokens, a token as an unknown parameter, in a message, in a close reason and
in unsigned ``@connections`` and Lambda posts; and it starts a stack whose
``@connections`` endpoint is unreachable, so that the app logs a failed delivery.

Lines are attributed by logger: ``local_stack.*`` is the gateway, anything else
the app (whose lines are JSON objects, issue 11, naming connections by a keyed
hash). The scenario's clients connect from 127.0.0.2, an address no server here
has, so that a logged client address can be told apart.
Figures: build/attack-figures.json ("log privacy").
"""
import json
import re
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from test_e2e_long_sessions import wait_until
from tests.support.attack_figures import tally
from tests.support.aws_http import http

pytestmark = [pytest.mark.e2e, pytest.mark.attack]

# header.payload of a JWT, even without its signature.
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")
TOKEN_VALUE = re.compile(r"token=[^&\s'\"]{8,}", re.IGNORECASE)
# API Gateway's connection ids (local_stack.apigw.events): 15 alphanumerics and '='.
CONNECTION_ID = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9]{15}=(?![A-Za-z0-9=])")
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ (?P<logger>[\w.$-]+): ")
# The scenario's clients connect from this address (loopback too): 127.0.0.1 is also
# every server's address here (the stack's URLs, botocore's connection pool), so
# only a client address of its own can be told apart in the logs.
CLIENT = ("127.0.0.2", 0)


class Line:
    def __init__(self, path, number, text, logger):
        self.path, self.number, self.text, self.logger = path, number, text, logger

    @property
    def by_gateway(self):
        return self.logger.startswith("local_stack")

    def __repr__(self):
        return f"{Path(self.path).name}:{self.number} [{self.logger}] {self.text[:160]}"


def read_lines(paths):
    """Every line of every log, with the logger of the record it belongs to."""
    lines = []
    for path in paths:
        if not Path(path).exists():
            continue
        logger = "?"
        for number, text in enumerate(Path(path).read_text(errors="replace").splitlines(), 1):
            match = RECORD.match(text)
            if match:
                logger = match["logger"]
            elif text.startswith("{"):  # one of the app's JSON lines (or Lambda's)
                try:
                    logger = json.loads(text).get("logger", "?")
                except ValueError:
                    pass
            lines.append(Line(path, number, text, logger))
    return lines


def client(url):
    return connect(url, open_timeout=10, close_timeout=2, source_address=CLIENT)


def refused(url):
    try:
        with client(url):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


@pytest.fixture(scope="module")
def tempted(stack, tmp_path_factory):
    """Drive the shared stack through every known way a token reached a log."""
    token = stack.token("privacy")
    forged = token[:-8] + "AAAAAAAA"
    base = stack.ws
    refused(f"{base}?action=createSession;sourceLanguage=en;token={token}")
    refused(f"{base}?action=createSession&sourceLanguage=en;token={token}&token={token}")
    refused(f"{base}?action=joinSession&sessionId=faithful-shepherd-427&targetLanguage={token}")
    refused(f"{base}?action=createSession&sourceLanguage=en&token={forged}")
    refused(f"{base}?action=createSession&sourceLanguage=en&token={token}.{token}")
    refused(f"{base}?action=refreshConnection&sessionId=faithful-shepherd-427&role=speaker&token={forged}")
    refused(f"{base}?action=bogus&extra={token}")
    with client(stack.url(action="createSession", sourceLanguage="en", token=token)) as speaker:
        welcome = json.loads(speaker.recv(timeout=10))
        for message in ({"action": token}, {"action": "setVolume", "volumeLevel": token},
                        {"action": "heartbeat", "token": token}, {"action": "sendAudio", "audioData": token}):
            speaker.send(json.dumps(message))
            speaker.recv(timeout=10)
        with client(stack.url(action="joinSession", sessionId=welcome["sessionId"],
                              targetLanguage="es")) as listener:
            listener.recv(timeout=10)
            listener.close(4000, token[:110])
        body = json.dumps({"type": "sessionEnded", "token": token}).encode()
        http("POST", f"{stack.http}/@connections/{welcome['connectionId']}", body,
             {"Content-Type": "text/plain", "Origin": "https://evil.example"})
        http("POST", f"{stack.http}/2015-03-31/functions/publish/invocations", body)
        speaker.send(b'{"action": "\xff' + token.encode() + b'"}', text=True)  # invalid UTF-8: 1007
    # A stack that cannot reach @connections: the app logs the failed first message.
    base = tmp_path_factory.mktemp("privacy")
    unreachable = type(stack)(base / "state", base / "stack.log", MANAGEMENT_API_URL="http://127.0.0.1:9",
                              WELCOME_DELIVERY_TIMEOUT_SECONDS="1").start()
    try:
        with unreachable.connect(action="createSession", sourceLanguage="en", token=unreachable.token()):
            wait_until(lambda: '"first message: ' in unreachable.log_path.read_text(), 30,
                       "the app to log its failed first message")
    finally:
        unreachable.stop()
    return token


@pytest.fixture(scope="module")
def lines(tempted, stack_logs):
    paths, _ = stack_logs
    result = read_lines(paths)
    figures = tally("log privacy")
    figures.tried = len(result)
    figures.extra.update(log_files=len({line.path for line in result}))
    return result


def count(name, hits):
    """Record ``hits`` (offending lines) in the figures; return them."""
    figures = tally("log privacy")
    figures.extra[name] = len(hits)
    figures.wrongly_accepted += len(hits)
    return hits


def test_the_scenario_was_logged(lines):
    """The grep is not vacuous: the gateway's refusals and the app's token refusals
    are in the logs."""
    text = "\n".join(line.text for line in lines)
    assert " refused: 400 INVALID_LANGUAGE" in text or " refused: 400 " in text
    assert "speaker token refused" in text
    assert "disconnected: 1007" in text


def test_no_jwt_anywhere(lines, stack_logs):
    """No line holds anything shaped like a JWT, nor a part of a token minted here."""
    _, tokens = stack_logs
    pieces = {part for token in tokens for part in token.split(".")[1:] if len(part) > 16}
    hits = count("jwt_lines", [line for line in lines if JWT.search(line.text)
                               or any(piece[:32] in line.text for piece in pieces)])
    assert hits == []


def test_nothing_after_token(lines):
    """No line holds a 'token=' followed by a value."""
    assert count("token_value_lines", [line for line in lines if TOKEN_VALUE.search(line.text)]) == []


def test_the_gateway_logs_no_raw_connection_id(lines):
    """The gateway's own lines name connections by keyed hash only."""
    hits = [line for line in lines if line.by_gateway and CONNECTION_ID.search(line.text)]
    assert count("gateway_connection_id_lines", hits) == []


def test_the_app_logs_no_raw_connection_id(lines):
    """The app's lines hold no raw connection id, only its keyed hash ("connection")."""
    app = [line for line in lines if not line.by_gateway and line.text.startswith("{")]
    assert any('"connection":"c:' in line.text for line in app), "no app line names a connection"
    hits = [line for line in lines if not line.by_gateway and CONNECTION_ID.search(line.text)]
    assert count("app_connection_id_lines", hits) == []


def test_no_client_address(lines):
    """No line holds the address the scenario's clients connected from."""
    assert count("client_ip_lines", [line for line in lines if CLIENT[0] in line.text]) == []
