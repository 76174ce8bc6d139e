"""Fan-out, speaker controls, status, language change and audio in."""

import base64
import json

import boto3
import pytest

from chalicelib.audio import MAX_AUDIO_BASE64_CHARS
from tests.functional.conftest import join
from tests.support.harness import Context


def publish(gateway, **event):
    return gateway.app.publish(event, Context())


@pytest.fixture
def audience(gateway, speaker):
    """Speaker plus listeners: 4 es, 3 fr, 2 de."""
    speaker_cid, session_id = speaker
    listeners = {lang: [join(gateway, session_id, lang)[2] for _ in range(n)] for lang, n in (("es", 4), ("fr", 3), ("de", 2))}
    return speaker_cid, session_id, listeners


def of_type(gateway, cid, type_):
    return gateway.received(cid, type_)


class TestPublish:
    def test_one_language_reaches_exactly_its_listeners(self, gateway, audience):
        """A publish to 'fr' reaches the 3 French listeners and nobody else."""
        speaker_cid, session_id, listeners = audience
        result = publish(gateway, sessionId=session_id, targetLanguage="fr", type="translation", data={"text": "Bonjour"})
        assert result == {"delivered": 3, "gone": 0, "failed": 0, "sequenceNumbers": {"fr": 1}}
        for lang, cids in listeners.items():
            for cid in cids:
                got = of_type(gateway, cid, "translation")
                assert len(got) == (1 if lang == "fr" else 0)
        assert not of_type(gateway, speaker_cid, "translation")
        [message] = of_type(gateway, listeners["fr"][0], "translation")
        assert message["text"] == "Bonjour" and message["sequenceNumber"] == 1
        assert message["sessionId"] == session_id and message["targetLanguage"] == "fr"

    def test_sequence_numbers_increase_per_language(self, gateway, audience):
        """Each listener sees 1, 2, 3... in its own language, with no gaps."""
        _, session_id, listeners = audience
        publish(gateway, sessionId=session_id, data={"n": 1})
        publish(gateway, sessionId=session_id, targetLanguage="es", data={"n": 2})
        publish(gateway, sessionId=session_id, data={"n": 3})
        assert [m["sequenceNumber"] for m in of_type(gateway, listeners["es"][0], "broadcast")] == [1, 2, 3]
        assert [m["sequenceNumber"] for m in of_type(gateway, listeners["de"][0], "broadcast")] == [1, 2]

    def test_gone_listeners_are_reported_and_cleaned(self, gateway, audience, store):
        """Listeners closed without $disconnect count as gone; rows go and the count is corrected."""
        _, session_id, listeners = audience
        gateway.runtime.clock.advance(11)  # past the "may still be connecting" window
        for cid in listeners["es"][:3]:
            gateway.vanish(cid)
        result = publish(gateway, sessionId=session_id, data={"x": 1})
        assert (result["delivered"], result["gone"], result["failed"]) == (6, 3, 0)
        assert store.get_session(session_id).listener_count == 6
        assert all(store.get_connection(cid) is None for cid in listeners["es"][:3])

    def test_listener_still_connecting_keeps_its_place(self, gateway, audience, store):
        """A 410 from a listener still inside its $connect does not remove or uncount it."""
        _, session_id, _ = audience
        _, _, connecting = gateway.connect(
            {"action": "joinSession", "sessionId": session_id, "targetLanguage": "es"}, deliver=False
        )
        gateway.open.discard(connecting)  # the handshake has not completed yet
        result = publish(gateway, sessionId=session_id, targetLanguage="es", data={"x": 1})
        assert (result["delivered"], result["gone"]) == (4, 1)
        assert store.get_connection(connecting) is not None
        assert store.get_session(session_id).listener_count == 10

    def test_refresh_overlap_duplicates_carry_the_same_number(self, gateway, audience):
        """During a listener refresh both sockets get each message with the same sequenceNumber."""
        _, session_id, listeners = audience
        old = listeners["de"][0]
        _, _, new = gateway.connect({"action": "refreshConnection", "sessionId": session_id, "role": "listener", "targetLanguage": "de"})
        publish(gateway, sessionId=session_id, data={"x": 1})
        assert of_type(gateway, old, "broadcast")[0]["sequenceNumber"] == of_type(gateway, new, "broadcast")[0]["sequenceNumber"]

    @pytest.mark.parametrize(
        "event,code",
        [
            ({"sessionId": "nope"}, "INVALID_SESSION_ID"),
            ({"sessionId": "faithful-shepherd-427"}, "SESSION_NOT_FOUND"),
            ({"sessionId": "SID", "targetLanguage": "zz"}, "UNSUPPORTED_LANGUAGE"),
            ({"sessionId": "SID", "type": "sessionEnded"}, "INVALID_PARAMETER"),
            ({"sessionId": "SID", "data": [1]}, "INVALID_PARAMETER"),
            ({"sessionId": "SID", "data": {"sequenceNumber": 9}}, "INVALID_PARAMETER"),
            ({"sessionId": "SID", "data": {"blob": "x" * 130_000}}, "INVALID_PARAMETER"),
        ],
    )
    def test_bad_publish_requests_are_refused(self, gateway, audience, event, code):
        """The publish function refuses bad requests with a code and delivers nothing."""
        _, session_id, listeners = audience
        if event.get("sessionId") == "SID":
            event["sessionId"] = session_id
        result = publish(gateway, **event)
        assert result["error"]["code"] == code
        assert not any(m["type"] not in ("sessionJoined",) for m in gateway.received(listeners["es"][0]))


