"""The reference client's sans-I/O core, driven without sockets."""
import base64
import json
import struct
from urllib.parse import parse_qs, urlparse

import pytest

from broadcast_client.actions import (
    Close,
    Exit,
    FetchToken,
    Open,
    Print,
    ReadAudio,
    Send,
    WriteAudio,
)
from broadcast_client.audio import AUDIO_CHUNK_BYTES, MAX_AUDIO_BASE64_CHARS, audio_chunks, tone_pcm16
from broadcast_client.display import describe, redact
from broadcast_client.protocol import ClientProtocol, Role, backoff

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
        """connectionRefreshRequired opens refreshConnection; once complete the new socket
        carries the session and the old one is closed after the 1 s drain."""
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
        assert Close(first.key) not in actions, "the old socket is still read a moment"
        assert protocol.current == refresh.key
        assert protocol.next_wakeup() == 4.0
        assert protocol.tick(3.9) == []
        assert protocol.tick(4.0) == [Close(first.key)]
        assert protocol.closed(first.key, 1000, 4.1) == []
        assert protocol.done is None

    def test_refused_start_exits(self):
        """A refused createSession exits non-zero with the server's code."""
        protocol = speaker()
        [action] = protocol.start()
        actions = protocol.refused(action.key, 429, '{"code": "RATE_LIMITED", "message": "no"}', 0)
        assert actions[-1] == Exit(1, "connection refused: 429 RATE_LIMITED: no")

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

    def test_stop_ends_the_session_and_waits_for_session_ended(self):
        """Ctrl-C sends endSession and keeps the socket open until sessionEnded arrives,
        so the close's $disconnect cannot overtake the endSession; then closes and exits 0."""
        protocol = speaker()
        action = started(protocol)
        protocol.received(action.key, msg("sessionCreated", sessionId="s-id-100"), 1.0)
        actions = protocol.stop(2.0)
        assert Send(action.key, json.dumps({"action": "endSession", "sessionId": "s-id-100"})) in actions
        assert not [a for a in actions if isinstance(a, (Close, Exit))]
        assert protocol.tick(4.0) == [] and protocol.done is None
        actions = protocol.received(action.key, msg("sessionEnded", reason="speakerEnded"), 4.5)
        assert Close(action.key) in actions and actions[-1] == Exit(0, "session ended (speakerEnded)")

    def test_stop_gives_up_waiting_for_session_ended_after_5_s(self):
        """Without a sessionEnded, Ctrl-C closes 5 s after sending endSession."""
        protocol = speaker()
        action = started(protocol)
        protocol.received(action.key, msg("sessionCreated", sessionId="s-id-100"), 1.0)
        protocol.stop(2.0)
        assert protocol.next_wakeup() <= 7.0
        actions = protocol.tick(7.0)
        assert Close(action.key) in actions and actions[-1].code == 0

    def test_second_stop_closes_at_once(self):
        """A second Ctrl-C while waiting for sessionEnded closes and exits at once."""
        protocol = speaker()
        action = started(protocol)
        protocol.received(action.key, msg("sessionCreated", sessionId="s-id-100"), 1.0)
        protocol.stop(2.0)
        actions = protocol.stop(2.5)
        assert Close(action.key) in actions and actions[-1] == Exit(0, "stopped")

    def test_missing_token_exits(self):
        """A speaker without a token stops before connecting."""
        protocol = ClientProtocol(url=URL, role=Role.SPEAKER)
        assert protocol.start()[-1].code == 2


def refreshing(protocol, now=2.0):
    """A session whose current socket got connectionRefreshRequired: (old, refresh Open)."""
    first = started(protocol)
    welcome = "sessionCreated" if protocol.role is Role.SPEAKER else "sessionJoined"
    protocol.received(first.key, msg(welcome, sessionId="s-id-100", targetLanguage="es",
                                     sequenceNumber=0), 1.0)
    [refresh] = [a for a in protocol.received(first.key, msg("connectionRefreshRequired"), now)
                 if isinstance(a, (Open, FetchToken))]
    return first, refresh


