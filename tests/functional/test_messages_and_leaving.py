"""$default messages, $disconnect, and how sessions end."""

import pytest

from tests.functional.conftest import join


class TestMessages:
    def test_heartbeat_is_acknowledged_and_recorded(self, gateway, speaker, store):
        """heartbeat replies heartbeatAck and moves lastSeenAt forward."""
        _, session_id = speaker
        _, _, cid = join(gateway, session_id)
        before = store.get_connection(cid).last_seen_at
        gateway.runtime.clock.advance(5)
        gateway.send(cid, {"action": "heartbeat"})
        assert gateway.last(cid)["type"] == "heartbeatAck"
        assert store.get_connection(cid).last_seen_at >= before + 5000

    @pytest.mark.parametrize(
        "raw,code",
        [
            ("this is not json", "INVALID_MESSAGE"),
            ("[1, 2]", "INVALID_MESSAGE"),
            ('{"no": "action"}', "INVALID_MESSAGE"),
            ('{"action": "fly"}', "UNKNOWN_ACTION"),
        ],
    )
    def test_bad_messages_get_an_error_and_the_connection_stays(self, gateway, speaker, store, raw, code):
        """Malformed or unknown messages are answered with error {code, message}; nothing closes."""
        _, session_id = speaker
        _, _, cid = join(gateway, session_id)
        gateway.send(cid, raw, raw=True)
        reply = gateway.last(cid)
        assert reply["type"] == "error" and reply["code"] == code and reply["message"]
        assert cid in gateway.open and store.get_connection(cid) is not None
        gateway.send(cid, {"action": "heartbeat"})
        assert gateway.last(cid)["type"] == "heartbeatAck"

    def test_listener_cannot_end_the_session(self, gateway, speaker, store):
        """endSession from a listener is FORBIDDEN and changes nothing."""
        _, session_id = speaker
        _, _, cid = join(gateway, session_id)
        gateway.send(cid, {"action": "endSession"})
        assert gateway.last(cid)["code"] == "FORBIDDEN"
        assert store.get_session(session_id).status == "active"

    def test_join_again_is_idempotent(self, gateway, speaker, store):
        """joinSession on a joined connection repeats sessionJoined without counting again."""
        _, session_id = speaker
        _, _, cid = join(gateway, session_id, "es")
        gateway.send(cid, {"action": "joinSession", "sessionId": session_id, "targetLanguage": "es"})
        assert [m["type"] for m in gateway.received(cid)] == ["sessionJoined", "sessionJoined"]
        assert store.get_session(session_id).listener_count == 1

    def test_join_of_another_session_is_forbidden(self, gateway, speaker, store, issuer):
        """A connection belongs to one session."""
        _, session_id = speaker
        _, _, other_speaker = gateway.connect({"action": "createSession", "sourceLanguage": "en", "token": issuer.token("bob")})
        other = gateway.last(other_speaker)["sessionId"]
        _, _, cid = join(gateway, session_id)
        gateway.send(cid, {"action": "joinSession", "sessionId": other, "targetLanguage": "es"})
        assert gateway.last(cid)["code"] == "FORBIDDEN"
        assert store.get_session(other).listener_count == 0

    def test_speaker_cannot_join_as_listener(self, gateway, speaker):
        """joinSession from the speaker is FORBIDDEN."""
        cid, session_id = speaker
        gateway.send(cid, {"action": "joinSession", "sessionId": session_id, "targetLanguage": "es"})
        assert gateway.last(cid)["code"] == "FORBIDDEN"


