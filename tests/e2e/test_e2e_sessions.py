"""End to end: the real app over real sockets against the running local stack.

Covers issue 3's "Done when" list: create, join in two languages, heartbeat,
bad messages, every refusal status, speaker refresh, speaker leaving,
listener leaving, @connections GET/DELETE/410, the 1009 limit, idle timeout.
"""
import json
import time
from contextlib import ExitStack

import boto3
import pytest
from botocore.config import Config
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.e2e

LISTENER_TIMEOUT = 5


def recv_json(ws, timeout=5.0):
    """The next message, skipping a speaker's listenerPresence notices."""
    while True:
        message = json.loads(ws.recv(timeout=timeout))
        if message.get("type") != "listenerPresence":
            return message


def create(stack, sockets, user="alice", **query):
    ws = sockets.enter_context(stack.connect(action="createSession", sourceLanguage="en",
                                             token=stack.token(user), **query))
    started = time.monotonic()
    message = recv_json(ws, timeout=2)  # "within 2 s of the socket opening"
    assert time.monotonic() - started < 2
    assert message["type"] == "sessionCreated"
    return ws, message


def join(stack, sockets, session_id, language):
    ws = sockets.enter_context(stack.connect(action="joinSession", sessionId=session_id,
                                             targetLanguage=language))
    message = recv_json(ws, timeout=2)
    assert message["type"] == "sessionJoined", message
    return ws, message


def expect_closed(ws, timeout=5.0):
    """Wait for the server to close ``ws``; return the close code."""
    with pytest.raises(ConnectionClosed) as info:
        while True:
            ws.recv(timeout=timeout)
    return info.value.rcvd.code if info.value.rcvd else None


def management(stack):
    return boto3.session.Session().client(
        "apigatewaymanagementapi", endpoint_url=stack.http, region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}))


class TestSessions:
    def test_create_session(self, stack):
        """A speaker with a local token creates a session and gets sessionCreated."""
        with ExitStack() as sockets:
            _, created = create(stack, sockets, qualityTier="premium")
            assert created["sourceLanguage"] == "en" and created["qualityTier"] == "premium"
            assert created["connectionId"] and created["expiresAt"] > time.time()
            assert isinstance(created["timestamp"], int)

    def test_join_in_two_languages(self, stack):
        """Two listeners join in es and fr and each gets sessionJoined."""
        with ExitStack() as sockets:
            _, created = create(stack, sockets)
            session_id = created["sessionId"]
            _, es = join(stack, sockets, session_id, "es")
            _, fr = join(stack, sockets, session_id, "fr")
            assert (es["targetLanguage"], fr["targetLanguage"]) == ("es", "fr")
            assert es["sourceLanguage"] == "en" and es["sessionId"] == session_id
            assert es["connectionId"] != fr["connectionId"]

    def test_heartbeat(self, stack):
        """heartbeat is answered by heartbeatAck, for speakers and listeners."""
        with ExitStack() as sockets:
            speaker, created = create(stack, sockets)
            listener, _ = join(stack, sockets, created["sessionId"], "es")
            for ws in (speaker, listener):
                ws.send(json.dumps({"action": "heartbeat"}))
                assert recv_json(ws)["type"] == "heartbeatAck"

    @pytest.mark.parametrize("raw,code", [
        ("not json", "INVALID_MESSAGE"),
        ("[1, 2]", "INVALID_MESSAGE"),
        ('{"no": "action"}', "INVALID_MESSAGE"),
        ('{"action": "fly"}', "UNKNOWN_ACTION"),
        ('{"action": "endSession"}', "FORBIDDEN"),
    ])
    def test_bad_messages_get_errors_and_the_socket_stays_open(self, stack, raw, code):
        """Malformed, unknown or forbidden messages get an error; the connection stays open."""
        with ExitStack() as sockets:
            _, created = create(stack, sockets)
            listener, _ = join(stack, sockets, created["sessionId"], "es")
            listener.send(raw)
            reply = recv_json(listener)
            assert (reply["type"], reply["code"]) == ("error", code)
            listener.send(json.dumps({"action": "heartbeat"}))
            assert recv_json(listener)["type"] == "heartbeatAck"