class TestRefreshRace:
    def test_old_socket_closed_before_refresh_complete_hands_over_to_the_refresh_socket(self):
        """The server closes the old socket after the refresh socket opened but before
        connectionRefreshComplete: no reconnect; the refresh socket carries on, is never
        closed by its own completion, and gets the heartbeats."""
        protocol = speaker()
        first, refresh = refreshing(protocol)
        protocol.opened(refresh.key, 3.0)
        actions = protocol.closed(first.key, 1000, 3.5)
        assert not [a for a in actions if isinstance(a, (Open, FetchToken, Exit))]
        assert protocol.current == refresh.key
        actions = protocol.received(refresh.key, msg("connectionRefreshComplete"), 4.0)
        assert not [a for a in actions if isinstance(a, Close)]
        assert protocol.tick(13.5) == [Send(refresh.key, json.dumps({"action": "heartbeat"}))]
        assert protocol.done is None

    def test_old_socket_closed_while_the_refresh_socket_is_still_opening(self):
        """Closed before the refresh socket even opened: that socket takes over when it
        opens, and no second socket is opened."""
        protocol = listener()
        first, refresh = refreshing(protocol)
        actions = protocol.closed(first.key, 1000, 2.5)
        assert not [a for a in actions if isinstance(a, (Open, Exit))]
        protocol.opened(refresh.key, 3.0)
        assert protocol.current == refresh.key
        assert protocol.tick(13.0) == [Send(refresh.key, json.dumps({"action": "heartbeat"}))]

    def test_refresh_socket_refused_after_the_old_one_closed_reconnects(self):
        """If that refresh socket is then refused (503), the client reconnects with backoff."""
        protocol = listener()
        first, refresh = refreshing(protocol)
        protocol.closed(first.key, 1000, 2.5)
        actions = protocol.refused(refresh.key, 503, '{"code": "SERVICE_UNAVAILABLE"}', 3.0)
        assert [a for a in actions if isinstance(a, Open)]

    def test_a_reconnect_opening_while_another_socket_is_current_is_closed(self):
        """A reconnect socket that opens when another socket already carries the session is
        closed at once: never two current sockets."""
        protocol = listener()
        first = started(protocol)
        [again] = [a for a in protocol.closed(first.key, 1006, 1.0) if isinstance(a, Open)]
        protocol.current = "c99"  # as if another socket had taken over meanwhile
        protocol._open.add("c99")
        actions = protocol.opened(again.key, 2.0)
        assert Close(again.key) in actions
        assert protocol.current == "c99"
        assert protocol.closed(again.key, 1000, 2.1) == []

    def test_refresh_without_complete_is_closed_and_retried(self):
        """A refresh socket that never gets connectionRefreshComplete is closed after
        refresh_timeout and a new refresh is tried; the old socket stays current."""
        protocol = listener()
        first, refresh = refreshing(protocol)
        protocol.opened(refresh.key, 3.0)
        assert protocol.next_wakeup() <= 3.0 + protocol.refresh_timeout
        actions = protocol.tick(3.0 + protocol.refresh_timeout)
        assert Close(refresh.key) in actions
        [retry] = [a for a in actions if isinstance(a, Open)]
        assert retry.key != refresh.key and query(retry.url)["action"] == "refreshConnection"
        assert protocol.current == first.key
        # A late completion on the abandoned socket changes nothing.
        assert not [a for a in protocol.received(refresh.key, msg("connectionRefreshComplete"), 20.0)
                    if isinstance(a, Close)]
        assert protocol.closed(refresh.key, 1000, 20.1) == [] and protocol.current == first.key
        protocol.opened(retry.key, 21.0)
        protocol.received(retry.key, msg("connectionRefreshComplete"), 21.5)
        assert protocol.current == retry.key
        assert Close(first.key) in protocol.tick(22.5)


