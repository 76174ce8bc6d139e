"""Attacks on the local gateway itself, over real sockets (issue 12: defects 3, 4, 10).

The fixture app echoes what it receives; the attacks are a sender's hostile frames,
a web page's cross-origin requests to the AWS APIs, and tokens smuggled into what
the gateway logs.
"""
import json
import logging
import time

import boto3
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side
from websockets.sync.client import connect

from tests.support.aws_http import http, signed_http
from tests.support.tokens import Issuer

pytestmark = [pytest.mark.e2e, pytest.mark.attack]

EVIL_ORIGIN = {"Origin": "https://evil.example"}


def connection_id_of(stack, count=1):
    events = stack.wait_for(lambda: len(stack.events("$connect")) >= count and stack.events("$connect"))
    return events[count - 1]["requestContext"]["connectionId"]


def nested(depth):
    return '{"action": "sendAudio", "x": %s1%s}' % ("[" * depth, "]" * depth)


def closed_with(ws):
    """The close frame the server sent, once the connection is closed."""
    with pytest.raises(ConnectionClosed) as info:
        while True:
            ws.recv(timeout=10)
    return info.value.rcvd


class TestHostileFrames:
    """Defect 3: one sender's frames must never abort its TCP connection."""

    @pytest.mark.parametrize("depth", [990, 5000, 16000])  # 16,000: one 32 KB frame
    def test_deeply_nested_json_reaches_default_and_the_socket_stays_open(self, stack, depth):
        """JSON nested 990 (or 16,000) levels is routed to $default (route
        selection cannot evaluate it) and the sender carries on; it used to abort
        the connection with 1006 (RecursionError in route selection)."""
        with connect(stack.ws) as ws:
            ws.send(nested(depth))
            assert json.loads(ws.recv(timeout=10)) == {"length": len(nested(depth))}
            ws.send("still here")
            assert json.loads(ws.recv(timeout=10))["echo"] == "still here"
        [first, _] = stack.events("$default")
        assert first["requestContext"]["routeKey"] == "$default"

    def test_invalid_utf8_in_a_text_frame_closes_with_1007(self, stack):
        """RFC 6455 8.1/7.4.1: a text message that is not UTF-8 fails the connection
        with close code 1007 (it used to drop the TCP connection: 1006); the app
        gets $disconnect with 1007 and never sees the message."""
        with connect(stack.ws) as ws:
            ws.send(b'{"action": "x\xff\xfe"}', text=True)
            close = closed_with(ws)
        assert close is not None and close.code == 1007
        [event] = stack.wait_for(lambda: stack.events("$disconnect"))
        assert event["requestContext"]["disconnectStatusCode"] == 1007
        assert stack.events("$default") == []

    def test_invalid_utf8_split_across_fragments_closes_with_1007(self, stack):
        """A text message fragmented into frames, invalid only as a whole (a lone
        surrogate's bytes spread over two frames), is refused the same way."""
        with connect(stack.ws) as ws:
            try:
                ws.send([b"ok \xed", b"\xa0\x80 end"], text=True)
                close = closed_with(ws)
            except ConnectionClosed as exc:
                # The server fails the connection on the second fragment; websockets
                # may still be sending (its closing empty frame) when the close arrives.
                close = exc.rcvd
        assert close is not None and close.code == 1007

    def test_valid_utf8_split_across_fragments_is_delivered(self, stack):
        """A multi-byte character split between two frames is valid: delivered whole."""
        with connect(stack.ws) as ws:
            ws.send([b"caf\xc3", b"\xa9"], text=True)
            assert json.loads(ws.recv(timeout=10))["echo"] == "café"

    def test_nothing_after_an_invalid_message_is_processed(self, stack):
        """RFC 6455 7.1.7: after failing the connection the server processes no more
        data, even frames that arrived in the same TCP segment."""
        with connect(stack.ws) as ws:
            client = Protocol(Side.CLIENT)
            client.send_frame(Frame(Opcode.TEXT, b"first"))
            client.send_frame(Frame(Opcode.TEXT, b"\xc0\xaf"))  # overlong '/': invalid
            client.send_frame(Frame(Opcode.TEXT, b"after"))
            ws.socket.sendall(b"".join(client.data_to_send()))
            # The echo of "first" may lose the race with the close; what matters is
            # what the app was handed.
            with pytest.raises((ConnectionClosed, ConnectionResetError)):
                while True:
                    ws.recv(timeout=10)
        [event] = stack.wait_for(lambda: stack.events("$disconnect"))
        assert event["requestContext"]["disconnectStatusCode"] == 1007
        assert [e["body"] for e in stack.events("$default")] == ["first"]

    def test_binary_frames_are_not_decoded(self, stack):
        """Binary messages may hold any bytes: never a 1007."""
        with connect(stack.ws) as ws:
            ws.send(b"\xff\xfe\xfd")
            assert json.loads(ws.recv(timeout=10))["echo"] == "//79"