class TestRefusals:
    @pytest.mark.parametrize("query,code", [
        ({"action": "joinSession", "sessionId": "faithful-shepherd-427"}, "MISSING_PARAMETER"),
        ({"action": "dance"}, "INVALID_ACTION"),
        ({"action": "joinSession", "sessionId": "Not-An-Id", "targetLanguage": "es"}, "INVALID_SESSION_ID"),
        ({"action": "joinSession", "sessionId": "faithful-shepherd-427", "targetLanguage": "ES"}, "INVALID_LANGUAGE"),
        ({"action": "joinSession", "sessionId": "faithful-shepherd-427", "targetLanguage": "xx"}, "UNSUPPORTED_LANGUAGE"),
    ])
    def test_400(self, stack, query, code):
        """Missing or invalid parameters are refused with 400 and the code."""
        status, body = stack.refusal(**query)
        assert (status, body["code"]) == (400, code)

    def test_400_invalid_quality_tier(self, stack):
        """An unknown qualityTier is a 400."""
        status, body = stack.refusal(action="createSession", sourceLanguage="en",
                                     qualityTier="ultra", token=stack.token())
        assert (status, body["code"]) == (400, "INVALID_QUALITY_TIER")

    @pytest.mark.parametrize("token", [None, "not-a-jwt", "forged"])
    def test_401_without_a_valid_token(self, stack, token):
        """A speaker without a valid token is refused by the authorizer with 401."""
        query = {"action": "createSession", "sourceLanguage": "en"}
        if token == "forged":
            header, claims, _ = stack.token().split(".")
            query["token"] = f"{header}.{claims}.AAAA"
        elif token:
            query["token"] = token
        assert stack.refusal(**query)[0] == 401

    def test_403_refresh_by_another_user(self, stack):
        """A speaker refresh by someone who does not own the session is a 403."""
        with ExitStack() as sockets:
            _, created = create(stack, sockets, user="alice")
            status, body = stack.refusal(action="refreshConnection", sessionId=created["sessionId"],
                                         role="speaker", token=stack.token("mallory"))
            assert (status, body["code"]) == (403, "FORBIDDEN")

    def test_404_unknown_session(self, stack):
        """Joining a session that does not exist is a 404."""
        status, body = stack.refusal(action="joinSession", sessionId="faithful-shepherd-427",
                                     targetLanguage="es")
        assert (status, body["code"]) == (404, "SESSION_NOT_FOUND")

    def test_503_session_full(self, stack):
        """With MAX_LISTENERS_PER_SESSION=2 given to the stack, a third listener gets 503."""
        with ExitStack() as sockets:
            _, created = create(stack, sockets)
            join(stack, sockets, created["sessionId"], "es")
            join(stack, sockets, created["sessionId"], "fr")
            status, body = stack.refusal(action="joinSession", sessionId=created["sessionId"],
                                         targetLanguage="de")
            assert (status, body["code"]) == (503, "SESSION_FULL")


