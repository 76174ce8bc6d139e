"""The gateway over real sockets, running the fixture app in-process.

Each test states one API Gateway behaviour; the fixture app records the
events it receives so the tests can check their shape.
"""
import json
import socket
import threading
import time

import boto3
import pytest
from botocore.config import Config
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from local_stack import apigw
from tests.support.aws_http import http, signed_http

pytestmark = pytest.mark.e2e

def refusal(url):
    with pytest.raises(InvalidStatus) as info:
        connect(url, open_timeout=10)
    response = info.value.response
    return response.status_code, bytes(response.body or b"").decode()


def management(stack):
    return boto3.session.Session().client(
        "apigatewaymanagementapi", endpoint_url=stack.http, region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}))


def connection_id_of(stack, count=1):
    events = stack.wait_for(lambda: len(stack.events("$connect")) >= count and stack.events("$connect"))
    return events[count - 1]["requestContext"]["connectionId"]


class TestConnect:
    def test_authorizer_runs_first_with_a_request_event(self, stack):
        """The authorizer sees a REQUEST event; $connect then sees its context."""
        with connect(stack.ws + "?x=1&x=2", additional_headers={"X-Test": "yes"}):
            pass
        [auth] = stack.events("authorizer")
        assert auth["type"] == "REQUEST"
        assert auth["methodArn"] == "arn:aws:execute-api:us-east-1:123456789012:local00api/dev/$connect"
        assert auth["headers"]["X-Test"] == "yes"
        assert auth["multiValueQueryStringParameters"] == {"x": ["1", "2"]}
        assert auth["requestContext"]["eventType"] == "CONNECT"
        [event] = stack.events("$connect")
        context = event["requestContext"]
        assert context["authorizer"] == {"userId": "user-1", "admin": "false", "n": "3",
                                         "principalId": "user-1"}
        assert context["connectionId"] == auth["requestContext"]["connectionId"]
        assert apigw.is_connection_id(context["connectionId"])
        assert context["identity"]["sourceIp"] == "127.0.0.1"
        assert context["stage"] == "dev" and context["apiId"] == "local00api"

    @pytest.mark.parametrize("mode,status", [
        ("deny", 403), ("unauthorized", 401), ("returned-unauthorized", 500), ("error", 500),
        ("garbage", 500), ("nested", 500),
    ])
    def test_authorizer_refusals(self, stack, mode, status):
        """Deny 403, a raised Unauthorized 401, a returned "Unauthorized" string, a failure
        or malformed output 500; no $connect."""
        assert refusal(f"{stack.ws}?auth={mode}")[0] == status
        assert stack.events("$connect") == []

    def test_connect_status_refuses_the_handshake(self, stack):
        """A non-2xx $connect refuses with that status and its body; no $disconnect."""
        status, body = refusal(f"{stack.ws}?status=404")
        assert status == 404
        assert json.loads(body)["code"] == "REFUSED"
        time.sleep(0.2)
        assert stack.events("$disconnect") == []

    def test_post_during_connect_is_gone(self, stack):
        """A post to the connection from inside its own $connect gets 410 GoneException."""
        with connect(stack.ws):
            pass
        assert stack.events("early-post") == [{"result": "gone"}]

    def test_async_invocation_delivers_the_first_message(self, stack):
        """$connect's lambda.invoke(InvocationType=Event) runs deliver_welcome, which can post."""
        with connect(stack.ws + "?welcome=1") as ws:
            assert json.loads(ws.recv(timeout=10)) == {"type": "welcome"}

    def test_root_path_and_stage_path(self, stack):
        """Both / and /<stage> accept connections; another stage is 403."""
        with connect(stack.http.replace("http", "ws") + "/"):
            pass
        assert refusal(stack.http.replace("http", "ws") + "/prod")[0] == 403

    def test_plain_get_is_not_an_upgrade(self, stack):
        """A GET without Upgrade is refused."""
        assert http("GET", stack.http + "/dev")[0] == 426


