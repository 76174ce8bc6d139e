"""Sans-I/O tests of the API Gateway rules: events, authorizer, connections."""
import base64
import json

import pytest
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import Protocol, Side

from local_stack import apigw

API = apigw.ApiContext(api_id="abcde12345", stage="dev", domain_name="127.0.0.1:8000")
REQUEST = apigw.HandshakeRequest(
    headers=(("Host", "127.0.0.1:8000"), ("User-Agent", "test-agent"), ("X-Multi", "a"),
             ("X-Multi", "b")),
    query=(("action", "joinSession"), ("lang", "es"), ("lang", "fr")),
    source_ip="127.0.0.2",
    port=8000,
    scheme="http",
)


def make_connection(**kwargs):
    values = dict(connection_id=apigw.new_connection_id(), request=REQUEST, connected_at=1000.0,
                  idle_timeout=600.0, max_duration=7200.0)
    values.update(kwargs)
    return apigw.Connection(**values)


def client_bytes(*frames):
    """What a client sends for these frames (masked, as RFC 6455 5.3 requires)."""
    client = Protocol(Side.CLIENT)
    for opcode, data, fin in frames:
        client.send_frame(Frame(opcode, data, fin))
    return b"".join(client.data_to_send())


def server_frames(conn):
    """Parse what the server wrote back, as a client would."""
    client = Protocol(Side.CLIENT, max_size=None)
    for chunk in conn.data_to_send():
        if chunk:
            client.receive_data(chunk)
    return client.events_received()


class TestIdentifiers:
    def test_connection_id_looks_like_api_gateways(self):
        """Ids are 15 base64 characters and '=', like 'L0SM9cOFvHcCIhw='."""
        ids = {apigw.new_connection_id() for _ in range(200)}
        assert len(ids) == 200
        for value in ids:
            assert apigw.is_connection_id(value)
            assert len(base64.b64decode(value)) == 11

    def test_request_time_format(self):
        """requestTime uses API Gateway's CLF format."""
        assert apigw.request_time(1549713027441) == "09/Feb/2019:11:50:27 +0000"

    def test_iso8601_has_milliseconds(self):
        """@connections GET timestamps are ISO 8601 with milliseconds and Z."""
        assert apigw.iso8601(1549713027.441) == "2019-02-09T11:50:27.441Z"


class TestEvents:
    def test_authorizer_event_is_a_request_event(self):
        """The authorizer gets type REQUEST, methodArn, headers, query and requestContext."""
        event = apigw.authorizer_event(API, REQUEST, connection_id="L0SM9cOFvHcCIhw=", now_ms=1)
        assert event["type"] == "REQUEST"
        assert event["methodArn"] == "arn:aws:execute-api:us-east-1:123456789012:abcde12345/dev/$connect"
        assert event["headers"]["User-Agent"] == "test-agent"
        assert event["multiValueHeaders"]["X-Multi"] == ["a", "b"]
        assert event["headers"]["X-Forwarded-For"] == "127.0.0.2"
        assert event["queryStringParameters"] == {"action": "joinSession", "lang": "fr"}
        assert event["multiValueQueryStringParameters"]["lang"] == ["es", "fr"]
        context = event["requestContext"]
        assert context["routeKey"] == "$connect"
        assert context["eventType"] == "CONNECT"
        assert context["connectionId"] == "L0SM9cOFvHcCIhw="
        assert context["identity"]["sourceIp"] == "127.0.0.2"
        assert context["apiId"] == "abcde12345"

    def test_connect_event_carries_the_authorizer_context(self):
        """$connect sees requestContext.authorizer with principalId and the context."""
        event = apigw.connect_event(API, REQUEST, connection_id="x", connected_at=5, now_ms=6,
                                    authorizer={"userId": "u", "principalId": "p"})
        context = event["requestContext"]
        assert context["authorizer"] == {"userId": "u", "principalId": "p"}
        assert context["connectedAt"] == 5 and context["requestTimeEpoch"] == 6
        assert context["domainName"] == "127.0.0.1:8000" and context["stage"] == "dev"
        assert event["isBase64Encoded"] is False
        assert "methodArn" not in event

    def test_query_keys_absent_without_a_query_string(self):
        """Without a query string API Gateway omits both query maps."""
        bare = apigw.HandshakeRequest()
        event = apigw.connect_event(API, bare, connection_id="x", connected_at=1, now_ms=1,
                                    authorizer=None)
        assert "queryStringParameters" not in event
        assert "multiValueQueryStringParameters" not in event
        assert "authorizer" not in event["requestContext"]

    def test_message_event_text_and_binary(self):
        """Text bodies arrive as is; binary ones base64-encoded with isBase64Encoded."""
        common = dict(connection_id="x", connected_at=1, now_ms=2, source_ip="1.2.3.4",
                      route_key="$default", authorizer={"principalId": "p"})
        text = apigw.message_event(API, body='{"a":1}', **common)
        assert text["body"] == '{"a":1}' and text["isBase64Encoded"] is False
        assert text["requestContext"]["eventType"] == "MESSAGE"
        assert text["requestContext"]["messageId"]
        assert text["requestContext"]["authorizer"] == {"principalId": "p"}
        binary = apigw.message_event(API, body=b"\x00\x01", **common)
        assert binary["isBase64Encoded"] is True
        assert base64.b64decode(binary["body"]) == b"\x00\x01"

    def test_disconnect_event_has_status_and_reason(self):
        """$disconnect carries disconnectStatusCode and disconnectReason."""
        event = apigw.disconnect_event(API, REQUEST, connection_id="x", connected_at=1, now_ms=2,
                                       status_code=1001, reason="Going away", authorizer=None)
        context = event["requestContext"]
        assert context["eventType"] == "DISCONNECT" and context["routeKey"] == "$disconnect"
        assert context["disconnectStatusCode"] == 1001
        assert context["disconnectReason"] == "Going away"
        assert "User-Agent" not in event["headers"]