class TestTokenCommand:
    def fresh(self, token=None):
        return ClientProtocol(url=URL, role=Role.SPEAKER, token=token, fresh_tokens=True,
                              heartbeat_interval=10, rng=lambda: 0.0)

    def test_first_socket_waits_for_a_token_when_none_was_given(self):
        protocol = self.fresh()
        [fetch] = protocol.start()
        assert isinstance(fetch, FetchToken)
        [open_] = protocol.token_ready(fetch.key, "T1", 0.5)
        assert open_.key == fetch.key and query(open_.url)["token"] == "T1"

    def test_every_refresh_and_reconnect_gets_a_fresh_token(self):
        """--token is used for the first socket; refreshes and reconnects ask for a new one."""
        protocol = self.fresh(token="T0")
        [first] = protocol.start()
        assert isinstance(first, Open) and query(first.url)["token"] == "T0"
        protocol.opened(first.key, 0.0)
        protocol.received(first.key, msg("sessionCreated", sessionId="s-id-100"), 1.0)
        [fetch] = [a for a in protocol.received(first.key, msg("connectionRefreshRequired"), 2.0)
                   if isinstance(a, FetchToken)]
        [refresh] = protocol.token_ready(fetch.key, "T1", 2.1)
        assert query(refresh.url) == {"action": "refreshConnection", "sessionId": "s-id-100",
                                      "role": "speaker", "token": "T1"}
        protocol.opened(refresh.key, 2.2)
        protocol.received(refresh.key, msg("connectionRefreshComplete"), 2.3)
        [again] = [a for a in protocol.closed(refresh.key, 1006, 3.0) if isinstance(a, FetchToken)]
        assert again.delay == pytest.approx(0.25)  # the backoff comes before the command runs
        [reconnect] = protocol.token_ready(again.key, "T2", 3.5)
        assert query(reconnect.url)["token"] == "T2" and reconnect.delay == 0

    def test_a_failing_token_command_keeps_the_current_connection(self):
        protocol = self.fresh(token="T0")
        first = started(protocol)
        protocol.received(first.key, msg("sessionCreated", sessionId="s-id-100"), 1.0)
        [fetch] = [a for a in protocol.received(first.key, msg("connectionRefreshRequired"), 2.0)
                   if isinstance(a, FetchToken)]
        actions = protocol.token_failed(fetch.key, "exit status 1", 2.5)
        assert any("token command failed: exit status 1" in p and "keeping the current" in p
                   for p in prints(actions))
        assert protocol.done is None and protocol.current == first.key

    def test_a_failing_token_command_at_start_exits(self):
        protocol = self.fresh()
        [fetch] = protocol.start()
        assert protocol.token_failed(fetch.key, "exit status 127", 0.1)[-1].code == 1


class TestRedaction:
    def test_failed_connection_messages_hide_the_token(self):
        """A malformed URL is quoted in the error; its token= value is never printed."""
        protocol = ClientProtocol(url="ws://[bad", role=Role.SPEAKER, token="SECRET.JWT.VALUE")
        [action] = protocol.start()
        error = f"InvalidURI: {action.url} isn't a valid URI"
        actions = protocol.failed(action.key, error, 0.0)
        assert "SECRET" not in repr(actions)
        assert "token=***" in actions[-1].reason

    def test_redact(self):
        assert redact("ws://h/dev?action=x&token=a.b.c&y=1 and token%3Dd.e") == \
            "ws://h/dev?action=x&token=***&y=1 and token%3D***"


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
        protocol.received(first.key, msg("sessionJoined", targetLanguage="es", sequenceNumber=4), 0.5)
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

    def test_a_refresh_names_the_connection_it_replaces(self):
        """After sessionJoined, a refresh (here after a drop) carries previousConnectionId
        = the welcome's connectionId, so the server lets it take over that place; after
        the handover, the next one names the new connection."""
        protocol = listener()
        action = started(protocol)
        protocol.received(action.key, msg("sessionJoined", sessionId="faithful-shepherd-123",
                                          targetLanguage="es", connectionId="OLD="), 1.0)
        [rejoin] = [a for a in protocol.closed(action.key, 1006, 2.0) if isinstance(a, Open)]
        assert query(rejoin.url)["previousConnectionId"] == "OLD="
        protocol.opened(rejoin.key, 2.5)
        protocol.received(rejoin.key, msg("connectionRefreshComplete", role="listener",
                                          connectionId="NEW="), 3.0)
        [again] = [a for a in protocol.closed(rejoin.key, 1006, 4.0) if isinstance(a, Open)]
        assert query(again.url)["previousConnectionId"] == "NEW="

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


def sends(actions):
    return [json.loads(a.text) for a in actions if isinstance(a, Send)]


def prints(actions):
    return [a.text for a in actions if isinstance(a, Print)]


def audio(seq, data, speaker_seq=None, language="es"):
    fields = {"sequenceNumber": seq, "targetLanguage": language, "sourceLanguage": "en",
              "audioData": base64.b64encode(data).decode()}
    if speaker_seq is not None:
        fields["speakerSequenceNumber"] = speaker_seq
    return msg("audio", **fields)


def joined(protocol, baseline=0, now=0.0):
    action = started(protocol, now)
    protocol.received(action.key, msg("sessionJoined", targetLanguage="es", sequenceNumber=baseline), now)
    return action