class TestMessages:
    def test_messages_go_to_default(self, stack):
        """Every message reaches $default with a MESSAGE event."""
        with connect(stack.ws) as ws:
            ws.send(json.dumps({"action": "anything"}))
            assert json.loads(ws.recv(timeout=10)) == {"echo": '{"action": "anything"}', "route": "$default"}
        [event] = stack.events("$default")
        context = event["requestContext"]
        assert context["eventType"] == "MESSAGE" and context["messageId"]
        assert context["authorizer"]["principalId"] == "user-1"
        assert event["isBase64Encoded"] is False

    def test_binary_messages_are_base64(self, stack):
        """A binary frame reaches the handler base64-encoded."""
        with connect(stack.ws) as ws:
            ws.send(b"\x00\x01")
            ws.recv(timeout=10)
        [event] = stack.events("$default")
        assert event["isBase64Encoded"] is True and event["body"] == "AAE="

    def test_failing_handler_sends_internal_server_error(self, stack):
        """When $default fails, the client gets API Gateway's error message and stays open."""
        with connect(stack.ws) as ws:
            ws.send("raise")
            reply = json.loads(ws.recv(timeout=10))
            assert reply["message"] == "Internal server error" and reply["connectionId"]
            ws.send("again")
            assert json.loads(ws.recv(timeout=10))["echo"] == "again"

    def test_frame_over_32kb_closes_with_1009(self, stack):
        """A frame over 32 KB closes with 1009 and fires $disconnect with it."""
        with connect(stack.ws, max_size=None) as ws:
            with pytest.raises(ConnectionClosed) as info:
                ws.send("x" * (32 * 1024 + 1))
                ws.recv(timeout=10)
        assert info.value.rcvd.code == 1009
        [event] = stack.wait_for(lambda: stack.events("$disconnect"))
        assert event["requestContext"]["disconnectStatusCode"] == 1009

    def test_message_over_128kb_closes_with_1009(self, stack):
        """Fragments of 32 KB adding up to more than 128 KB close with 1009."""
        with connect(stack.ws) as ws:
            chunk = "y" * (32 * 1024)
            with pytest.raises(ConnectionClosed) as info:  # while sending, or after
                ws.send(iter([chunk] * 5))  # one message, five fragments
                ws.recv(timeout=10)
        assert info.value.rcvd.code == 1009

    def test_128kb_in_32kb_fragments_is_accepted(self, stack):
        """Exactly 128 KB, in frames of at most 32 KB, is delivered."""
        with connect(stack.ws, max_size=None) as ws:
            ws.send(iter(["z" * (32 * 1024)] * 4))
            assert json.loads(ws.recv(timeout=10)) == {"length": 128 * 1024}


class TestManagementApi:
    def test_post_get_delete_through_boto3(self, stack):
        """boto3's apigatewaymanagementapi posts, reads and deletes a connection."""
        client = management(stack)
        with connect(stack.ws, user_agent_header="agent/1.0") as ws:
            connection_id = connection_id_of(stack)
            client.post_to_connection(ConnectionId=connection_id, Data=b'{"hello": 1}')
            assert json.loads(ws.recv(timeout=10)) == {"hello": 1}
            info = client.get_connection(ConnectionId=connection_id)
            assert info["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "agent/1.0"}
            assert info["ConnectedAt"] <= info["LastActiveAt"]
            client.delete_connection(ConnectionId=connection_id)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd.code == 1000
        [event] = stack.wait_for(lambda: stack.events("$disconnect"))
        assert event["requestContext"]["disconnectStatusCode"] == 1000
        with pytest.raises(client.exceptions.GoneException):
            client.post_to_connection(ConnectionId=connection_id, Data=b"late")
        with pytest.raises(client.exceptions.GoneException):
            client.get_connection(ConnectionId=connection_id)
        with pytest.raises(client.exceptions.GoneException):
            client.delete_connection(ConnectionId=connection_id)

    def test_gone_is_410_with_the_error_type_header(self, stack):
        """Unknown ids answer 410 with x-amzn-ErrorType: GoneException and a JSON body."""
        status, headers, body = signed_http("POST", stack.http + "/@connections/L0SM9cOFvHcCIhw%3D", b"x")
        assert status == 410
        assert headers["x-amzn-ErrorType"] == "GoneException"
        assert "message" in json.loads(body)

    def test_stage_prefixed_path(self, stack):
        """Chalice's own endpoint form /<stage>/@connections/{id} works too."""
        with connect(stack.ws) as ws:
            connection_id = connection_id_of(stack)
            status, _, _ = signed_http("POST", f"{stack.http}/dev/@connections/{connection_id}", b"hi")
            assert status == 200
            assert ws.recv(timeout=10) == "hi"

    def test_app_can_use_chalice_websocket_api(self, stack):
        """Chalice's WebsocketAPI info() and close() work against the gateway."""
        with connect(stack.ws) as ws:
            ws.send("info")
            info = json.loads(ws.recv(timeout=10))["info"]
            assert "127.0.0.1" in info["Identity"]
            ws.send("close-me")
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)

    def test_oversized_post_is_413(self, stack):
        """A post over 128 KB is PayloadTooLargeException."""
        with connect(stack.ws):
            connection_id = connection_id_of(stack)
            status, headers, _ = signed_http("POST", f"{stack.http}/@connections/{connection_id}",
                                             b"x" * (128 * 1024 + 1))
        assert status == 413 and headers["x-amzn-ErrorType"] == "PayloadTooLargeException"

    def test_post_over_256kb_is_still_api_gateways_413(self, stack):
        """Far over 128 KB (past any web server default) the answer is still API Gateway's:
        boto3 raises PayloadTooLargeException, and the client receives nothing."""
        with connect(stack.ws) as ws:
            connection_id = connection_id_of(stack)
            client = management(stack)
            with pytest.raises(client.exceptions.PayloadTooLargeException):
                client.post_to_connection(ConnectionId=connection_id, Data=b"x" * (300 * 1024))
            client.post_to_connection(ConnectionId=connection_id, Data=b"small")
            assert ws.recv(timeout=10) == "small"