class TestControls:
    def test_a_listener_a_control_finds_gone_is_removed_and_uncounted(self, gateway, audience, store):
        """A listener whose socket vanished without $disconnect, found by a control's
        fan-out (410), loses its row and its place, and the speaker is told it left."""
        speaker_cid, session_id, listeners = audience
        gone = listeners["de"][0]
        gateway.runtime.clock.advance(11)  # past the "may still be connecting" window
        gateway.vanish(gone)
        gateway.send(speaker_cid, {"action": "pauseBroadcast"})
        assert store.get_connection(gone) is None
        assert store.get_session(session_id).listener_count == 8
        assert gateway.received(speaker_cid, "listenerPresence")[-1]["left"] == "de"

    def test_a_listener_leaving_after_a_speaker_refresh_is_told_to_the_new_speaker(
            self, gateway, speaker, issuer):
        """The listener joined under the speaker's old connection; once that one is
        gone, its leaving is told to the connection that took over (a read of the
        session finds it)."""
        old, session_id = speaker
        _, _, listener = join(gateway, session_id, "fr")
        status, _, new = gateway.connect({"action": "refreshConnection", "sessionId": session_id,
                                          "role": "speaker", "token": issuer.token("alice")})
        assert status == 200
        gateway.close(old)
        gateway.close(listener)
        assert gateway.received(new, "listenerPresence")[-1]["left"] == "fr"

    @pytest.mark.parametrize(
        "action,listener_type,field,value",
        [
            ("pauseBroadcast", "broadcastPaused", "isPaused", True),
            ("muteBroadcast", "broadcastMuted", "isMuted", True),
        ],
    )
    def test_controls_update_state_and_tell_everyone(self, gateway, audience, store, action, listener_type, field, value):
        """A control updates broadcastState, listeners are told, the speaker gets controlAck."""
        speaker_cid, session_id, listeners = audience
        gateway.send(speaker_cid, {"action": action})
        ack = gateway.last(speaker_cid)
        assert ack["type"] == "controlAck" and ack["action"] == action and ack["broadcastState"][field] is value
        for cids in listeners.values():
            assert of_type(gateway, cids[0], listener_type)[0]["broadcastState"][field] is value
        state = store.get_session(session_id).broadcast_state
        assert getattr(state, {"isPaused": "is_paused", "isMuted": "is_muted"}[field]) is value

    def test_resume_and_unmute_undo(self, gateway, audience, store):
        """resume and unmute restore the state, and listeners hear about both."""
        speaker_cid, session_id, listeners = audience
        for action in ("pauseBroadcast", "muteBroadcast", "resumeBroadcast", "unmuteBroadcast"):
            gateway.send(speaker_cid, {"action": action})
        state = store.get_session(session_id).broadcast_state
        assert not state.is_paused and not state.is_muted
        types = [m["type"] for m in gateway.received(listeners["fr"][0])]
        assert types[-4:] == ["broadcastPaused", "broadcastMuted", "broadcastResumed", "broadcastUnmuted"]

    def test_set_volume(self, gateway, audience, store):
        """setVolume stores the level and listeners get volumeChanged."""
        speaker_cid, session_id, listeners = audience
        gateway.send(speaker_cid, {"action": "setVolume", "volumeLevel": 0.25})
        assert of_type(gateway, listeners["es"][1], "volumeChanged")[0]["volumeLevel"] == 0.25
        assert store.get_session(session_id).broadcast_state.volume == 0.25

    @pytest.mark.parametrize("level", [-0.1, 1.01, "0.5", None, True, float("nan")])
    def test_bad_volume_changes_nothing(self, gateway, audience, store, level):
        """Out-of-range or non-numeric volumes are INVALID_PARAMETER and change nothing."""
        speaker_cid, session_id, listeners = audience
        body = json.dumps({"action": "setVolume", "volumeLevel": level}) if level == level else '{"action":"setVolume","volumeLevel":NaN}'
        gateway.send(speaker_cid, body, raw=True)
        reply = gateway.last(speaker_cid)
        assert reply["type"] == "error" and reply["code"] in ("INVALID_PARAMETER", "INVALID_MESSAGE")
        assert store.get_session(session_id).broadcast_state.volume == 1.0
        assert not of_type(gateway, listeners["es"][0], "volumeChanged")

    @pytest.mark.parametrize("action", ["pauseBroadcast", "resumeBroadcast", "muteBroadcast", "unmuteBroadcast", "setVolume"])
    def test_listeners_cannot_control(self, gateway, audience, store, action):
        """Controls from a listener are FORBIDDEN."""
        _, session_id, listeners = audience
        gateway.send(listeners["es"][0], {"action": action, "volumeLevel": 0.5})
        assert gateway.last(listeners["es"][0])["code"] == "FORBIDDEN"
        state = store.get_session(session_id).broadcast_state
        assert (state.is_paused, state.is_muted, state.volume) == (False, False, 1.0)

    def test_late_joiner_sees_current_state(self, gateway, audience):
        """sessionJoined carries the current broadcastState."""
        speaker_cid, session_id, _ = audience
        gateway.send(speaker_cid, {"action": "pauseBroadcast"})
        _, _, late = join(gateway, session_id, "es")
        assert gateway.last(late)["broadcastState"]["isPaused"] is True


