"""Long sessions and self-healing state, with the clock fast-forwarded."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.functional.conftest import join
from tests.support.harness import Context


@pytest.fixture
def clock(gateway):
    return gateway.runtime.clock


def types(gateway, cid):
    return [m["type"] for m in gateway.received(cid)]


class TestHeartbeatTimeout:
    def test_silent_listener_is_closed_and_cleaned(self, gateway, speaker, store, clock, config):
        """No heartbeat for HEARTBEAT_TIMEOUT_SECONDS: connectionClosed, socket closed, row and count cleaned."""
        _, session_id = speaker
        _, _, cid = join(gateway, session_id)
        clock.advance(config.heartbeat_timeout_seconds + 1)
        gateway.sweep()
        assert gateway.received(cid, "connectionClosed")[0]["reason"] == "heartbeatTimeout"
        assert gateway.closed[cid] == 1000
        assert store.get_connection(cid) is None
        assert store.get_session(session_id).listener_count == 0

    def test_heartbeats_keep_a_connection_alive(self, gateway, speaker, store, clock, config):
        """A connection that heartbeats within the timeout is left alone."""
        speaker_cid, session_id = speaker
        _, _, cid = join(gateway, session_id)
        for _ in range(3):
            clock.advance(config.heartbeat_timeout_seconds * 0.6)
            gateway.send(cid, {"action": "heartbeat"})
            gateway.send(speaker_cid, {"action": "heartbeat"})
            gateway.sweep()
        assert cid in gateway.open and not gateway.received(cid, "connectionClosed")
        assert store.get_session(session_id).listener_count == 1

    def test_lost_disconnect_is_healed(self, gateway, speaker, store, clock, config):
        """A listener whose socket vanished without $disconnect is removed and uncounted by the sweep."""
        speaker_cid, session_id = speaker
        _, _, ghost = join(gateway, session_id)
        _, _, alive = join(gateway, session_id)
        gateway.vanish(ghost)
        clock.advance(config.heartbeat_timeout_seconds + 1)
        gateway.send(alive, {"action": "heartbeat"})
        gateway.send(speaker_cid, {"action": "heartbeat"})
        gateway.sweep()
        assert store.get_connection(ghost) is None
        assert store.get_connection(alive) is not None
        assert store.get_session(session_id).listener_count == 1


class TestNotices:
    @pytest.fixture
    def config_env(self, config_env):
        config_env.update(
            CONNECTION_REFRESH_MINUTES="10",
            CONNECTION_WARNING_MINUTES="15",
            CONNECTION_MAX_DURATION_MINUTES="20",
            HEARTBEAT_TIMEOUT_SECONDS="3600",
            HEARTBEAT_INTERVAL_SECONDS="30",
        )
        return config_env

    def test_refresh_notice_once_at_heartbeat(self, gateway, speaker, clock):
        """connectionRefreshRequired comes once, at the first heartbeat past the age, with the reconnect query."""
        _, session_id = speaker
        _, _, cid = join(gateway, session_id, "fr")
        clock.advance(10 * 60 + 1)
        gateway.send(cid, {"action": "heartbeat"})
        gateway.send(cid, {"action": "heartbeat"})
        gateway.sweep()
        [notice] = gateway.received(cid, "connectionRefreshRequired")
        assert notice["sessionId"] == session_id and notice["role"] == "listener"
        assert notice["targetLanguage"] == "fr"
        assert notice["reconnectQuery"] == {
            "action": "refreshConnection", "sessionId": session_id, "role": "listener", "targetLanguage": "fr",
            "previousConnectionId": cid,
        }
        assert notice["refreshBy"] > notice["timestamp"]

    def test_refresh_notice_once_from_the_sweep(self, gateway, speaker, clock):
        """The sweep sends the notice to a connection that did not heartbeat, then never again."""
        speaker_cid, _ = speaker
        clock.advance(10 * 60 + 1)
        gateway.sweep()
        gateway.sweep()
        gateway.send(speaker_cid, {"action": "heartbeat"})
        [notice] = gateway.received(speaker_cid, "connectionRefreshRequired")
        assert notice["role"] == "speaker" and "targetLanguage" not in notice

    def test_warning_once(self, gateway, speaker, clock):
        """connectionWarning comes once at CONNECTION_WARNING_MINUTES with the minutes left."""
        speaker_cid, _ = speaker
        clock.advance(15 * 60 + 1)
        gateway.sweep()
        gateway.send(speaker_cid, {"action": "heartbeat"})
        gateway.sweep()
        [warning] = gateway.received(speaker_cid, "connectionWarning")
        assert warning["remainingMinutes"] == pytest.approx(5, abs=0.1)
        assert len(gateway.received(speaker_cid, "connectionRefreshRequired")) == 1

    @pytest.mark.parametrize("backend", ["server"])  # real overlap: requests over HTTP
    def test_racing_heartbeats_and_sweeps_send_once(self, gateway, speaker, clock, store):
        """Heartbeats and sweeps racing still produce exactly one notice of each kind."""
        _, session_id = speaker
        _, _, cid = join(gateway, session_id)
        clock.advance(15 * 60 + 1)
        router, sweeper = gateway.runtime.router, gateway.runtime.sweeper
        shard = store.get_session(session_id).sweep_shard
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda i: router.handle_message(cid, '{"action":"heartbeat"}', "x")
                          if i % 2 else sweeper.sweep_shard(shard), range(16)))
        assert len(gateway.received(cid, "connectionRefreshRequired")) == 1
        assert len(gateway.received(cid, "connectionWarning")) == 1

    def test_max_duration_closes_with_reason(self, gateway, speaker, store, clock):
        """At CONNECTION_MAX_DURATION_MINUTES the server closes the connection itself, saying why."""
        _, session_id = speaker
        _, _, cid = join(gateway, session_id)
        clock.advance(20 * 60 + 1)
        gateway.sweep()
        assert gateway.received(cid, "connectionClosed")[-1]["reason"] == "maxDuration"
        assert gateway.closed[cid] == 1000 and store.get_connection(cid) is None


class TestOrphansAndExpiry:
    def test_orphaned_session_is_ended(self, gateway, speaker, store, clock, config):
        """A speaker gone without $disconnect falls silent: the first sweep past the
        heartbeat timeout ends the session; listeners are told."""
        speaker_cid, session_id = speaker
        _, _, cid = join(gateway, session_id)
        gateway.vanish(speaker_cid)
        clock.advance(config.heartbeat_timeout_seconds - 1)
        gateway.send(cid, {"action": "heartbeat"})
        gateway.sweep()
        assert store.get_session(session_id).status == "active"  # silent, not yet too long
        clock.advance(2)
        gateway.send(cid, {"action": "heartbeat"})
        gateway.sweep()
        assert gateway.received(cid, "sessionEnded")[0]["reason"] == "speakerDisconnected"
        assert gateway.closed[cid] == 1000
        assert store.get_session(session_id).status == "ended"
        assert store.get_connection(speaker_cid) is None

    def test_a_session_whose_speaker_row_is_gone_is_ended(self, gateway, speaker, store, dynamodb, config):
        """A session still active though its speaker's row is gone (a $disconnect that
        failed after deleting it, say) is ended by the next sweep."""
        speaker_cid, session_id = speaker
        _, _, cid = join(gateway, session_id)
        dynamodb.delete_item(TableName=config.connections_table,
                             Key={"connectionId": {"S": speaker_cid}})
        gateway.sweep()
        assert store.get_session(session_id).status == "ended"
        assert gateway.received(cid, "sessionEnded")[0]["reason"] == "speakerDisconnected"

    def test_speaker_still_connecting_is_not_an_orphan(self, gateway, store, issuer):
        """A sweep during the speaker's $connect (410 from the gateway) ends nothing."""
        status, _, cid = gateway.connect(
            {"action": "createSession", "sourceLanguage": "en", "token": issuer.token("alice")}, deliver=False
        )
        gateway.open.discard(cid)  # as if the handshake had not completed yet
        session_id = store.get_connection(cid).session_id
        gateway.sweep()
        assert store.get_session(session_id).status == "active"

    def test_ended_session_leftovers_are_released(self, gateway, speaker, store, monkeypatch):
        """Listeners a release missed are told and closed by the next sweep."""
        speaker_cid, session_id = speaker
        _, _, cid = join(gateway, session_id)
        departures = gateway.runtime.departures
        original = departures.release
        monkeypatch.setattr(departures, "release", lambda *a, **k: None)
        gateway.send(speaker_cid, {"action": "endSession"})
        assert store.get_connection(cid) is not None  # the release "failed"
        assert store.get_session(session_id).sweep_shard is not None  # still listed
        monkeypatch.setattr(departures, "release", original)
        gateway.sweep()
        assert gateway.received(cid, "sessionEnded")[0]["reason"] == "speakerEnded"
        assert store.get_connection(cid) is None and gateway.closed[cid] == 1000
        assert list(store.members(session_id)) == []
        assert store.get_session(session_id).sweep_shard is None

    def test_expiry_loses_to_a_refresh_that_extended_it(self, gateway, speaker, store, clock, config, issuer):
        """An expiry judged on stale data does not end a session a refresh just extended."""
        speaker_cid, session_id = speaker
        clock.advance(config.session_max_duration_seconds + 1)
        stale = store.get_session(session_id)
        gateway.connect({"action": "refreshConnection", "sessionId": session_id, "role": "speaker", "token": issuer.token("alice")})
        assert store.get_session(session_id).expires_at > stale.expires_at
        from chalicelib.departures import EXPIRED

        assert gateway.runtime.departures.end_session(session_id, EXPIRED, gateway.runtime.connections_api("x")) is None
        assert store.get_session(session_id).status == "active"

    def test_expired_session_is_ended_before_ttl(self, gateway, speaker, store, clock, config):
        """At expiresAt the sweep ends the session (item kept for TTL) and tells everyone."""
        speaker_cid, session_id = speaker
        _, _, cid = join(gateway, session_id)
        clock.advance(config.session_max_duration_seconds + 1)
        status, body, _ = join(gateway, session_id)
        assert (status, body["code"]) == (404, "SESSION_NOT_FOUND")  # even before the sweep
        gateway.sweep()
        for who in (cid, speaker_cid):
            assert gateway.received(who, "sessionEnded")[0]["reason"] == "expired"
        session = store.get_session(session_id)
        assert session.status == "ended" and list(store.members(session_id)) == []

    def test_speaker_refresh_extends_expiry(self, gateway, speaker, store, clock, config, issuer):
        """A speaker who refreshes keeps the session past the original expiresAt."""
        speaker_cid, session_id = speaker
        clock.advance(config.session_max_duration_seconds - 60)
        _, _, new_cid = gateway.connect(
            {"action": "refreshConnection", "sessionId": session_id, "role": "speaker", "token": issuer.token("alice")}
        )
        gateway.close(speaker_cid)
        clock.advance(61)
        gateway.send(new_cid, {"action": "heartbeat"})
        gateway.sweep()
        assert store.get_session(session_id).status == "active"

    def test_failed_notice_is_sent_on_a_later_try(self, gateway, speaker, store, clock, config, monkeypatch):
        """A notice whose send failed (not gone) is not lost: the next sweep sends it."""
        from chalicelib.connections_api import ConnectionsApi, DeliveryFailed

        speaker_cid, _ = speaker
        clock.advance(config.connection_refresh_minutes * 60 + 1)
        original = ConnectionsApi.send

        def flaky(self, connection_id, message):
            if isinstance(message, dict) and message.get("type") == "connectionRefreshRequired":
                raise DeliveryFailed("post_to_connection ThrottlingException")
            return original(self, connection_id, message)

        monkeypatch.setattr(ConnectionsApi, "send", flaky)
        gateway.send(speaker_cid, {"action": "heartbeat"})
        assert not gateway.received(speaker_cid, "connectionRefreshRequired")
        monkeypatch.setattr(ConnectionsApi, "send", original)
        gateway.send(speaker_cid, {"action": "heartbeat"})
        gateway.sweep()
        assert len(gateway.received(speaker_cid, "connectionRefreshRequired")) == 1

    def test_gone_found_by_many_senders_is_cleaned_once(self, gateway, speaker, store):
        """Many concurrent senders noticing the same 410 correct the count once."""
        _, session_id = speaker
        _, _, gone = join(gateway, session_id)
        join(gateway, session_id)
        gateway.runtime.clock.advance(11)  # past the "may still be connecting" window
        gateway.vanish(gone)
        event = {"sessionId": session_id, "data": {"x": 1}}
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: gateway.app.publish(event, Context()), range(8)))
        assert all(r["gone"] <= 1 for r in results) and sum(r["gone"] for r in results) >= 1
        assert store.get_connection(gone) is None
        assert store.get_session(session_id).listener_count == 1