class TestLeaving:
    def test_listener_leaving_decrements(self, gateway, speaker, store):
        """A listener's disconnect removes its row and decrements the count."""
        _, session_id = speaker
        _, _, a = join(gateway, session_id)
        _, _, b = join(gateway, session_id)
        gateway.close(a)
        assert store.get_connection(a) is None
        assert store.get_session(session_id).listener_count == 1

    def test_duplicate_disconnects_are_harmless(self, gateway, speaker, store):
        """A redelivered $disconnect never decrements twice."""
        _, session_id = speaker
        _, _, a = join(gateway, session_id)
        _, _, b = join(gateway, session_id)
        gateway.close(a)
        gateway.disconnect_event(a)
        gateway.disconnect_event(a)
        assert store.get_session(session_id).listener_count == 1

    def test_unknown_disconnect_is_harmless(self, gateway):
        """A $disconnect for a connection we never recorded does nothing."""
        gateway.disconnect_event("never-seen=")

    @pytest.mark.parametrize("how", ["disconnect", "endSession"])
    def test_speaker_leaving_ends_the_session_for_everyone(self, gateway, speaker, store, how):
        """When the speaker leaves or ends, listeners get sessionEnded, are closed, rows go, joins 404."""
        speaker_cid, session_id = speaker
        listeners = [join(gateway, session_id, lang)[2] for lang in ("es", "fr", "es")]
        if how == "disconnect":
            gateway.close(speaker_cid)
            reason = "speakerDisconnected"
        else:
            gateway.send(speaker_cid, {"action": "endSession"})
            reason = "speakerEnded"
            assert gateway.received(speaker_cid, "sessionEnded")[0]["reason"] == reason
            assert speaker_cid not in gateway.open
        for cid in listeners:
            [ended] = gateway.received(cid, "sessionEnded")
            assert ended["sessionId"] == session_id and ended["reason"] == reason
            assert gateway.closed[cid] == 1000
            assert store.get_connection(cid) is None
        session = store.get_session(session_id)
        assert session.status == "ended" and session.sweep_shard is None  # released, unlisted
        assert list(store.members(session_id)) == []
        assert store.get_connection(speaker_cid) is None
        status, body, _ = join(gateway, session_id)
        assert (status, body["code"]) == (404, "SESSION_NOT_FOUND")

    def test_ending_also_closes_a_replaced_speaker_connection(self, gateway, speaker, issuer, store):
        """The speaker's old socket, still open after a refresh, is told the session
        ended and closed with the new one; no speaker row is left."""
        speaker_cid, session_id = speaker
        _, _, new_cid = gateway.connect(
            {"action": "refreshConnection", "sessionId": session_id, "role": "speaker", "token": issuer.token("alice")}
        )
        gateway.send(new_cid, {"action": "endSession"})
        for cid in (speaker_cid, new_cid):
            assert gateway.received(cid, "sessionEnded")[0]["reason"] == "speakerEnded"
            assert gateway.closed[cid] == 1000 and store.get_connection(cid) is None

    def test_a_replaced_speaker_connection_left_behind_is_swept(self, gateway, speaker, issuer, store, config):
        """A replaced speaker socket whose $disconnect never came is found by the
        sweep (its silence closes it) and its row removed; the session goes on."""
        speaker_cid, session_id = speaker
        _, _, new_cid = gateway.connect(
            {"action": "refreshConnection", "sessionId": session_id, "role": "speaker", "token": issuer.token("alice")}
        )
        gateway.vanish(speaker_cid)
        gateway.runtime.clock.advance(config.heartbeat_timeout_seconds + 1)
        gateway.send(new_cid, {"action": "heartbeat"})
        gateway.sweep()
        assert store.get_connection(speaker_cid) is None
        assert store.get_session(session_id).status == "active"
        assert [m.connection_id for m in store.members(session_id)] == [new_cid]

    def test_listener_already_gone_when_session_ends(self, gateway, speaker, store):
        """A listener whose socket vanished without $disconnect is cleaned when the session ends."""
        speaker_cid, session_id = speaker
        _, _, ghost = join(gateway, session_id)
        gateway.runtime.clock.advance(11)  # past the "may still be connecting" window
        gateway.open.discard(ghost)  # socket gone, $disconnect lost
        gateway.close(speaker_cid)
        assert store.get_connection(ghost) is None
        assert list(store.members(session_id)) == []

    def test_message_after_session_end(self, gateway, speaker, store):
        """A message on a connection with no row gets SESSION_NOT_FOUND."""
        _, session_id = speaker
        _, _, cid = join(gateway, session_id)
        store.remove_listener(store.get_connection(cid), 0)
        gateway.send(cid, {"action": "heartbeat"})
        assert gateway.last(cid)["code"] == "SESSION_NOT_FOUND"

    def test_leave_never_recreates_a_reaped_session(self, gateway, speaker, store, dynamodb, config):
        """If TTL removed the session item, a late leave deletes the row and recreates nothing."""
        _, session_id = speaker
        _, _, cid = join(gateway, session_id)
        dynamodb.delete_item(TableName=config.sessions_table, Key={"sessionId": {"S": session_id}})
        gateway.close(cid)
        assert store.get_connection(cid) is None
        assert store.get_session(session_id) is None


class TestUnexpectedFailures:
    def test_a_bug_becomes_internal_error_without_details(self, gateway, speaker, monkeypatch):
        """An unexpected exception is answered with INTERNAL_ERROR, no stack trace."""
        cid, _ = speaker

        def boom(*args):
            raise KeyError("secret internals")

        monkeypatch.setitem(gateway.runtime.router.actions, "heartbeat", boom)
        gateway.send(cid, {"action": "heartbeat"})
        reply = gateway.last(cid)
        assert reply["code"] == "INTERNAL_ERROR"
        assert "secret" not in reply["message"] and "Traceback" not in reply["message"]

    def test_state_store_outage_during_a_message(self, gateway, speaker, dynamodb, config):
        """A DynamoDB outage while handling a message is SERVICE_UNAVAILABLE."""
        cid, _ = speaker
        dynamodb.delete_table(TableName=config.connections_table)
        gateway.send(cid, {"action": "heartbeat"})
        assert gateway.last(cid)["code"] == "SERVICE_UNAVAILABLE"