class TestStatus:
    def test_speaker_status(self, gateway, audience):
        """The speaker sees count, per-language distribution, duration and state."""
        speaker_cid, session_id, _ = audience
        gateway.send(speaker_cid, {"action": "getSessionStatus"})
        status = gateway.last(speaker_cid)
        assert status["type"] == "sessionStatus"
        assert status["listenerCount"] == 9
        assert status["languageDistribution"] == {"de": 2, "es": 4, "fr": 3}
        assert status["sessionDuration"] >= 0 and status["broadcastState"]["isPaused"] is False

    def test_listener_status_is_public_part(self, gateway, audience):
        """Listeners get the status without the per-language distribution."""
        _, _, listeners = audience
        cid = listeners["fr"][0]
        gateway.send(cid, {"action": "getSessionStatus"})
        status = gateway.last(cid)
        assert status["type"] == "sessionStatus" and status["listenerCount"] == 9
        assert "languageDistribution" not in status


class TestChangeLanguage:
    def test_listener_moves_to_another_language(self, gateway, audience, store):
        """After changeLanguage a listener receives the new language only."""
        _, session_id, listeners = audience
        cid = listeners["es"][0]
        gateway.send(cid, {"action": "changeLanguage", "targetLanguage": "de"})
        reply = gateway.last(cid)
        assert reply["type"] == "languageChanged"
        assert (reply["targetLanguage"], reply["previousLanguage"]) == ("de", "es")
        publish(gateway, sessionId=session_id, targetLanguage="es", data={"n": 1})
        publish(gateway, sessionId=session_id, targetLanguage="de", data={"n": 2})
        assert [m["n"] for m in of_type(gateway, cid, "broadcast")] == [2]
        assert store.get_connection(cid).target_language == "de"

    @pytest.mark.parametrize("language,code", [("ja", "UNSUPPORTED_LANGUAGE"), ("ES", "INVALID_LANGUAGE"), (None, "INVALID_LANGUAGE")])
    def test_bad_language_changes_nothing(self, gateway, audience, store, language, code):
        """Unsupported or malformed languages are refused and the listener stays put."""
        _, _, listeners = audience
        cid = listeners["es"][0]
        gateway.send(cid, {"action": "changeLanguage", "targetLanguage": language})
        assert gateway.last(cid)["code"] == code
        assert store.get_connection(cid).target_language == "es"

    def test_speaker_cannot_change_language(self, gateway, audience):
        """changeLanguage is for listeners."""
        speaker_cid, _, _ = audience
        gateway.send(speaker_cid, {"action": "changeLanguage", "targetLanguage": "fr"})
        assert gateway.last(speaker_cid)["code"] == "FORBIDDEN"