class TestDisconnect:
    def test_disconnect_fires_once_with_the_client_code(self, stack):
        """A client close fires $disconnect once, with its code and reason."""
        with connect(stack.ws) as ws:
            ws.close(4001, "done")
        events = stack.wait_for(lambda: stack.events("$disconnect"))
        time.sleep(0.3)
        assert len(stack.events("$disconnect")) == 1
        context = events[0]["requestContext"]
        assert (context["disconnectStatusCode"], context["disconnectReason"]) == (4001, "done")
        assert context["eventType"] == "DISCONNECT"

    def test_dropped_socket_fires_disconnect_1006(self, stack):
        """A socket lost without a close frame still fires $disconnect (1006)."""
        with connect(stack.ws) as ws:
            ws.socket.shutdown(socket.SHUT_RDWR)
            ws.socket.close()
        [event] = stack.wait_for(lambda: stack.events("$disconnect"))
        assert event["requestContext"]["disconnectStatusCode"] == 1006

    def test_idle_timeout_closes_with_1001(self, make_stack):
        """No message for the idle timeout closes with 1001 and fires $disconnect."""
        stack = make_stack(idle_timeout=0.5)
        with connect(stack.ws, ping_interval=0.1) as ws:  # pings are not activity
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=10)
        assert info.value.rcvd.code == 1001
        [event] = stack.wait_for(lambda: stack.events("$disconnect"))
        assert event["requestContext"]["disconnectStatusCode"] == 1001

    def test_messages_keep_a_connection_alive(self, make_stack):
        """Messages reset the idle timer."""
        stack = make_stack(idle_timeout=1.5)
        with connect(stack.ws) as ws:
            for _ in range(8):  # 2.4 s in all, never 1.5 s without a message
                time.sleep(0.3)
                ws.send("ping")
                ws.recv(timeout=10)

    def test_max_duration_closes_with_1001(self, make_stack):
        """A connection older than the maximum duration closes with 1001."""
        stack = make_stack(max_connection_duration=0.8)
        with connect(stack.ws) as ws:
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    ws.send("keep")
                    ws.recv(timeout=10)
                    time.sleep(0.1)
        assert info.value.rcvd.code == 1001

    def test_shutdown_closes_connections_and_fires_disconnect(self, make_stack):
        """Stopping the stack closes open sockets with 1001 and fires $disconnect."""
        stack = make_stack()
        module = stack.module
        with connect(stack.ws) as ws:
            stack.stop()
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=10)
        assert info.value.rcvd.code == 1001
        assert [r for r, _ in module.EVENTS].count("$disconnect") == 1

    def test_shutdown_during_connect_fires_no_disconnect(self, make_stack):
        """Stopping the stack while a $connect still runs refuses that handshake and
        fires no $disconnect: the connection was never accepted."""
        stack = make_stack()
        module = stack.module
        outcome = {}

        def client():
            try:
                with connect(stack.ws + "?slow=3", open_timeout=30):
                    outcome["opened"] = True
            except Exception as exc:  # the refused or dropped handshake
                outcome["error"] = exc

        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        assert stack.wait_for(lambda: stack.events("$connect"))  # $connect is running
        stack.stop()
        thread.join(30)
        assert "opened" not in outcome and "error" in outcome
        assert [r for r, _ in module.EVENTS].count("$disconnect") == 0


