"""The reference client's sans-I/O core, driven without sockets."""
import json
from urllib.parse import parse_qs, urlparse

import pytest

from broadcast_client.protocol import (ClientProtocol, Close, Exit, Open, Print, Role, Send,
                                       backoff)

URL = "ws://127.0.0.1:8000/dev"


def query(url):
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def msg(kind, **fields):
    return json.dumps({"type": kind, "timestamp": 1, **fields})


def speaker():
    return ClientProtocol(url=URL, role=Role.SPEAKER, token="T", heartbeat_interval=10)


def listener(**kwargs):
    return ClientProtocol(url=URL, role=Role.LISTENER, session_id="faithful-shepherd-123",
                          target_language="es", heartbeat_interval=10, rng=lambda: 0.0, **kwargs)


def started(protocol, now=0.0):
    [action] = protocol.start()
    protocol.opened(action.key, now)
    return action


class TestSpeaker:
    def test_creates_a_session_and_prints_its_id(self):
        """The first socket asks createSession with the token; the id is printed."""
        protocol = speaker()
        action = started(protocol)
        assert query(action.url) == {"action": "createSession", "sourceLanguage": "en", "token": "T"}
        actions = protocol.received(action.key, msg("sessionCreated", sessionId="s-id-100"), 1.0)
        assert Print("session id: s-id-100") in actions
        assert protocol.session_id == "s-id-100"

    def test_heartbeats_at_the_interval(self):
        """tick() sends {"action": "heartbeat"} every heartbeat_interval seconds."""
        protocol = speaker()
        action = started(protocol, now=0.0)
        assert protocol.tick(5.0) == []
        assert protocol.tick(10.0) == [Send(action.key, json.dumps({"action": "heartbeat"}))]
        assert protocol.tick(15.0) == []
        assert protocol.next_wakeup() == 20.0

    def test_refresh_opens_a_new_socket_then_closes_the_old(self):
        """connectionRefreshRequired opens refreshConnection; once complete the old socket closes."""
        protocol = speaker()
        first = started(protocol)
        protocol.received(first.key, msg("sessionCreated", sessionId="s-id-100"), 1.0)
        actions = protocol.received(first.key, msg("connectionRefreshRequired"), 2.0)
        [refresh] = [a for a in actions if isinstance(a, Open)]
        assert query(refresh.url) == {"action": "refreshConnection", "sessionId": "s-id-100",
                                      "role": "speaker", "token": "T"}
        assert not [a for a in protocol.received(first.key, msg("connectionRefreshRequired"), 2.5)
                    if isinstance(a, Open)], "one refresh at a time"
        protocol.opened(refresh.key, 3.0)
        actions = protocol.received(refresh.key, msg("connectionRefreshComplete"), 3.0)
        assert Close(first.key) in actions
        assert protocol.current == refresh.key
        assert protocol.closed(first.key, 1000, 3.1) == []
        assert protocol.done is None

    def test_refused_start_exits(self):
        """A refused createSession exits non-zero with the server's code."""
        protocol = speaker()
        [action] = protocol.start()
        actions = protocol.refused(action.key, 401, '{"code": "UNAUTHORIZED", "message": "no"}', 0)
        assert actions[-1] == Exit(1, "connection refused: 401 UNAUTHORIZED: no")

    def test_lost_connection_tries_a_speaker_refresh_then_stops_on_404(self):
        """A dropped speaker reconnects with refreshConnection; 404 (no grace) ends it."""
        protocol = speaker()
        action = started(protocol)
        protocol.received(action.key, msg("sessionCreated", sessionId="s-id-100"), 1.0)
        [again] = [a for a in protocol.closed(action.key, 1006, 2.0) if isinstance(a, Open)]
        assert query(again.url) == {"action": "refreshConnection", "sessionId": "s-id-100",
                                    "role": "speaker", "token": "T"}
        assert protocol.refused(again.key, 404, '{"code": "SESSION_NOT_FOUND"}', 3.0)[-1].code == 1

    def test_refresh_uses_the_servers_reconnect_query(self):
        """reconnectQuery from connectionRefreshRequired is used, with the token added."""
        protocol = speaker()
        action = started(protocol)
        protocol.received(action.key, msg("sessionCreated", sessionId="s-id-100"), 1.0)
        required = msg("connectionRefreshRequired", reconnectQuery={
            "action": "refreshConnection", "sessionId": "s-id-100", "role": "speaker", "extra": "1"})
        [refresh] = [a for a in protocol.received(action.key, required, 2.0) if isinstance(a, Open)]
        assert query(refresh.url) == {"action": "refreshConnection", "sessionId": "s-id-100",
                                      "role": "speaker", "extra": "1", "token": "T"}

    def test_stop_ends_the_session(self):
        """Ctrl-C sends endSession, closes and exits 0."""
        protocol = speaker()
        action = started(protocol)
        protocol.received(action.key, msg("sessionCreated", sessionId="s-id-100"), 1.0)
        actions = protocol.stop()
        assert actions[0] == Send(action.key, json.dumps({"action": "endSession", "sessionId": "s-id-100"}))
        assert Close(action.key) in actions and actions[-1] == Exit(0, "stopped")

    def test_missing_token_exits(self):
        """A speaker without a token stops before connecting."""
        protocol = ClientProtocol(url=URL, role=Role.SPEAKER)
        assert protocol.start()[-1].code == 2