class TestLeaving:
    def test_speaker_refresh_then_closing_the_old_connection_ends_nothing(self, stack):
        """After a refresh the old speaker socket closes without ending the session."""
        with ExitStack() as sockets:
            old, created = create(stack, sockets)
            session_id = created["sessionId"]
            listener, _ = join(stack, sockets, session_id, "es")
            new = sockets.enter_context(stack.connect(
                action="refreshConnection", sessionId=session_id, role="speaker",
                token=stack.token("alice")))
            refreshed = recv_json(new, timeout=2)
            assert refreshed["type"] == "connectionRefreshComplete"
            assert refreshed["role"] == "speaker" and refreshed["sessionId"] == session_id
            old.close()
            time.sleep(0.5)
            listener.send(json.dumps({"action": "heartbeat"}))
            assert recv_json(listener)["type"] == "heartbeatAck"  # no sessionEnded first
            new.send(json.dumps({"action": "heartbeat"}))
            assert recv_json(new)["type"] == "heartbeatAck"
            # The refreshed connection is now the one that ends the session.
            new.close()
            assert recv_json(listener)["type"] == "sessionEnded"

    def test_speaker_leaving_ends_the_session(self, stack):
        """Listeners get sessionEnded and are disconnected within 2 s; later joins get 404."""
        with ExitStack() as sockets:
            speaker, created = create(stack, sockets)
            session_id = created["sessionId"]
            listeners = [join(stack, sockets, session_id, lang)[0] for lang in ("es", "fr")]
            started = time.monotonic()
            speaker.close()
            for listener in listeners:
                ended = recv_json(listener, timeout=2)
                assert ended["type"] == "sessionEnded" and ended["sessionId"] == session_id
                assert ended["reason"] == "speakerDisconnected"
                assert expect_closed(listener, timeout=2) == 1000
            assert time.monotonic() - started < 2
            status, body = stack.refusal(action="joinSession", sessionId=session_id, targetLanguage="es")
            assert (status, body["code"]) == (404, "SESSION_NOT_FOUND")

    def test_end_session_message(self, stack):
        """endSession from the speaker ends it with reason speakerEnded."""
        with ExitStack() as sockets:
            speaker, created = create(stack, sockets)
            listener, _ = join(stack, sockets, created["sessionId"], "es")
            speaker.send(json.dumps({"action": "endSession"}))
            assert recv_json(listener)["reason"] == "speakerEnded"
            assert expect_closed(listener) == 1000

    def test_listener_leaving_frees_its_place(self, stack):
        """A listener that leaves is removed: at capacity 2, a new listener fits again."""
        with ExitStack() as sockets:
            _, created = create(stack, sockets)
            session_id = created["sessionId"]
            first, joined = join(stack, sockets, session_id, "es")
            join(stack, sockets, session_id, "fr")
            first.close()
            client = management(stack)
            deadline = time.monotonic() + 5
            while True:  # $disconnect runs asynchronously after the close
                try:
                    join(stack, sockets, session_id, "de")
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            with pytest.raises(client.exceptions.GoneException):
                client.get_connection(ConnectionId=joined["connectionId"])


class TestGatewayBehaviour:
    def test_connections_get_delete_and_410(self, stack):
        """GET describes a connection; DELETE closes it with 1000 and fires $disconnect; then 410."""
        client = management(stack)
        with ExitStack() as sockets:
            _, created = create(stack, sockets)
            session_id = created["sessionId"]
            listener, joined = join(stack, sockets, session_id, "es")
            join(stack, sockets, session_id, "fr")
            info = client.get_connection(ConnectionId=joined["connectionId"])
            assert info["Identity"]["SourceIp"] == "127.0.0.1"
            assert "websockets" in info["Identity"]["UserAgent"]
            client.delete_connection(ConnectionId=joined["connectionId"])
            assert expect_closed(listener) == 1000
            with pytest.raises(client.exceptions.GoneException):
                client.post_to_connection(ConnectionId=joined["connectionId"], Data=b"{}")
            # $disconnect ran the app's leave: the place is free again.
            deadline = time.monotonic() + 5
            while True:
                try:
                    join(stack, sockets, session_id, "de")
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)

    def test_frame_over_32kb_closes_with_1009(self, stack):
        """A frame over 32 KB closes the socket with 1009; a listener is then removed."""
        with ExitStack() as sockets:
            _, created = create(stack, sockets)
            listener, _ = join(stack, sockets, created["sessionId"], "es")
            with pytest.raises(ConnectionClosed) as info:
                listener.send(json.dumps({"action": "heartbeat", "pad": "x" * (33 * 1024)}))
                listener.recv(timeout=5)
            assert info.value.rcvd.code == 1009

    def test_server_pushes_to_the_speaker_through_the_management_api(self, stack):
        """Posts by anyone (here boto3) reach the client as text frames."""
        with ExitStack() as sockets:
            speaker, created = create(stack, sockets)
            management(stack).post_to_connection(ConnectionId=created["connectionId"],
                                                 Data=b'{"type": "test"}')
            assert recv_json(speaker) == {"type": "test"}