class TestLambdaInvokeApi:
    def test_request_response(self, stack):
        """boto3's lambda.invoke RequestResponse returns the function's result."""
        client = boto3.session.Session().client("lambda", endpoint_url=stack.http, region_name="us-east-1")
        response = client.invoke(FunctionName="fixture-dev-echo_function", Payload=b'{"a": 1}')
        assert response["StatusCode"] == 200
        assert json.loads(response["Payload"].read())["event"] == {"a": 1}

    def test_event_invocation_is_accepted(self, stack):
        """InvocationType=Event answers 202 and runs in the background."""
        client = boto3.session.Session().client("lambda", endpoint_url=stack.http, region_name="us-east-1")
        response = client.invoke(FunctionName="echo_function", InvocationType="Event",
                                 Payload=b'{"async": true}')
        assert response["StatusCode"] == 202
        assert stack.wait_for(lambda: stack.events("echo_function")) == [{"async": True}]

    def test_function_error(self, stack):
        """A failing function reports FunctionError=Unhandled with Lambda's payload."""
        client = boto3.session.Session().client("lambda", endpoint_url=stack.http, region_name="us-east-1")
        response = client.invoke(FunctionName="failing_function")
        assert response["FunctionError"] == "Unhandled"
        assert json.loads(response["Payload"].read())["errorType"] == "ValueError"

    def test_request_response_takes_lambdas_6mb(self, stack):
        """A synchronous invoke with a 1 MB payload (over 256 KB) is answered by the function."""
        client = boto3.session.Session().client("lambda", endpoint_url=stack.http, region_name="us-east-1")
        payload = json.dumps({"blob": "y" * (1024 * 1024)}).encode()
        response = client.invoke(FunctionName="echo_function", Payload=payload)
        assert response["StatusCode"] == 200 and "FunctionError" not in response
        assert len(json.loads(response["Payload"].read())["event"]["blob"]) == 1024 * 1024

    def test_invoke_over_6mb_is_request_too_large(self, stack):
        """Over Lambda's 6 MB, boto3 raises Lambda's RequestTooLargeException."""
        client = boto3.session.Session().client("lambda", endpoint_url=stack.http, region_name="us-east-1",
                                                config=Config(retries={"max_attempts": 1}))
        payload = json.dumps({"blob": "z" * (6 * 1024 * 1024)}).encode()
        with pytest.raises(client.exceptions.RequestTooLargeException):
            client.invoke(FunctionName="echo_function", Payload=payload)

    def test_unknown_function_is_404(self, stack):
        """An unknown function is ResourceNotFoundException."""
        client = boto3.session.Session().client("lambda", endpoint_url=stack.http, region_name="us-east-1")
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.invoke(FunctionName="nope")


class TestSchedulesAndJwks:
    def test_scheduled_function_runs_at_the_override_period(self, make_stack):
        """With a period override, @app.schedule functions run repeatedly."""
        stack = make_stack(schedule_period=0.2)
        ticks = stack.wait_for(lambda: len(stack.module.TICKS) >= 2 and stack.module.TICKS)
        assert ticks[0]["detail-type"] == "Scheduled Event"
        assert ticks[0]["resources"][0].endswith(":rule/fixture-dev-tick-event")

    def test_jwks_is_served(self, stack):
        """The local issuer's JWKS is at /.well-known/jwks.json."""
        status, _, body = http("GET", stack.http + "/.well-known/jwks.json")
        assert status == 200
        [key] = json.loads(body)["keys"]
        assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["kid"]