class TestReconnectGrace:
    @pytest.fixture
    def config_env(self, config_env):
        config_env["SPEAKER_RECONNECT_GRACE_SECONDS"] = "30"
        return config_env

    def test_speaker_reconnects_within_grace(self, gateway, speaker, store, issuer, clock):
        """With a grace period a dropped speaker can come back; listeners hear both events."""
        speaker_cid, session_id = speaker
        _, _, cid = join(gateway, session_id)
        gateway.close(speaker_cid)
        assert gateway.received(cid, "speakerDisconnected")[0]["graceSeconds"] == 30
        assert store.get_session(session_id).status == "active"
        clock.advance(10)
        gateway.sweep()
        status, _, new_speaker = gateway.connect(
            {"action": "refreshConnection", "sessionId": session_id, "role": "speaker", "token": issuer.token("alice")}
        )
        assert status == 200
        assert gateway.received(cid, "speakerReconnected")
        clock.advance(60)
        gateway.send(new_speaker, {"action": "heartbeat"})
        gateway.send(cid, {"action": "heartbeat"})
        gateway.sweep()
        assert store.get_session(session_id).status == "active"

    def test_session_ends_after_grace(self, gateway, speaker, store, clock, config):
        """A speaker who does not come back within the grace ends the session."""
        speaker_cid, session_id = speaker
        _, _, cid = join(gateway, session_id)
        gateway.vanish(speaker_cid)
        clock.advance(config.heartbeat_timeout_seconds + 1)
        gateway.send(cid, {"action": "heartbeat"})
        gateway.sweep()  # notices the silence, starts the grace
        assert gateway.received(cid, "speakerDisconnected")
        assert store.get_session(session_id).status == "active"
        clock.advance(31)
        gateway.send(cid, {"action": "heartbeat"})
        gateway.sweep()
        assert gateway.received(cid, "sessionEnded")[0]["reason"] == "speakerDisconnected"
        assert store.get_session(session_id).status == "ended"