class TestAudioHelpers:
    def test_tone_is_16_bit_mono_pcm_at_16_khz(self):
        """tone_pcm16(0.5) is 8,000 little-endian 16-bit samples of a sine."""
        data = tone_pcm16(0.5)
        assert len(data) == 16000
        samples = struct.unpack("<8000h", data)
        assert samples[0] == 0 and max(samples) > 8000 and min(samples) < -8000

    def test_chunks_fit_one_frame_and_the_server_limit(self):
        """audio_chunks cuts at the size; sizes the server would refuse are rejected."""
        assert audio_chunks(b"x" * 40000) == [b"x" * 16384, b"x" * 16384, b"x" * 7232]
        assert len(base64.b64encode(b"x" * AUDIO_CHUNK_BYTES)) < 32 * 1024 - 200
        with pytest.raises(ValueError):
            audio_chunks(b"x", MAX_AUDIO_BASE64_CHARS)


class TestDescribe:
    def test_status_with_the_language_distribution(self):
        """sessionStatus shows count, languages, state and duration."""
        text = describe({"type": "sessionStatus", "sessionId": "s-id-100", "status": "active",
                         "listenerCount": 3, "languageDistribution": {"fr": 1, "es": 2},
                         "sessionDuration": 100, "expiresAt": 0,
                         "broadcastState": {"isPaused": True, "isMuted": False, "volume": 0.5}})
        assert text.startswith("sessionStatus: s-id-100 active, 3 listeners (es 2, fr 1), on air 1m40s")
        assert "broadcast paused, volume 0.5" in text

    def test_error_names_its_code_and_action(self):
        """An error shows its code, the failed action and the server's message."""
        assert describe({"type": "error", "code": "INVALID_PARAMETER", "action": "setVolume",
                         "message": "bad"}) == "error INVALID_PARAMETER (setVolume): bad"

    def test_audio_shows_number_and_decoded_size(self):
        """An audio message is summarised, never dumped."""
        text = describe(json.loads(audio(12, b"\0" * 300, speaker_seq=3)))
        assert text == "audio chunk #12, 300 bytes (speaker chunk 3)"

    def test_controls_and_published_messages(self):
        """Control notices show the state; other published types show their fields."""
        state = {"isPaused": False, "isMuted": True, "volume": 1.0}
        assert describe({"type": "broadcastMuted", "sequenceNumber": 4, "broadcastState": state}) == \
            "broadcastMuted #4: broadcast playing, muted, volume 1.0"
        assert describe({"type": "volumeChanged", "sequenceNumber": 5, "volumeLevel": 0.3}) == \
            "volumeChanged #5: volume 0.3"
        assert describe({"type": "translation", "sequenceNumber": 6, "targetLanguage": "es",
                         "text": "hola"}) == 'translation #6 (es): text="hola"'