class TestCrossOriginAndUnsigned:
    """Defect 10: a web page must not reach @connections or Lambda Invoke."""

    @pytest.fixture
    def open_connection(self, stack):
        with connect(stack.ws) as ws:
            yield ws, connection_id_of(stack)

    def assert_nothing_arrives(self, ws):
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)

    def test_a_simple_cross_origin_post_is_refused(self, stack, open_connection):
        """What a page can send without a preflight (POST, text/plain, its Origin,
        no Authorization) gets 403 and delivers nothing."""
        ws, cid = open_connection
        status, headers, body = http("POST", f"{stack.http}/@connections/{cid}",
                                     b'{"type": "sessionEnded"}',
                                     {"Content-Type": "text/plain", **EVIL_ORIGIN})
        assert status == 403 and headers["x-amzn-ErrorType"] == "AccessDeniedException"
        assert "message" in json.loads(body)
        self.assert_nothing_arrives(ws)

    def test_a_signed_request_with_an_origin_is_refused(self, stack, open_connection):
        """Even correctly signed, a request carrying a browser Origin is refused."""
        ws, cid = open_connection
        status, headers, _ = signed_http("POST", f"{stack.http}/@connections/{cid}", b"forged",
                                         headers={"Origin": "null"})
        assert status == 403 and headers["x-amzn-ErrorType"] == "AccessDeniedException"
        self.assert_nothing_arrives(ws)

    @pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
    def test_unsigned_management_calls_are_missing_authentication_token(self, stack, open_connection, method):
        """No Authorization header: 403 MissingAuthenticationTokenException, as AWS
        answers; the connection is neither written to nor closed."""
        ws, cid = open_connection
        data = b"forged" if method == "POST" else None
        status, headers, body = http(method, f"{stack.http}/dev/@connections/{cid}", data)
        assert status == 403
        assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
        assert json.loads(body) == {"message": "Missing Authentication Token"}
        self.assert_nothing_arrives(ws)
        ws.send("alive")
        assert json.loads(ws.recv(timeout=10))["echo"] == "alive"

    @pytest.mark.parametrize("authorization,error", [
        ("Bearer abc", "IncompleteSignatureException"),
        ("AWS4-HMAC-SHA256 Credential=test/20261202/us-east-1/execute-api/aws4_request",
         "IncompleteSignatureException"),
        ("AWS4-HMAC-SHA256 Credential=test/20261202/us-east-1/s3/aws4_request, "
         "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64, "InvalidSignatureException"),
    ])
    def test_malformed_or_misscoped_signatures_are_refused(self, stack, open_connection,
                                                           authorization, error):
        """An Authorization header that is not a SigV4 one for execute-api: 403."""
        ws, cid = open_connection
        status, headers, _ = http("POST", f"{stack.http}/@connections/{cid}", b"forged",
                                  {"Authorization": authorization})
        assert (status, headers["x-amzn-ErrorType"]) == (403, error)
        self.assert_nothing_arrives(ws)

    def test_a_preflight_is_never_approved(self, stack, open_connection):
        """The CORS preflight a page needs before sending Authorization is not
        answered with any Access-Control-Allow-* header."""
        _, cid = open_connection
        status, headers, _ = http("OPTIONS", f"{stack.http}/@connections/{cid}", None, {
            **EVIL_ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization"})
        assert status >= 400
        assert not any(name.lower().startswith("access-control-") for name in headers)

    def test_a_signed_post_without_origin_is_delivered(self, stack, open_connection):
        """The way SDKs call: signed, no Origin; delivered."""
        ws, cid = open_connection
        status, _, _ = signed_http("POST", f"{stack.http}/@connections/{cid}", b"hello")
        assert status == 200
        assert ws.recv(timeout=10) == "hello"

    @pytest.mark.parametrize("headers", [{}, EVIL_ORIGIN, {"Content-Type": "text/plain", **EVIL_ORIGIN}])
    def test_unsigned_or_cross_origin_invoke_runs_nothing(self, stack, headers):
        """Lambda Invoke without a signature, or from a page: 403, the function never runs."""
        status, _, _ = http("POST", f"{stack.http}/2015-03-31/functions/echo_function/invocations",
                            b'{"forged": true}', headers)
        assert status == 403
        time.sleep(0.3)
        assert stack.events("echo_function") == []

    def test_signed_invoke_runs_and_boto3_still_works(self, stack):
        """A signed raw invoke is served, and so is boto3's (which always signs)."""
        url = f"{stack.http}/2015-03-31/functions/echo_function/invocations"
        status, _, body = signed_http("POST", url, b'{"raw": 1}', service="lambda")
        assert status == 200 and json.loads(body)["event"] == {"raw": 1}
        client = boto3.session.Session().client("lambda", endpoint_url=stack.http,
                                                region_name="us-east-1")
        assert client.invoke(FunctionName="echo_function", Payload=b"{}")["StatusCode"] == 200

    def test_invoke_signed_for_another_service_is_refused(self, stack):
        """A signature scoped to execute-api does not open Lambda's API."""
        url = f"{stack.http}/2015-03-31/functions/echo_function/invocations"
        status, headers, _ = signed_http("POST", url, b"{}", service="execute-api")
        assert (status, headers["x-amzn-ErrorType"]) == (403, "InvalidSignatureException")

    def test_the_jwks_stays_readable_from_anywhere(self, stack):
        """Public keys are public: the JWKS answers unsigned and cross-origin requests."""
        status, _, body = http("GET", f"{stack.http}/.well-known/jwks.json", None, EVIL_ORIGIN)
        assert status == 200 and json.loads(body)["keys"]


class TestNothingSecretIsLogged:
    """Defect 4: what the gateway logs holds no token, no raw connection id."""

    @pytest.fixture
    def token(self):
        return Issuer().token("alice")

    @pytest.fixture
    def log(self, caplog):
        caplog.set_level(logging.DEBUG, logger="local_stack")
        return caplog

    def test_refusal_bodies_are_not_logged(self, stack, log, token):
        """A refusal whose body quotes the query (a token in it) logs its code only."""
        with pytest.raises(Exception):
            connect(f"{stack.ws}?status=400&token={token}", open_timeout=10)
        assert "REFUSED" in log.text
        assert token[:20] not in log.text and "as asked" not in log.text

    def test_a_failing_function_message_is_clipped(self, stack, log, token):
        """An authorizer that raises with the query in its message: the logged
        failure holds nothing from 'token' on."""
        with pytest.raises(Exception):
            connect(f"{stack.ws}?auth=error&token={token}", open_timeout=10)
        assert "RuntimeError" in log.text
        assert token[:20] not in log.text

    def test_a_close_reason_holding_a_jwt_is_redacted(self, stack, log, token):
        """The client's close reason is logged clipped: a JWT in it is redacted."""
        with connect(stack.ws) as ws:
            ws.close(4000, token[:100])
        stack.wait_for(lambda: stack.events("$disconnect"))
        assert "<redacted>" in log.text and token[:20] not in log.text

    def test_connection_ids_are_logged_as_keyed_hashes(self, stack, log):
        """Connected and disconnected lines name the connection by a keyed hash; the
        raw id (which @connections accepts) appears nowhere."""
        with connect(stack.ws):
            cid = connection_id_of(stack)
        stack.wait_for(lambda: stack.events("$disconnect"))
        lines = [r.getMessage() for r in log.records if r.name.startswith("local_stack")]
        connected = [line for line in lines if line.endswith(" connected")]
        assert connected and connected[0].startswith("conn:")
        assert not any(cid in line for line in lines)

    def test_a_dropped_frame_handler_fault_closes_with_1011(self, stack, log, monkeypatch):
        """Should frame handling itself fail (a fault of ours), the client gets close
        1011, not a dropped TCP connection, and the log names only the exception type."""
        from local_stack import apigw

        def broken(body, routes):
            raise ValueError(f"cannot route {body}")

        monkeypatch.setattr(apigw, "select_route", broken)
        with connect(stack.ws) as ws:
            ws.send("secret-value")
            assert closed_with(ws).code == 1011
        assert "ValueError" in log.text and "secret-value" not in log.text