class TestListener:
    def test_joins_with_session_and_language(self):
        """The first socket asks joinSession."""
        action = started(listener())
        assert query(action.url) == {"action": "joinSession", "sessionId": "faithful-shepherd-123",
                                     "targetLanguage": "es"}

    def test_session_ended_exits_cleanly(self):
        """sessionEnded prints, closes and exits 0."""
        protocol = listener()
        action = started(protocol)
        actions = protocol.received(action.key, msg("sessionEnded", reason="speakerEnded"), 1.0)
        assert actions[-1] == Exit(0, "session ended (speakerEnded)")

    def test_duplicates_during_a_refresh_are_dropped(self):
        """Broadcast messages seen on both sockets are printed once, by sequenceNumber."""
        protocol = listener()
        first = started(protocol)
        translated = msg("translation", sequenceNumber=5, text="hola")
        assert protocol.received(first.key, translated, 1.0) == [Print(f"< {translated}")]
        assert protocol.received("c2", translated, 1.1) == []
        assert protocol.received("c2", msg("translation", sequenceNumber=6), 1.2)

    def test_unexpected_drop_reconnects_with_backoff(self):
        """A drop without sessionEnded reconnects (refreshConnection) after a growing delay."""
        protocol = listener()
        action = started(protocol)
        actions = protocol.closed(action.key, 1006, 1.0)
        [rejoin] = [a for a in actions if isinstance(a, Open)]
        assert query(rejoin.url) == {"action": "refreshConnection", "sessionId": "faithful-shepherd-123",
                                     "role": "listener", "targetLanguage": "es"}
        assert rejoin.delay == pytest.approx(0.25)
        retry = [a for a in protocol.refused(rejoin.key, 503, '{"code": "SESSION_FULL"}', 2.0)
                 if isinstance(a, Open)][0]
        assert retry.delay == pytest.approx(0.5)

    def test_rejoin_refused_with_404_means_the_session_ended(self):
        """A 404 on rejoin exits 0: the session is over."""
        protocol = listener()
        action = started(protocol)
        rejoin = [a for a in protocol.closed(action.key, 1006, 1.0) if isinstance(a, Open)][0]
        assert protocol.refused(rejoin.key, 404, '{"code": "SESSION_NOT_FOUND"}', 2.0)[-1].code == 0

    def test_gives_up_after_max_reconnects(self):
        """Reconnects stop after max_reconnects failures."""
        protocol = listener(max_reconnects=2)
        action = started(protocol)
        open_ = [a for a in protocol.closed(action.key, 1006, 1.0) if isinstance(a, Open)][0]
        open_ = [a for a in protocol.failed(open_.key, "refused", 2.0) if isinstance(a, Open)][0]
        assert protocol.failed(open_.key, "refused", 3.0)[-1].code == 1

    def test_listener_refresh_url(self):
        """A listener refreshes with role=listener and its language."""
        protocol = listener()
        action = started(protocol)
        [refresh] = [a for a in protocol.received(action.key, msg("connectionRefreshRequired"), 1.0)
                     if isinstance(a, Open)]
        assert query(refresh.url) == {"action": "refreshConnection", "sessionId": "faithful-shepherd-123",
                                      "role": "listener", "targetLanguage": "es"}


def test_backoff_is_capped_exponential_with_jitter():
    """Delays double per attempt between half and all of the ceiling, capped at 30 s."""
    assert backoff(1, rng=lambda: 0.0) == 0.25 and backoff(1, rng=lambda: 1.0) == 0.5
    assert backoff(3, rng=lambda: 1.0) == 2.0
    assert backoff(20, rng=lambda: 1.0) == 30.0