AUDIO = base64.b64encode(b"\x00\x01" * 800).decode()


class TestAudio:
    @pytest.fixture
    def config_env(self, config_env):
        config_env["AUDIO_SINK"] = "relay"
        return config_env

    def test_relay_reaches_every_listener(self, gateway, audience):
        """With the relay sink the speaker's chunk reaches every listener untranslated."""
        speaker_cid, _, listeners = audience
        gateway.send(speaker_cid, {"action": "sendAudio", "audioData": AUDIO, "sequenceNumber": 7, "format": "pcm16/16000"})
        for cids in listeners.values():
            [chunk] = of_type(gateway, cids[-1], "audio")
            assert chunk["audioData"] == AUDIO and chunk["speakerSequenceNumber"] == 7
            assert chunk["format"] == "pcm16/16000" and chunk["sourceLanguage"] == "en"
        assert not gateway.received(speaker_cid, "error")

    def test_paused_broadcast_relays_nothing(self, gateway, audience):
        """While paused, audio is accepted but not forwarded."""
        speaker_cid, _, listeners = audience
        gateway.send(speaker_cid, {"action": "pauseBroadcast"})
        gateway.send(speaker_cid, {"action": "sendAudio", "audioData": AUDIO})
        assert not of_type(gateway, listeners["es"][0], "audio")

    @pytest.mark.parametrize(
        "body,code",
        [
            ({"audioData": "not base64!!"}, "INVALID_AUDIO"),
            ({"audioData": ""}, "INVALID_AUDIO"),
            ({}, "INVALID_AUDIO"),
            ({"audioData": AUDIO, "sequenceNumber": -1}, "INVALID_AUDIO"),
            ({"audioData": "A" * (MAX_AUDIO_BASE64_CHARS + 4)}, "AUDIO_TOO_LARGE"),
            ({"audioData": AUDIO, "sessionId": "gracious-temple-777"}, "FORBIDDEN"),
        ],
    )
    def test_bad_chunks_are_refused(self, gateway, audience, body, code):
        """Malformed, oversized or misaddressed chunks are refused and nothing is relayed."""
        speaker_cid, _, listeners = audience
        gateway.send(speaker_cid, {"action": "sendAudio", **body})
        assert gateway.last(speaker_cid)["code"] == code
        assert not of_type(gateway, listeners["es"][0], "audio")

    def test_listeners_cannot_send_audio(self, gateway, audience):
        """Audio from a listener is FORBIDDEN."""
        _, _, listeners = audience
        gateway.send(listeners["es"][0], {"action": "sendAudio", "audioData": AUDIO})
        assert gateway.last(listeners["es"][0])["code"] == "FORBIDDEN"
        assert not of_type(gateway, listeners["es"][1], "audio")


class TestKinesisSink:
    @pytest.fixture
    def config_env(self, config_env):
        config_env.update(AUDIO_SINK="kinesis", AUDIO_STREAM_NAME="audio-in")
        return config_env

    def test_one_record_per_chunk_partitioned_by_session(self, gateway, speaker):
        """With the kinesis sink each chunk becomes one record keyed by the session id."""
        speaker_cid, session_id = speaker
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        kinesis.create_stream(StreamName="audio-in", ShardCount=1)
        gateway.send(speaker_cid, {"action": "sendAudio", "audioData": AUDIO, "sequenceNumber": 1})
        gateway.send(speaker_cid, {"action": "sendAudio", "audioData": AUDIO, "sequenceNumber": 2})
        shard = kinesis.describe_stream(StreamName="audio-in")["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = kinesis.get_shard_iterator(StreamName="audio-in", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = kinesis.get_records(ShardIterator=iterator)["Records"]
        assert [r["PartitionKey"] for r in records] == [session_id, session_id]
        assert [json.loads(r["Data"])["sequenceNumber"] for r in records] == [1, 2]

    def test_stream_outage_is_service_unavailable(self, gateway, speaker):
        """If the stream is missing the speaker gets SERVICE_UNAVAILABLE, not a crash."""
        speaker_cid, _ = speaker
        gateway.send(speaker_cid, {"action": "sendAudio", "audioData": AUDIO})
        assert gateway.last(speaker_cid)["code"] == "SERVICE_UNAVAILABLE"
