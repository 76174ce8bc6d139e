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
from broadcast_client.ordering import AudioReorderBuffer, SequenceFilter
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
        assert Close(first.key) in protocol.received(retry.key, msg("connectionRefreshComplete"), 21.5)
        assert protocol.current == retry.key


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


class TestSequenceFilter:
    def test_duplicates_are_refused_and_out_of_order_numbers_accepted_once(self):
        """Every number is accepted once, whatever the order it comes in."""
        seen = SequenceFilter()
        seen.reset(0)
        assert [seen.accept(n) for n in (2, 1, 2, 1, 3)] == [True, True, False, False, True]
        assert seen.floor == 3 and seen.missing() == []

    def test_missing_lists_the_gap_below_the_highest(self):
        """A jump leaves the skipped numbers in missing() until they arrive."""
        seen = SequenceFilter()
        seen.reset(10)
        seen.accept(11)
        seen.accept(14)
        assert seen.missing() == [12, 13] and seen.highest == 14
        seen.accept(13)
        seen.accept(12)
        assert seen.missing() == [] and seen.floor == 14

    def test_numbers_at_or_below_the_baseline_are_duplicates(self):
        """reset(baseline) counts everything up to the baseline as seen, keeps what is above."""
        seen = SequenceFilter()
        seen.accept(7)  # arrived before the welcome that carries the baseline
        seen.reset(5)
        assert not seen.accept(5) and not seen.accept(7)
        assert seen.accept(6) and seen.floor == 7

    def test_advance_reports_what_was_lost(self):
        """advance(baseline) after a reconnect returns the numbers that never arrived."""
        seen = SequenceFilter()
        seen.reset(0)
        seen.accept(1)
        seen.accept(3)
        assert seen.advance(5) == [2, 4, 5]
        assert seen.floor == 5 and not seen.accept(4)

    def test_memory_stays_bounded_after_a_lost_number(self):
        """One number lost for good: over 200,000 later messages the filter holds at most
        a window's worth of numbers, gives the lost one up once, and still drops duplicates."""
        seen = SequenceFilter()
        seen.reset(0)
        gaps = []
        for n in range(1, 200_001):
            if n == 5:
                continue  # never arrives
            assert seen.accept(n)
            gap = seen.expire()
            if gap is not None:
                gaps.append(gap)
            assert seen.remembered <= seen.window
        assert [(g.count, g.first, g.last) for g in gaps] == [(1, 5, 5)]
        assert seen.floor == 200_000 and seen.remembered == 0
        assert not seen.accept(5) and not seen.accept(199_999)

    def test_numbers_within_the_window_are_still_awaited(self):
        """A late number arriving less than a window after its successors is accepted."""
        seen = SequenceFilter(window=10)
        seen.reset(0)
        for n in range(2, 11):
            seen.accept(n)
            assert seen.expire() is None
        assert seen.accept(1) and seen.floor == 10

    def test_a_gap_without_a_baseline_is_bounded_too(self):
        """Numbers before any baseline (no welcome yet) cannot grow without limit either."""
        seen = SequenceFilter(window=10)
        for n in list(range(100, 105)) + list(range(107, 200)):
            seen.accept(n)
            seen.expire()
            assert seen.remembered <= 10
        assert not seen.accept(150)


class TestAudioReorderBuffer:
    def test_chunks_are_written_in_the_speakers_order(self):
        """A chunk waits for its predecessor; both are then written in order."""
        buffer = AudioReorderBuffer(hold=0.5)
        assert buffer.push(1, b"a", 0.0) == []  # the first chunk waits: an earlier one may come
        assert buffer.push(3, b"c", 0.1) == []
        assert buffer.deadline() == 0.5
        assert buffer.release(0.5) == [WriteAudio(b"a")]
        assert buffer.push(2, b"b", 0.6) == [WriteAudio(b"b"), WriteAudio(b"c")]
        assert buffer.deadline() is None

    def test_a_missing_chunk_is_skipped_after_the_hold_and_dropped_if_late(self):
        """After hold seconds the gap is skipped; the missing chunk is not written later."""
        buffer = AudioReorderBuffer(hold=0.5)
        buffer.push(1, b"a", 0.0)
        buffer.release(0.5)
        assert buffer.push(3, b"c", 1.0) == []
        assert buffer.release(1.4) == []
        assert buffer.release(1.5) == [WriteAudio(b"c")]
        [late] = buffer.push(2, b"b", 1.6)
        assert isinstance(late, Print) and "late" in late.text

    def test_flush_writes_everything_in_order(self):
        """flush (on exit) writes what still waits, lowest number first."""
        buffer = AudioReorderBuffer(hold=10)
        buffer.push(5, b"e", 0.0)
        buffer.push(4, b"d", 0.0)
        assert buffer.release(0.1, flush=True) == [WriteAudio(b"d"), WriteAudio(b"e")]


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