class TestSpeakerCommands:
    def connected(self):
        protocol = speaker()
        action = started(protocol)
        protocol.received(action.key, msg("sessionCreated", sessionId="s-id-100"), 1.0)
        return protocol, action.key

    @pytest.mark.parametrize("line,body", [
        ("pause", {"action": "pauseBroadcast"}),
        ("resume", {"action": "resumeBroadcast"}),
        ("MUTE", {"action": "muteBroadcast"}),
        ("unmute", {"action": "unmuteBroadcast"}),
        ("volume 0.25", {"action": "setVolume", "volumeLevel": 0.25}),
        ("volume 2", {"action": "setVolume", "volumeLevel": 2.0}),  # the server refuses it
        ("status", {"action": "getSessionStatus"}),
        ("end", {"action": "endSession"}),
    ])
    def test_commands_send_their_action(self, line, body):
        """Each command sends one message on the current socket."""
        protocol, key = self.connected()
        actions = protocol.command(line + "\n", 2.0)
        assert actions == [Send(key, json.dumps(body))]

    @pytest.mark.parametrize("line", ["volume", "volume loud", "volume nan", "fly", "pause now",
                                      "tone -1", "tone 61", "tone x"])
    def test_bad_commands_are_explained_and_send_nothing(self, line):
        """Malformed commands print a note starting with '!' and send nothing."""
        protocol, _ = self.connected()
        actions = protocol.command(line, 2.0)
        assert not sends(actions) and prints(actions)[0].startswith("! ")

    def test_help_lists_every_command(self):
        """help prints the commands the speaker accepts."""
        protocol, _ = self.connected()
        text = "\n".join(prints(protocol.command("help", 2.0)))
        for word in ("pause", "resume", "mute", "unmute", "volume", "status", "audio", "tone", "end"):
            assert word in text

    def test_audio_command_asks_for_the_file(self):
        """audio FILE reads the file (I/O), with a format guessed from its extension."""
        protocol, _ = self.connected()
        assert protocol.command("audio speech.pcm", 2.0) == [ReadAudio("speech.pcm", "pcm16/16000")]
        assert protocol.command("audio 'my talk.wav'", 2.0) == [ReadAudio("my talk.wav", "wav")]
        assert protocol.command("audio blob opus", 2.0) == [ReadAudio("blob", "opus")]

    def test_audio_is_sent_in_numbered_chunks_that_rebuild_the_data(self):
        """Chunks of 16 KB, numbered on across calls, whose bytes concatenate to the input."""
        protocol, _ = self.connected()
        data = bytes(range(256)) * 200  # 51,200 bytes: 4 chunks
        bodies = sends(protocol.audio(data, 2.0, audio_format="pcm16/16000"))
        assert [b["sequenceNumber"] for b in bodies] == [1, 2, 3, 4]
        assert b"".join(base64.b64decode(b["audioData"]) for b in bodies) == data
        assert all(b["action"] == "sendAudio" and b["format"] == "pcm16/16000" for b in bodies)
        assert [b["sequenceNumber"] for b in sends(protocol.command("tone 0.1", 3.0))] == [5]

    def test_every_chunk_fits_one_websocket_frame(self):
        """A whole sendAudio message stays under API Gateway's 32 KB frame limit."""
        protocol, _ = self.connected()
        actions = protocol.audio(b"\xff" * 100_000, 2.0)
        assert all(len(a.text.encode()) < 32 * 1024 for a in actions if isinstance(a, Send))

    def test_audio_while_paused_warns_that_the_server_drops_it(self):
        """After a controlAck saying paused, sending audio prints a warning."""
        protocol, key = self.connected()
        protocol.received(key, msg("controlAck", action="pauseBroadcast",
                                   broadcastState={"isPaused": True, "isMuted": False}), 2.0)
        assert any("paused" in text for text in prints(protocol.audio(b"x", 3.0)))

    def test_commands_before_the_session_exists_are_refused(self):
        """Nothing is sent before the socket is open."""
        protocol = speaker()
        protocol.start()
        assert not sends(protocol.command("pause", 0.0))
        assert not sends(protocol.audio(b"x", 0.0))
        assert protocol.command("audio f", 0.0)[0].text.startswith("! ")

    def test_a_command_waits_for_the_previous_ones_answer(self):
        """Piped commands keep their order: each waits for the previous controlAck."""
        protocol, key = self.connected()
        assert sends(protocol.command("pause", 2.0)) == [{"action": "pauseBroadcast"}]
        assert protocol.command("volume 0.5", 2.1) == []
        assert protocol.command("tone 0.1", 2.2) == []
        assert protocol.command("end", 2.3) == []
        ack = protocol.received(key, msg("controlAck", action="pauseBroadcast"), 2.4)
        assert [b["action"] for b in sends(ack)] == ["setVolume"]
        error = protocol.received(key, msg("error", code="INVALID_PARAMETER", action="setVolume"), 2.5)
        # audio gets no answer: the tone and the next command go out together
        assert [b["action"] for b in sends(error)] == ["sendAudio", "endSession"]

    def test_an_unanswered_command_releases_the_next_after_the_timeout(self):
        """Without an answer within answer_timeout, the next command goes anyway."""
        protocol, _ = self.connected()
        protocol.command("status", 2.0)
        protocol.command("resume", 2.1)
        assert protocol.next_wakeup() == 7.0
        actions = protocol.tick(7.0)
        assert prints(actions)[0] == "! no answer to getSessionStatus after 5 s; going on"
        assert sends(actions) == [{"action": "resumeBroadcast"}]

    def test_status_is_answered_by_session_status(self):
        """sessionStatus answers getSessionStatus and releases the next command."""
        protocol, key = self.connected()
        protocol.command("status", 2.0)
        protocol.command("mute", 2.1)
        actions = protocol.received(key, msg("sessionStatus", listenerCount=0), 2.2)
        assert sends(actions) == [{"action": "muteBroadcast"}]

    def test_text_output_is_readable(self):
        """With output="text" messages print as one readable line each."""
        protocol = ClientProtocol(url=URL, role=Role.SPEAKER, token="T", output="text")
        action = started(protocol)
        actions = protocol.received(action.key, msg("error", code="FORBIDDEN", message="no",
                                                    action="joinSession"), 1.0)
        assert actions == [Print("< error FORBIDDEN (joinSession): no")]


def published(seq, language="es", kind="translation", **fields):
    return msg(kind, targetLanguage=language, sequenceNumber=seq, **fields)


BASELINES = ("sessionJoined", "connectionRefreshComplete", "languageChanged")