class TestRouteSelection:
    def test_everything_goes_to_default_in_chalice(self):
        """With only $default, every message lands there."""
        routes = ["$connect", "$default", "$disconnect"]
        for body in ('{"action":"heartbeat"}', "not json", b"\x00", '["x"]', '{"action":"$connect"}'):
            assert apigw.select_route(body, routes) == "$default"

    def test_custom_route_matches_action(self):
        """$request.body.action selects a custom route when one exists."""
        assert apigw.select_route('{"action":"send"}', ["send", "$default"]) == "send"
        assert apigw.select_route('{"action":"other"}', ["send"]) is None


def policy(effect, resource, context=None, principal="user"):
    result = {"principalId": principal, "policyDocument": {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]}}
    if context is not None:
        result["context"] = context
    return result


class TestAuthorizer:
    ARN = API.connect_method_arn

    def test_allow_passes_stringified_context_and_principal(self):
        """Allow yields the context (values as strings) plus principalId."""
        decision = apigw.evaluate_authorizer(
            policy("Allow", self.ARN, {"userId": "u1", "n": 3, "ok": True}), self.ARN)
        assert decision == apigw.Allowed({"userId": "u1", "n": "3", "ok": "true", "principalId": "user"})

    def test_deny_is_403(self):
        """An explicit Deny refuses with 403."""
        assert apigw.evaluate_authorizer(policy("Deny", self.ARN), self.ARN).status == 403

    def test_allow_for_another_resource_is_403(self):
        """An Allow that does not match methodArn is an implicit deny."""
        other = self.ARN.replace("/dev/", "/prod/")
        assert apigw.evaluate_authorizer(policy("Allow", other), self.ARN).status == 403

    def test_wildcard_resource_allows(self):
        """IAM wildcards in Resource match the methodArn."""
        wildcard = "arn:aws:execute-api:us-east-1:123456789012:abcde12345/*"
        assert isinstance(apigw.evaluate_authorizer(policy("Allow", wildcard), self.ARN), apigw.Allowed)

    def test_explicit_deny_wins_over_allow(self):
        """A matching Deny beats a matching Allow."""
        result = policy("Allow", self.ARN)
        result["policyDocument"]["Statement"].append(
            {"Action": "execute-api:*", "Effect": "Deny", "Resource": [self.ARN]})
        assert apigw.evaluate_authorizer(result, self.ARN).status == 403

    @pytest.mark.parametrize("result", [
        {"hello": "world"},
        "Allow",
        None,
        {"policyDocument": {"Statement": []}},
        policy("Allow", ARN, {"nested": {"a": 1}}),
        policy("Maybe", ARN),
    ])
    def test_malformed_output_is_500(self, result):
        """Output that is not a valid policy response is a 500."""
        assert apigw.evaluate_authorizer(result, self.ARN) == apigw.INTERNAL_ERROR

    def test_raised_unauthorized_is_401(self):
        """Only a raised 'Unauthorized' (the function's error message) is a 401."""
        assert apigw.is_unauthorized_error(Exception("Unauthorized"))
        assert not apigw.is_unauthorized_error(Exception("unauthorized!"))

    def test_returned_unauthorized_string_is_500(self):
        """A returned 'Unauthorized' string is not a policy response: 500, as in AWS."""
        assert apigw.evaluate_authorizer("Unauthorized", self.ARN) == apigw.INTERNAL_ERROR