class TestListenerBroadcast:
    def test_out_of_order_messages_are_all_kept_and_duplicates_dropped(self):
        """Concurrent publishes may arrive out of order; each number prints exactly once."""
        protocol = listener()
        first = joined(protocol)
        printed = []
        for key, seq in [(first.key, 2), (first.key, 1), ("c2", 2), ("c2", 1), (first.key, 3)]:
            printed += prints(protocol.received(key, msg("translation", targetLanguage="es",
                                                         sequenceNumber=seq), 1.0))
        assert [json.loads(t[2:])["sequenceNumber"] for t in printed] == [2, 1, 3]

    def test_refresh_baseline_does_not_drop_what_the_old_socket_still_delivers(self):
        """connectionRefreshComplete's number does not hide messages still in flight on the old socket."""
        protocol = listener()
        first = joined(protocol, baseline=10)
        protocol.received(first.key, msg("translation", targetLanguage="es", sequenceNumber=11), 1.0)
        [refresh] = [a for a in protocol.received(first.key, msg("connectionRefreshRequired"), 1.1)
                     if isinstance(a, Open)]
        protocol.opened(refresh.key, 1.2)
        protocol.received(refresh.key, msg("connectionRefreshComplete", role="listener",
                                           targetLanguage="es", sequenceNumber=14), 1.3)
        for seq in (12, 13, 14):  # published before the new socket existed
            assert protocol.received(first.key, msg("translation", targetLanguage="es",
                                                    sequenceNumber=seq), 1.4)
        assert protocol.received(refresh.key, msg("translation", targetLanguage="es",
                                                  sequenceNumber=14), 1.5) == []

    def test_reconnect_reports_messages_missed_while_away(self):
        """After a drop, the rejoin's baseline reveals the numbers that were lost."""
        protocol = listener()
        first = joined(protocol, baseline=3)
        rejoin = [a for a in protocol.closed(first.key, 1006, 1.0) if isinstance(a, Open)][0]
        protocol.opened(rejoin.key, 2.0)
        actions = protocol.received(rejoin.key, msg("connectionRefreshComplete", role="listener",
                                                    targetLanguage="es", sequenceNumber=6), 2.1)
        assert "! 3 message(s) missed while reconnecting (#4..#6)" in prints(actions)
        assert protocol.received(rejoin.key, msg("translation", targetLanguage="es", sequenceNumber=7), 2.2)

    def test_a_message_lost_for_good_is_reported_once_and_then_forgotten(self):
        """A listener that never receives #3 prints one line naming it once the rest is a
        window ahead, and goes on printing every message once."""
        protocol = listener()
        first = joined(protocol, baseline=0)
        printed = []
        for n in [1, 2] + list(range(4, 1100)):
            printed += prints(protocol.received(first.key, msg("translation", sequenceNumber=n), 1.0))
        notes = [p for p in printed if p.startswith("!")]
        assert len(notes) == 1 and "1 message(s) missed (#3..#3)" in notes[0]
        assert len([p for p in printed if p.startswith("<")]) == 1098
        assert protocol.sequence("es").remembered <= protocol.sequence("es").window
        assert protocol.received(first.key, msg("translation", sequenceNumber=3), 2.0) == []

    def test_language_change_restarts_duplicate_detection(self):
        """After languageChanged the new language's numbers (lower ones too) are accepted."""
        protocol = listener()
        first = joined(protocol, baseline=40)
        protocol.received(first.key, msg("languageChanged", targetLanguage="de", previousLanguage="es",
                                         sequenceNumber=16), 1.0)
        assert protocol.target_language == "de"
        assert protocol.received(first.key, msg("translation", targetLanguage="de", sequenceNumber=17), 1.1)
        assert protocol.received(first.key, msg("translation", targetLanguage="de", sequenceNumber=16), 1.2) == []
        assert query(protocol.refresh_url())["targetLanguage"] == "de"

    def test_received_audio_is_written_in_order_and_flushed_on_exit(self):
        """With audio_out, chunks are written in the speaker's order; the rest at sessionEnded."""
        protocol = listener(audio_out=True, audio_hold=0.5)
        first = joined(protocol)
        assert protocol.received(first.key, audio(1, b"AA", speaker_seq=2), 1.0)[1:] == []
        actions = protocol.received(first.key, audio(2, b"BB", speaker_seq=1), 1.1)
        assert protocol.next_wakeup() == pytest.approx(1.5)  # the first chunk has waited since 1.0
        assert [a for a in protocol.tick(1.5) if isinstance(a, WriteAudio)] == \
            [WriteAudio(b"BB"), WriteAudio(b"AA")]
        assert not [a for a in actions if isinstance(a, WriteAudio)]
        protocol.received(first.key, audio(3, b"DD", speaker_seq=4), 2.0)
        ended = protocol.received(first.key, msg("sessionEnded", reason="speakerEnded"), 2.1)
        assert [a for a in ended if isinstance(a, WriteAudio)] == [WriteAudio(b"DD")]
        assert ended[-1] == Exit(0, "session ended (speakerEnded)")

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
