"""Sans-I/O tests of the events API Gateway hands the integration: ids, timestamps, shapes."""
import base64

from local_stack.apigw import events

API = events.ApiContext(api_id="abcde12345", stage="dev", domain_name="127.0.0.1:8000")
REQUEST = events.HandshakeRequest(
    headers=(("Host", "127.0.0.1:8000"), ("User-Agent", "test-agent"), ("X-Multi", "a"),
             ("X-Multi", "b")),
    query=(("action", "joinSession"), ("lang", "es"), ("lang", "fr")),
    source_ip="127.0.0.2",
    port=8000,
    scheme="http",
)


class TestIdentifiers:
    def test_connection_id_looks_like_api_gateways(self):
        """Ids are 15 base64 characters and '=', like 'L0SM9cOFvHcCIhw='."""
        ids = {events.new_connection_id() for _ in range(200)}
        assert len(ids) == 200
        for value in ids:
            assert events.is_connection_id(value)
            assert len(base64.b64decode(value)) == 11

    def test_request_time_format(self):
        """requestTime uses API Gateway's CLF format."""
        assert events.request_time(1549713027441) == "09/Feb/2019:11:50:27 +0000"

    def test_iso8601_has_milliseconds(self):
        """@connections GET timestamps are ISO 8601 with milliseconds and Z."""
        assert events.iso8601(1549713027.441) == "2019-02-09T11:50:27.441Z"


class TestEvents:
    def test_authorizer_event_is_a_request_event(self):
        """The authorizer gets type REQUEST, methodArn, headers, query and requestContext."""
        event = events.authorizer_event(API, REQUEST, connection_id="L0SM9cOFvHcCIhw=", now_ms=1)
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
        event = events.connect_event(API, REQUEST, connection_id="x", connected_at=5, now_ms=6,
                                    authorizer={"userId": "u", "principalId": "p"})
        context = event["requestContext"]
        assert context["authorizer"] == {"userId": "u", "principalId": "p"}
        assert context["connectedAt"] == 5 and context["requestTimeEpoch"] == 6
        assert context["domainName"] == "127.0.0.1:8000" and context["stage"] == "dev"
        assert event["isBase64Encoded"] is False
        assert "methodArn" not in event

    def test_query_keys_absent_without_a_query_string(self):
        """Without a query string API Gateway omits both query maps."""
        bare = events.HandshakeRequest()
        event = events.connect_event(API, bare, connection_id="x", connected_at=1, now_ms=1,
                                    authorizer=None)
        assert "queryStringParameters" not in event
        assert "multiValueQueryStringParameters" not in event
        assert "authorizer" not in event["requestContext"]

    def test_message_event_text_and_binary(self):
        """Text bodies arrive as is; binary ones base64-encoded with isBase64Encoded."""
        common = dict(connection_id="x", connected_at=1, now_ms=2, source_ip="1.2.3.4",
                      route_key="$default", authorizer={"principalId": "p"})
        text = events.message_event(API, body='{"a":1}', **common)
        assert text["body"] == '{"a":1}' and text["isBase64Encoded"] is False
        assert text["requestContext"]["eventType"] == "MESSAGE"
        assert text["requestContext"]["messageId"]
        assert text["requestContext"]["authorizer"] == {"principalId": "p"}
        binary = events.message_event(API, body=b"\x00\x01", **common)
        assert binary["isBase64Encoded"] is True
        assert base64.b64decode(binary["body"]) == b"\x00\x01"

    def test_disconnect_event_has_status_and_reason(self):
        """$disconnect carries disconnectStatusCode and disconnectReason."""
        event = events.disconnect_event(API, REQUEST, connection_id="x", connected_at=1, now_ms=2,
                                       status_code=1001, reason="Going away", authorizer=None)
        context = event["requestContext"]
        assert context["eventType"] == "DISCONNECT" and context["routeKey"] == "$disconnect"
        assert context["disconnectStatusCode"] == 1001
        assert context["disconnectReason"] == "Going away"
        assert "User-Agent" not in event["headers"]