class TestConnectResponse:
    def test_success_variants(self):
        """None, no statusCode and any 2xx accept the connection."""
        for result in (None, {}, {"statusCode": 200}, {"statusCode": 204}, "text"):
            assert apigw.evaluate_connect_response(result) is None

    def test_non_2xx_refuses_with_status_and_body(self):
        """A non-2xx statusCode refuses the handshake with that status, body kept."""
        refusal = apigw.evaluate_connect_response(
            {"statusCode": 404, "body": '{"code": "SESSION_NOT_FOUND"}'})
        assert refusal == apigw.Refusal(404, '{"code": "SESSION_NOT_FOUND"}')
        assert apigw.evaluate_connect_response({"statusCode": "503", "body": {"a": 1}}).body == '{"a": 1}'

    def test_invalid_status_is_500(self):
        """A statusCode that is not an HTTP status is a 500."""
        assert apigw.evaluate_connect_response({"statusCode": "abc"}).status == 500
        assert apigw.evaluate_connect_response({"statusCode": 42}).status == 500


class TestConnection:
    def test_messages_flow_after_accept(self):
        """Complete text and binary messages come out of receive_data."""
        conn = make_connection()
        conn.accept({"principalId": "p"})
        data = client_bytes((Opcode.TEXT, b"hello", True), (Opcode.BINARY, b"\x01\x02", True))
        assert conn.receive_data(data, 1001.0) == [apigw.Message("hello"), apigw.Message(b"\x01\x02")]
        assert conn.last_active_at == 1001.0
        assert conn.state is apigw.State.OPEN

    def test_fragments_are_assembled(self):
        """A fragmented message is delivered once, whole."""
        conn = make_connection()
        conn.accept()
        data = client_bytes((Opcode.TEXT, b"he", False), (Opcode.CONT, b"ll", False),
                            (Opcode.CONT, b"o", True))
        assert conn.receive_data(data, 1001.0) == [apigw.Message("hello")]

    def test_send_during_connect_is_gone(self):
        """A post to a connection still in $connect is refused (410)."""
        conn = make_connection()
        with pytest.raises(apigw.ConnectionGone):
            conn.send("early")

    def test_send_writes_a_text_frame(self):
        """Posting text produces one unmasked text frame."""
        conn = make_connection()
        conn.accept()
        conn.send("hi")
        conn.send(b"\xff")
        frames = server_frames(conn)
        assert [(f.opcode, bytes(f.data)) for f in frames] == [(Opcode.TEXT, b"hi"), (Opcode.BINARY, b"\xff")]

    def test_frame_over_32kb_closes_with_1009(self):
        """A single frame over 32 KB fails the connection with 1009."""
        conn = make_connection()
        conn.accept()
        data = client_bytes((Opcode.TEXT, b"x" * (32 * 1024 + 1), True))
        assert conn.receive_data(data, 1001.0) == []
        out = conn.data_to_send()
        assert out[-1] == b""  # the server closes the socket
        client = Protocol(Side.CLIENT)
        client.receive_data(b"".join(out))
        close = client.events_received()[0]
        assert Close.parse(close.data).code == 1009
        conn.receive_eof(1001.0)
        assert conn.take_disconnect() == apigw.Disconnect(1009, "Message too big")

    def test_frame_of_exactly_32kb_is_accepted(self):
        """32 KB is the limit, inclusive."""
        conn = make_connection()
        conn.accept()
        data = client_bytes((Opcode.TEXT, b"x" * (32 * 1024), True))
        assert len(conn.receive_data(data, 1001.0)) == 1

    def test_message_over_128kb_in_small_frames_closes_with_1009(self):
        """Fragments under 32 KB adding up to over 128 KB close with 1009."""
        conn = make_connection()
        conn.accept()
        chunk = b"y" * (32 * 1024)
        frames = [(Opcode.TEXT, chunk, False)] + [(Opcode.CONT, chunk, False)] * 3
        frames.append((Opcode.CONT, b"z", True))
        assert conn.receive_data(client_bytes(*frames), 1001.0) == []
        conn.data_to_send()
        conn.receive_eof(1001.0)
        assert conn.take_disconnect().status_code == 1009

    def test_client_close_reports_code_and_reason_once(self):
        """A client close frame gives $disconnect its code and reason, exactly once."""
        conn = make_connection()
        conn.accept()
        client = Protocol(Side.CLIENT)
        client.send_close(4000, "bye")
        conn.receive_data(b"".join(client.data_to_send()), 1001.0)
        assert conn.state is apigw.State.CLOSING
        assert conn.data_to_send()[-1] == b""
        conn.receive_eof(1001.0)
        assert conn.state is apigw.State.CLOSED
        assert conn.take_disconnect() == apigw.Disconnect(4000, "bye")
        assert conn.take_disconnect() is None
        conn.receive_eof(1002.0)
        conn.abort()
        assert conn.take_disconnect() is None

    def test_close_without_status(self):
        """A close frame without a code is reported as 1005 with API Gateway's reason."""
        conn = make_connection()
        conn.accept()
        conn.receive_data(client_bytes((Opcode.CLOSE, b"", True)), 1001.0)
        conn.receive_eof(1001.0)
        assert conn.take_disconnect() == apigw.Disconnect(1005, "Client-side close frame status not set")

    def test_dropped_socket_is_1006(self):
        """A socket lost without a close frame is reported as 1006."""
        conn = make_connection()
        conn.accept()
        conn.receive_eof(1001.0)
        assert conn.take_disconnect().status_code == 1006

    def test_server_close_is_1000_and_completes(self):
        """DELETE @connections sends 1000; the client's reply completes the close."""
        conn = make_connection()
        conn.accept()
        conn.close(1000)
        frames = server_frames(conn)
        assert Close.parse(frames[0].data).code == 1000
        with pytest.raises(apigw.ConnectionGone):
            conn.send("late")
        conn.receive_data(client_bytes((Opcode.CLOSE, Close(1000, "").serialize(), True)), 1001.0)
        conn.receive_eof(1001.0)
        assert conn.take_disconnect().status_code == 1000

    def test_abort_after_unanswered_close(self):
        """A client that never answers the close still gets exactly one $disconnect."""
        conn = make_connection()
        conn.accept()
        conn.close(1000)
        conn.abort()
        assert conn.state is apigw.State.CLOSED
        assert conn.take_disconnect().status_code == 1000
        assert conn.take_disconnect() is None

    def test_idle_timeout_closes_with_1001(self):
        """No message for idle_timeout seconds closes with 1001."""
        conn = make_connection(idle_timeout=10.0)
        conn.accept()
        conn.receive_data(client_bytes((Opcode.TEXT, b"hi", True)), 1005.0)
        assert conn.deadline() == 1015.0
        assert conn.check_timeouts(1014.9) is None
        assert conn.check_timeouts(1015.0) == "idle"
        assert Close.parse(server_frames(conn)[0].data).code == 1001
        conn.abort()
        assert conn.take_disconnect() == apigw.Disconnect(1001, "Going away")

    def test_pings_do_not_reset_the_idle_timer(self):
        """Control frames are not activity; only messages are."""
        conn = make_connection(idle_timeout=10.0)
        conn.accept()
        conn.receive_data(client_bytes((Opcode.PING, b"", True)), 1005.0)
        assert conn.last_active_at == 1000.0
        assert server_frames(conn)[0].opcode is Opcode.PONG

    def test_max_duration_closes_with_1001(self):
        """A connection older than max_duration closes with 1001, even if active."""
        conn = make_connection(idle_timeout=10.0, max_duration=20.0)
        conn.accept()
        conn.receive_data(client_bytes((Opcode.TEXT, b"hi", True)), 1015.0)
        assert conn.deadline() == 1020.0
        assert conn.check_timeouts(1020.0) == "max_duration"

    def test_socket_lost_during_connect_never_disconnects(self):
        """A client gone before $connect finished gets no $disconnect unless accepted."""
        conn = make_connection()
        conn.receive_eof(1001.0)
        assert conn.state is apigw.State.CLOSED
        assert conn.take_disconnect() is None

    def test_abort_during_connect_never_disconnects(self):
        """A connection aborted (gateway shutdown) while still in $connect never
        gets $disconnect, and cannot be accepted afterwards."""
        conn = make_connection()
        conn.abort()
        assert conn.state is apigw.State.CLOSED
        assert conn.take_disconnect() is None
        conn.receive_eof(1001.0)
        assert conn.take_disconnect() is None
        with pytest.raises(RuntimeError):
            conn.accept()

    def test_refused_connection_never_disconnects(self):
        """A refused $connect fires no $disconnect."""
        conn = make_connection()
        conn.refuse()
        conn.receive_eof(1001.0)
        assert conn.take_disconnect() is None
        assert json.loads(apigw.FORBIDDEN.body) == {"message": "Forbidden"}