def shown(actions):
    """The sequenceNumbers of the broadcast messages printed, in the order printed."""
    printed = [json.loads(t[2:]) for t in prints(actions) if t.startswith("< ")]
    return [m.get("sequenceNumber") for m in printed if m["type"] not in BASELINES]


def notes(actions):
    return [t for t in prints(actions) if t.startswith("!")]


def feed(protocol, arrivals):
    """Messages (key, text, now) in arrival order; everything they printed."""
    actions = []
    for key, text, now in arrivals:
        actions += protocol.received(key, text, now)
    return actions


class TestListenerBroadcast:
    def test_out_of_order_arrivals_are_printed_in_number_order(self):
        """Concurrent publishes overtake each other; the listener prints 1..5 in order,
        each once, and reports no gap."""
        protocol = listener()
        first = joined(protocol)
        actions = feed(protocol, [(first.key, published(n), 1.0 + n / 10) for n in (3, 1, 2, 5, 4)])
        assert (shown(actions), notes(actions)) == ([1, 2, 3, 4, 5], [])

    def test_duplicates_across_a_refresh_overlap_are_printed_once(self):
        """During a refresh both sockets deliver; the old one is read for 1 s after
        connectionRefreshComplete; every message prints once, in order, nothing is lost."""
        protocol = listener()
        first = joined(protocol, baseline=0)
        actions = protocol.received(first.key, published(1), 1.0)
        [refresh] = [a for a in protocol.received(first.key, msg("connectionRefreshRequired"), 1.1)
                     if isinstance(a, Open)]
        protocol.opened(refresh.key, 1.2)
        actions += feed(protocol, [
            (first.key, published(2), 1.3),
            (refresh.key, published(3), 1.4),  # the new socket is registered: both deliver
            (first.key, published(3), 1.5),
            (refresh.key, msg("connectionRefreshComplete", role="listener", targetLanguage="es",
                              connectionId="C2=", sequenceNumber=3), 1.6),
            (first.key, published(4), 1.7),  # already on its way to the old socket
            (refresh.key, published(5), 1.8),
            (refresh.key, published(4), 1.9),
        ])
        assert protocol.tick(2.6) == [Close(first.key)]
        actions += protocol.received(refresh.key, published(6), 2.7)
        assert (shown(actions), notes(actions)) == ([1, 2, 3, 4, 5, 6], [])
        assert protocol.sequence("es").duplicates == 2

    def test_refresh_baseline_does_not_drop_what_the_old_socket_still_delivers(self):
        """connectionRefreshComplete's number does not hide messages still in flight on the old socket."""
        protocol = listener()
        first = joined(protocol, baseline=10)
        protocol.received(first.key, published(11), 1.0)
        [refresh] = [a for a in protocol.received(first.key, msg("connectionRefreshRequired"), 1.1)
                     if isinstance(a, Open)]
        protocol.opened(refresh.key, 1.2)
        protocol.received(refresh.key, msg("connectionRefreshComplete", role="listener",
                                           targetLanguage="es", sequenceNumber=14), 1.3)
        actions = feed(protocol, [(first.key, published(n), 1.4) for n in (12, 13, 14)])
        assert shown(actions) == [12, 13, 14]
        assert protocol.received(refresh.key, published(14), 1.5) == []

    def test_a_transient_gap_is_waited_for_and_never_reported(self):
        """A number that arrives within 2 s of its followers prints in its place, and no
        gap is reported."""
        protocol = listener()
        first = joined(protocol)
        actions = feed(protocol, [(first.key, published(1), 1.0), (first.key, published(3), 1.0)])
        assert protocol.next_wakeup() == 3.0
        actions += protocol.tick(2.9)
        actions += protocol.received(first.key, published(2), 2.9)
        assert (shown(actions), notes(actions)) == ([1, 2, 3], [])
        assert protocol.next_wakeup() == 10.0  # only the heartbeat left

    def test_a_persistent_gap_is_reported_once_after_2_s(self):
        """A number still missing 2 s after a later one arrived is reported once, by
        number, and what waited behind it is printed then, in order."""
        protocol = listener()
        first = joined(protocol)
        actions = feed(protocol, [(first.key, published(n), 1.0 + n / 10) for n in (1, 3, 4)])
        assert shown(actions) == [1]
        assert protocol.tick(3.29) == []
        actions = protocol.tick(3.3)  # #3 arrived at 1.3
        assert notes(actions) == ["! 1 message(s) in es missed (#2..#2): not arrived within 2 s of a "
                                  "later one; not waiting for them any more"]
        assert shown(actions) == [3, 4]
        assert notes(protocol.tick(9.0)) == []

    def test_a_message_arriving_after_its_gap_was_reported_is_dropped(self):
        """A pause that arrives after its gap was reported, behind a later resume, is not
        applied: the broadcast stays playing, and a note says why."""
        protocol = listener()
        first = joined(protocol)
        playing = {"isPaused": False, "isMuted": False, "volume": 1.0}
        protocol.received(first.key, published(2, kind="broadcastResumed", broadcastState=playing), 1.0)
        protocol.tick(3.0)
        assert protocol.broadcast_state == playing
        paused = dict(playing, isPaused=True)
        actions = protocol.received(first.key, published(1, kind="broadcastPaused", broadcastState=paused), 3.5)
        assert shown(actions) == [] and "#1 in es came after it was given up" in notes(actions)[0]
        assert protocol.broadcast_state == playing

    def test_129_messages_behind_a_missing_one_give_it_up_at_once(self):
        """128 messages may wait behind a missing number; the 129th reports it at once,
        without waiting 2 s, and prints all of them in order."""
        protocol = listener()
        first = joined(protocol)
        waiting = feed(protocol, [(first.key, published(n), 1.0) for n in range(2, 130)])
        assert shown(waiting) == [] and protocol.sequence("es").waiting == 128
        actions = protocol.received(first.key, published(130), 1.0)
        assert notes(actions) == ["! 1 message(s) in es missed (#1..#1): not arrived before 128 later "
                                  "ones; not waiting for them any more"]
        assert shown(actions) == list(range(2, 131))

    def test_messages_before_the_welcome_wait_for_its_baseline(self):
        """Messages that overtake sessionJoined wait for it; those at or below its
        baseline were published before the listener arrived and are not printed."""
        protocol = listener()
        first = started(protocol)
        early = feed(protocol, [(first.key, published(7), 0.1), (first.key, published(5), 0.1)])
        assert shown(early) == []
        joined_ = protocol.received(first.key, msg("sessionJoined", targetLanguage="es", sequenceNumber=5), 0.2)
        assert shown(joined_) == [] and prints(joined_)[0].startswith('< {"type": "sessionJoined"')
        assert shown(protocol.received(first.key, published(6), 0.3)) == [6, 7]

    def test_reconnect_reports_messages_missed_while_away(self):
        """After a drop, the rejoin's baseline reveals the numbers that were lost, at once."""
        protocol = listener()
        first = joined(protocol, baseline=3)
        rejoin = [a for a in protocol.closed(first.key, 1006, 1.0) if isinstance(a, Open)][0]
        protocol.opened(rejoin.key, 2.0)
        actions = protocol.received(rejoin.key, msg("connectionRefreshComplete", role="listener",
                                                    targetLanguage="es", sequenceNumber=6), 2.1)
        assert notes(actions) == ["! 3 message(s) in es missed (#4..#6): published while reconnecting; "
                                  "not waiting for them any more"]
        assert shown(protocol.received(rejoin.key, published(7), 2.2)) == [7]

    def test_a_refresh_whose_old_socket_closed_first_keeps_the_refresh_rule(self):
        """A refresh socket that carries on after the old one closed early is still a
        refresh, as in the browser client: its baseline reports nothing at once."""
        protocol = listener()
        first = joined(protocol, baseline=10)
        [refresh] = [a for a in protocol.received(first.key, msg("connectionRefreshRequired"), 1.0)
                     if isinstance(a, Open)]
        protocol.closed(first.key, 1000, 1.1)  # before the refresh socket even opened
        protocol.opened(refresh.key, 1.2)
        actions = protocol.received(refresh.key, msg("connectionRefreshComplete", role="listener",
                                                     targetLanguage="es", sequenceNumber=12), 1.3)
        assert notes(actions) == []
        assert shown(protocol.received(refresh.key, published(11), 1.4)) == [11]

    def test_language_change_restarts_ordering_at_its_baseline(self):
        """After languageChanged the new language's numbers count from its baseline: one
        that overtook the change is printed after it, lower ones are not printed."""
        protocol = listener()
        first = joined(protocol, baseline=40)
        assert shown(protocol.received(first.key, published(18, "de"), 0.9)) == []
        actions = protocol.received(first.key, msg("languageChanged", targetLanguage="de",
                                                   previousLanguage="es", sequenceNumber=16), 1.0)
        assert shown(actions) == [] and protocol.target_language == "de"
        assert shown(protocol.received(first.key, published(17, "de"), 1.1)) == [17, 18]
        assert protocol.received(first.key, published(16, "de"), 1.2) == []
        assert query(protocol.refresh_url())["targetLanguage"] == "de"

    def test_session_end_prints_what_waited_then_the_end(self):
        """At sessionEnded the messages still waiting behind a missing one are printed in
        order (the missing one noted), then the end, and the client exits 0."""
        protocol = listener()
        first = joined(protocol)
        feed(protocol, [(first.key, published(1), 1.0), (first.key, published(3), 1.1)])
        actions = protocol.received(first.key, msg("sessionEnded", reason="speakerEnded"), 1.2)
        assert notes(actions) == ["! 1 message(s) in es missed (#2..#2): not arrived before the client "
                                  "stopped; not waiting for them any more"]
        printed = [json.loads(t[2:])["type"] for t in prints(actions) if t.startswith("< ")]
        assert printed == ["translation", "sessionEnded"]
        assert actions[-1] == Exit(0, "session ended (speakerEnded)")

    def test_received_audio_is_written_in_the_speakers_order(self):
        """With audio_out, chunks are written by speakerSequenceNumber: the first ones
        wait 300 ms for earlier ones (one may overtake them), one that overtook its
        predecessor waits for it, a missing one is skipped after 300 ms, and what
        still waits is written at sessionEnded."""
        protocol = listener(audio_out=True)
        first = joined(protocol)

        def written(actions):
            return [a.data for a in actions if isinstance(a, WriteAudio)]

        assert written(protocol.received(first.key, audio(1, b"A2", speaker_seq=2), 1.0)) == []
        assert written(protocol.received(first.key, audio(2, b"A1", speaker_seq=1), 1.1)) == []
        assert protocol.next_wakeup() == pytest.approx(1.3)
        assert written(protocol.tick(1.3)) == [b"A1", b"A2"]
        assert written(protocol.received(first.key, audio(3, b"A4", speaker_seq=4), 1.4)) == []
        assert written(protocol.received(first.key, audio(4, b"A3", speaker_seq=3), 1.5)) == [b"A3", b"A4"]
        assert written(protocol.received(first.key, audio(5, b"A6", speaker_seq=6), 2.0)) == []
        assert protocol.next_wakeup() == pytest.approx(2.3)
        skipped = protocol.tick(2.3)
        assert written(skipped) == [b"A6"] and "5..5 skipped" in notes(skipped)[0]
        protocol.received(first.key, audio(6, b"A8", speaker_seq=8), 2.5)
        ended = protocol.received(first.key, msg("sessionEnded", reason="speakerEnded"), 2.6)
        assert written(ended) == [b"A8"]
        assert ended[-1] == Exit(0, "session ended (speakerEnded)")

    def test_audio_is_ordered_by_broadcast_number_first(self):
        """An audio message that overtook an earlier broadcast number waits for it, then
        both chunks are written in the speaker's order."""
        protocol = listener(audio_out=True, audio_hold=0.0)
        first = joined(protocol)
        assert protocol.received(first.key, audio(2, b"B", speaker_seq=2), 1.0) == []
        actions = protocol.received(first.key, audio(1, b"A", speaker_seq=1), 1.1)
        assert [a.data for a in actions if isinstance(a, WriteAudio)] == [b"A", b"B"]

    def test_duplicate_audio_is_not_written_twice(self):
        """An audio message seen on both sockets of a refresh is written once."""
        protocol = listener(audio_out=True, audio_hold=0.0)
        first = joined(protocol)
        message = audio(1, b"AA", speaker_seq=1)
        assert WriteAudio(b"AA") in protocol.received(first.key, message, 1.0)
        assert protocol.received("c9", message, 1.1) == []

    @pytest.mark.parametrize("line,body", [
        ("status", {"action": "getSessionStatus"}),
        ("language de", {"action": "changeLanguage", "targetLanguage": "de"}),
    ])
    def test_listener_commands(self, line, body):
        """A listener can ask for status and change language (answered by languageChanged)."""
        protocol = listener()
        first = joined(protocol)
        assert protocol.command(line, 1.0) == [Send(first.key, json.dumps(body))]

    def test_leave_closes_and_exits(self):
        """leave closes the socket and exits 0; speaker-only commands are unknown."""
        protocol = listener()
        first = joined(protocol)
        assert prints(protocol.command("pause", 1.0))[0].startswith("! unknown command")
        actions = protocol.command("leave", 1.0)
        assert Close(first.key) in actions and actions[-1] == Exit(0, "stopped")
