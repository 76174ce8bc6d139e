"""The reference client's ordering rule (docs/protocol.md, "Ordering and duplicates"),
pure: the reorder buffer, the per-language baselines, the speaker's audio order, and
tables of scenarios that the browser client's ``sequence.js`` and ``player.js`` must
pass too."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from broadcast_client.actions import Print, WriteAudio
from broadcast_client.ordering import (
    AUDIO_HOLD,
    AUDIO_WINDOW,
    GAP_TIMEOUT,
    WINDOW,
    AudioOrder,
    BroadcastSequences,
    Gap,
    ReorderBuffer,
)

SEQUENCE_JS = Path(__file__).resolve().parents[2] / "web" / "assets" / "js" / "lib" / "sequence.js"
PLAYER_JS = SEQUENCE_JS.with_name("player.js")


def numbers(result):
    return list(result.deliver)


class TestReorderBuffer:
    def test_arrival_orders_all_come_out_in_number_order(self):
        """Whatever order 1..6 arrive in, each is delivered once, in order, with no gap."""
        for arrival in ([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1], [2, 1, 4, 3, 6, 5], [3, 6, 1, 5, 2, 4]):
            buffer = ReorderBuffer()
            buffer.reset(0, 0.0)
            out, gaps = [], []
            for n in arrival:
                result = buffer.push(n, n, 0.1)
                out += numbers(result)
                gaps += result.gaps
            assert (out, gaps, buffer.waiting) == ([1, 2, 3, 4, 5, 6], [], 0), arrival

    def test_a_transient_gap_is_never_reported(self):
        """A missing number that arrives before the oldest follower waited 2 s fills its
        hole: everything is delivered in order and no gap is reported."""
        buffer = ReorderBuffer()
        buffer.reset(0, 0.0)
        buffer.push(2, 2, 10.0)
        buffer.push(3, 3, 11.0)
        nothing_yet = buffer.expire(11.99)
        assert (numbers(nothing_yet), nothing_yet.gaps) == ([], ())
        result = buffer.push(1, 1, 11.99)
        assert (numbers(result), result.gaps) == ([1, 2, 3], ())

    def test_a_persistent_gap_is_reported_once_after_the_timeout(self):
        """A number still missing when a follower has waited 2 s is reported once, and
        the followers are delivered; later expiries report nothing more."""
        buffer = ReorderBuffer()
        buffer.reset(0, 0.0)
        buffer.push(2, 2, 10.0)
        assert buffer.deadline() == 10.0 + GAP_TIMEOUT
        result = buffer.expire(12.0)
        assert (numbers(result), result.gaps) == ([2], (Gap(1, 1, "timeout"),))
        assert buffer.expire(20.0).gaps == () and buffer.deadline() is None

    def test_a_late_arrival_after_its_gap_was_reported_is_dropped(self):
        """The given-up number arriving afterwards is not delivered (it would apply an
        older state over a newer one); a second copy of it is a plain duplicate."""
        buffer = ReorderBuffer()
        buffer.reset(0, 0.0)
        buffer.push(2, "volume 0.8", 0.0)
        buffer.expire(2.0)
        late = buffer.push(1, "pause", 2.5)
        assert (numbers(late), late.late, late.duplicate) == ([], True, False)
        again = buffer.push(1, "pause", 2.6)
        assert (again.late, again.duplicate) == (False, True)
        assert (buffer.late, buffer.duplicates) == (1, 1)

    def test_the_window_bounds_what_waits_behind_a_missing_number(self):
        """128 messages may wait behind a missing one; the 129th gives it up at once,
        before any timeout, and memory never holds more than the window."""
        buffer = ReorderBuffer()
        buffer.reset(0, 0.0)
        for n in range(2, 2 + WINDOW):
            assert buffer.push(n, n, 0.0).deliver == ()
        assert buffer.waiting == WINDOW
        result = buffer.push(2 + WINDOW, 2 + WINDOW, 0.0)
        assert result.gaps == (Gap(1, 1, "window"),)
        assert numbers(result) == list(range(2, 3 + WINDOW)) and buffer.waiting == 0

    def test_memory_stays_bounded_over_a_long_stream_with_losses(self):
        """50,000 messages with every 1,000th lost: each loss is reported once, nothing
        else is, the buffer never holds more than the window, and every other message
        is delivered once, in order."""
        buffer = ReorderBuffer()
        buffer.reset(0, 0.0)
        delivered, gaps = 0, []
        last = 0
        for n in range(1, 50_001):
            if n % 1000 == 0:
                continue
            result = buffer.push(n, n, n / 1000)  # a message every millisecond
            for got in result.deliver:
                assert got > last
                last = got
            delivered += len(result.deliver)
            gaps += result.gaps
            assert buffer.waiting <= WINDOW
        assert gaps == [Gap(k, k, "window") for k in range(1000, 50_000, 1000)]
        assert delivered == 50_000 - 50 and buffer.waiting == 0

    def test_reconnect_reports_the_numbers_published_while_away_at_once(self):
        """advance(baseline) delivers what arrived, reports each missing range up to the
        baseline at once, and goes on after it."""
        buffer = ReorderBuffer()
        buffer.reset(10, 0.0)
        buffer.push(12, 12, 0.0)
        result = buffer.advance(15, 0.5)
        assert result.gaps == (Gap(11, 11, "reconnect"), Gap(13, 15, "reconnect"))
        assert numbers(result) == [12] and buffer.next == 16

    def test_a_long_absence_is_one_gap_without_remembering_every_number(self):
        """A reconnect after a million numbers reports one range and remembers only the
        newest given-up numbers, as late ones are told from duplicates."""
        buffer = ReorderBuffer()
        buffer.reset(0, 0.0)
        result = buffer.advance(1_000_000, 1.0)
        assert result.gaps == (Gap(1, 1_000_000, "reconnect"),)
        assert buffer.push(1_000_000, "x", 2.0).late
        assert buffer.push(1, "x", 2.0).duplicate  # long forgotten: counted as a duplicate

    def test_flush_delivers_what_waits_in_order_with_its_gaps(self):
        """flush (the client stops) delivers every held message in order, reporting the
        holes between them as "end" gaps."""
        buffer = ReorderBuffer()
        buffer.reset(0, 0.0)
        for n in (5, 3, 2):
            buffer.push(n, n, 0.0)
        result = buffer.flush()
        assert numbers(result) == [2, 3, 5]
        assert result.gaps == (Gap(1, 1, "end"), Gap(4, 4, "end"))


class TestBroadcastSequences:
    def test_the_join_baseline_drops_what_was_published_before(self):
        """Messages that came before sessionJoined wait for it; those at or below its
        baseline are dropped, the rest delivered in order."""
        sequences = BroadcastSequences()
        assert numbers(sequences.arrived("es", 7, 7, 0.0)) == []
        assert numbers(sequences.arrived("es", 5, 5, 0.0)) == []
        assert numbers(sequences.welcomed("es", 5, 0.1, reconnected=False)) == []
        assert numbers(sequences.arrived("es", 6, 6, 0.2)) == [6, 7]

    def test_a_refresh_baseline_changes_nothing(self):
        """connectionRefreshComplete's number does not move the sequence: the old socket
        may still deliver numbers below it, and they are delivered once."""
        sequences = BroadcastSequences()
        sequences.welcomed("es", 10, 0.0, reconnected=False)
        assert sequences.welcomed("es", 14, 1.0, reconnected=False).deliver == ()
        assert numbers(sequences.arrived("es", 14, 14, 1.1)) == []  # new socket first
        assert numbers(sequences.arrived("es", 11, 11, 1.2)) == [11]  # old socket, in flight
        assert numbers(sequences.arrived("es", 12, 12, 1.2)) == [12]
        assert numbers(sequences.arrived("es", 13, 13, 1.3)) == [13, 14]
        assert sequences.arrived("es", 14, 14, 1.4).duplicate  # the old socket's copy

    def test_languages_have_their_own_sequences(self):
        """Numbers count per target language: the same number in two languages is two
        messages, and a gap in one holds nothing back in the other."""
        sequences = BroadcastSequences()
        sequences.welcomed("es", 0, 0.0, reconnected=False)
        sequences.restart("de", 0, 0.0)
        assert numbers(sequences.arrived("es", 2, "es2", 0.0)) == []
        assert numbers(sequences.arrived("de", 1, "de1", 0.0)) == ["de1"]
        assert sequences.deadline() == GAP_TIMEOUT
        [(language, result)] = sequences.expire(GAP_TIMEOUT)
        assert (language, numbers(result), result.gaps) == ("es", ["es2"], (Gap(1, 1, "timeout"),))

    def test_a_language_change_restarts_at_its_baseline(self):
        """restart() starts the new language after its baseline: messages of it that came
        before the languageChanged and are above the baseline are then delivered."""
        sequences = BroadcastSequences()
        sequences.welcomed("es", 40, 0.0, reconnected=False)
        assert numbers(sequences.arrived("de", 18, 18, 0.5)) == []  # before languageChanged
        assert numbers(sequences.restart("de", 16, 0.6)) == []
        assert numbers(sequences.arrived("de", 17, 17, 0.7)) == [17, 18]
        assert sequences.arrived("de", 16, 16, 0.8).duplicate


def written(actions):
    return [a.data for a in actions if isinstance(a, WriteAudio)]


def notes(actions):
    return [a.text for a in actions if isinstance(a, Print)]


class TestAudioOrder:
    def test_chunks_are_written_in_the_speakers_order(self):
        """The first chunk waits the hold for earlier ones, then is written; a later one
        waits for its predecessor and both are written in order when it comes."""
        audio = AudioOrder()
        assert audio.push(1, b"a", 0.0) == []
        assert audio.deadline() == pytest.approx(AUDIO_HOLD)
        assert audio.expire(AUDIO_HOLD) == [WriteAudio(b"a")]
        assert audio.push(3, b"c", 0.4) == []
        assert audio.deadline() == pytest.approx(0.4 + AUDIO_HOLD)
        assert audio.push(2, b"b", 0.5) == [WriteAudio(b"b"), WriteAudio(b"c")]
        assert audio.deadline() is None

    def test_chunk_2_then_1_within_the_hold_are_written_1_then_2(self):
        """Concurrent sendAudio invocations can deliver the speaker's chunk 2 before
        chunk 1: the first chunk does not fix the order, both are written 1, 2."""
        audio = AudioOrder()
        assert audio.push(2, b"b", 0.0) == []
        assert audio.push(1, b"a", 0.2) == []
        assert audio.deadline() == pytest.approx(AUDIO_HOLD)  # from the first arrival
        assert audio.expire(0.29) == []
        assert audio.expire(0.3) == [WriteAudio(b"a"), WriteAudio(b"b")]
        assert audio.push(3, b"c", 0.4) == [WriteAudio(b"c")]

    def test_chunk_1_after_the_hold_is_dropped_with_a_note(self):
        """Once the hold is over, writing starts at the lowest chunk seen (2); chunk 1
        coming later is not written (it would repeat the past), and the user is told."""
        audio = AudioOrder()
        assert audio.push(2, b"b", 0.0) == []
        assert audio.expire(0.3) == [WriteAudio(b"b")]
        late = audio.push(1, b"a", 0.4)
        assert written(late) == []
        assert notes(late) == ["! speaker's audio chunk 1 came too late or twice; not written"]
        assert audio.push(3, b"c", 0.5) == [WriteAudio(b"c")]

    def test_a_longer_hold_waits_longer_for_the_first_chunks(self):
        """--audio-hold 5 (a recording): chunk 1 five seconds late still comes first."""
        audio = AudioOrder(hold=5.0)
        audio.push(2, b"b", 0.0)
        assert audio.deadline() == pytest.approx(5.0)
        assert audio.expire(4.9) == []
        assert audio.push(1, b"a", 4.9) == []
        assert audio.expire(5.0) == [WriteAudio(b"a"), WriteAudio(b"b")]

    def test_a_missing_chunk_is_skipped_after_the_hold_and_not_written_late(self):
        """After 300 ms the missing chunk is skipped (and said so); if it comes later it
        is not written: it would repeat the past."""
        assert AUDIO_HOLD == 0.3
        audio = AudioOrder()
        audio.push(1, b"a", 0.0)
        assert audio.expire(0.3) == [WriteAudio(b"a")]
        audio.push(3, b"c", 1.0)
        assert audio.expire(1.29) == []
        skipped, written_c = audio.expire(1.3)
        assert isinstance(skipped, Print) and "2..2 skipped" in skipped.text
        assert written_c == WriteAudio(b"c")
        [late] = audio.push(2, b"b", 1.4)
        assert isinstance(late, Print) and "too late" in late.text

    def test_chunks_without_a_number_are_written_as_they_come(self):
        """A chunk without speakerSequenceNumber cannot be ordered: written at once."""
        assert AudioOrder().push(None, b"x", 0.0) == [WriteAudio(b"x")]

    def test_flush_writes_everything_in_order(self):
        """flush (on exit) writes what still waits, lowest number first, the holes noted."""
        audio = AudioOrder(hold=10)
        audio.push(5, b"e", 0.0)
        audio.push(3, b"c", 0.0)
        audio.push(6, b"f", 0.0)
        flushed = audio.flush()
        assert written(flushed) == [b"c", b"e", b"f"]
        assert notes(flushed) == ["! speaker's audio chunk(s) 4..4 skipped: not arrived before the end"]


# -- one table, two clients ----------------------------------------------------------
#
# The scenarios of tests/browser/js/sequence.test.mjs, and a few more, as data: each
# step is [operation, arguments..., expected]. Times are in milliseconds (the browser's
# unit; the Python buffer takes any unit). Python runs it always; sequence.js runs it
# through node where node is installed, so both clients keep one rule.


def pushes(first, last, at, expected):
    return [["push", n, at, expected] for n in range(first, last + 1)]


NOTHING = {"deliver": [], "gaps": []}

SCENARIOS = {
    "in-order numbers after the baseline are delivered at once": ({}, [
        ["reset", 41, 0, NOTHING],
        ["push", 42, 0, {"deliver": [42]}],
        ["push", 43, 0, {"deliver": [43]}],
    ]),
    "out-of-order numbers are held and delivered in order once the missing one arrives": ({}, [
        ["reset", 0, 0, NOTHING],
        ["push", 3, 0, NOTHING],
        ["push", 2, 10, NOTHING],
        ["waiting", 2],
        ["push", 1, 20, {"deliver": [1, 2, 3], "gaps": []}],
    ]),
    "a duplicate (a refresh overlap) is dropped, held or already delivered": ({}, [
        ["reset", 0, 0, NOTHING],
        ["push", 1, 0, {"deliver": [1]}],
        ["push", 1, 1, {"deliver": [], "duplicate": True, "late": False}],
        ["push", 3, 2, NOTHING],
        ["push", 3, 3, {"deliver": [], "duplicate": True}],
        ["counts", [2, 0]],
    ]),
    "numbers at or below the baseline were published before we arrived: dropped": ({}, [
        ["push", 5, 0, NOTHING],
        ["push", 7, 0, NOTHING],
        ["reset", 5, 0, NOTHING],
        ["push", 6, 1, {"deliver": [6, 7]}],
    ]),
    "a gap is reported only once a later message waited the timeout": ({"gapTimeoutMs": 2000}, [
        ["reset", 0, 0, NOTHING],
        ["push", 2, 1000, NOTHING],
        ["deadline", 3000],
        ["expire", 2999, NOTHING],
        ["expire", 3000, {"deliver": [2], "gaps": [[1, 1, 1, "timeout"]]}],
        ["deadline", None],
    ]),
    "a number that comes after its gap was reported is dropped as late, not applied": (
        {"gapTimeoutMs": 100}, [
            ["reset", 0, 0, NOTHING],
            ["push", 2, 0, NOTHING],
            ["expire", 100, {"deliver": [2], "gaps": [[1, 1, 1, "timeout"]]}],
            ["push", 1, 150, {"deliver": [], "late": True, "duplicate": False}],
            ["counts", [0, 1]],
            ["push", 1, 160, {"deliver": [], "late": False, "duplicate": True}],
        ]),
    "more than WINDOW messages behind a missing one give it up at once": (
        {"window": 4, "gapTimeoutMs": 1e9}, [
            ["reset", 0, 0, NOTHING],
            *pushes(2, 5, 0, NOTHING),
            ["push", 6, 0, {"deliver": [2, 3, 4, 5, 6], "gaps": [[1, 1, 1, "window"]]}],
        ]),
    "after a reconnect, what was published while away and never arrived is a gap at once": ({}, [
        ["reset", 0, 0, NOTHING],
        ["push", 1, 0, {"deliver": [1]}],
        ["push", 3, 0, NOTHING],
        ["advance", 5, 10, {"deliver": [3], "gaps": [[2, 2, 1, "reconnect"], [4, 5, 2, "reconnect"]]}],
        ["push", 6, 11, {"deliver": [6]}],
    ]),
    "without a baseline, messages wait the timeout and then start at the lowest": ({"gapTimeoutMs": 100}, [
        ["push", 11, 0, NOTHING],
        ["push", 10, 5, NOTHING],
        ["expire", 100, {"deliver": [10, 11], "gaps": []}],
    ]),
    # Beyond the browser's own tests: the documented numbers, and the timeout's clock.
    "the documented window: 128 wait behind a missing number, the 129th gives it up": ({}, [
        ["reset", 0, 0, NOTHING],
        *pushes(2, 129, 0, NOTHING),
        ["waiting", 128],
        ["expire", 1999, NOTHING],
        ["push", 130, 1, {"deliver": list(range(2, 131)), "gaps": [[1, 1, 1, "window"]]}],
    ]),
    "the documented timeout: a transient gap filled within 2 s is never reported": ({}, [
        ["reset", 0, 0, NOTHING],
        ["push", 2, 0, NOTHING],
        ["push", 3, 500, NOTHING],
        ["deadline", 2000],
        ["expire", 1999, NOTHING],
        ["push", 1, 1999, {"deliver": [1, 2, 3], "gaps": []}],
        ["deadline", None],
    ]),
    "the timeout runs from the oldest waiting message, and each gap has its own": ({}, [
        ["reset", 0, 0, NOTHING],
        ["push", 2, 0, NOTHING],
        ["push", 5, 1000, NOTHING],
        ["expire", 2000, {"deliver": [2], "gaps": [[1, 1, 1, "timeout"]]}],
        ["deadline", 3000],
        ["expire", 3000, {"deliver": [5], "gaps": [[3, 4, 2, "timeout"]]}],
    ]),
    "a reconnect before any baseline starts at the new one": ({}, [
        ["push", 7, 0, NOTHING],
        ["advance", 5, 1, NOTHING],
        ["push", 6, 2, {"deliver": [6, 7], "gaps": []}],
    ]),
}


def run_python(options, steps):
    """The table's steps on the Python buffer, in the shape the node driver reports."""
    buffer = ReorderBuffer(window=options.get("window", WINDOW),
                           gap_timeout=options.get("gapTimeoutMs", GAP_TIMEOUT * 1000))

    def shape(result):
        return {"deliver": list(result.deliver), "duplicate": result.duplicate, "late": result.late,
                "gaps": [[g.first, g.last, g.count, g.reason] for g in result.gaps]}

    out = []
    for op, *args in steps:
        args = args[:-1]
        if op == "push":
            out.append(shape(buffer.push(args[0], args[0], args[1])))
        elif op in ("reset", "advance"):
            out.append(shape(getattr(buffer, op)(*args)))
        elif op == "expire":
            out.append(shape(buffer.expire(args[0])))
        elif op == "deadline":
            out.append(buffer.deadline())
        elif op == "waiting":
            out.append(buffer.waiting)
        elif op == "counts":
            out.append([buffer.duplicates, buffer.late])
    return out


NODE_DRIVER = """
import { readFileSync } from "node:fs";
import { ReorderBuffer, WINDOW, GAP_TIMEOUT_MS } from %s;
const shape = (r) => ({ deliver: r.deliver.map((m) => m.n), duplicate: Boolean(r.duplicate),
  late: Boolean(r.late), gaps: r.gaps.map((g) => [g.first, g.last, g.count, g.reason]) });
const out = { WINDOW, GAP_TIMEOUT_MS, scenarios: {} };
for (const [name, [options, steps]] of Object.entries(JSON.parse(readFileSync(0, "utf8")))) {
  const b = new ReorderBuffer(options);
  out.scenarios[name] = steps.map(([op, ...args]) => {
    if (op === "push") return shape(b.push(args[0], { n: args[0] }, args[1]));
    if (op === "reset" || op === "advance") return shape(b[op](args[0], args[1]));
    if (op === "expire") return shape(b.expire(args[0]));
    if (op === "deadline") return b.deadline();
    if (op === "waiting") return b.waiting;
    if (op === "counts") return [b.duplicates, b.late];
    throw new Error(`unknown step ${op}`);
  });
}
process.stdout.write(JSON.stringify(out));
"""


def check(steps, got):
    """Each step's result against its expectation (only the keys it names)."""
    for step, actual in zip(steps, got, strict=True):
        expected = step[-1]
        if isinstance(expected, dict):
            actual = {k: actual[k] for k in expected}
        assert actual == expected, step


class TestSameRuleAsTheBrowserClient:
    @pytest.mark.parametrize("name", SCENARIOS)
    def test_python_follows_the_scenario(self, name):
        """The Python buffer gives the table's results, step by step."""
        options, steps = SCENARIOS[name]
        check(steps, run_python(options, steps))

    @pytest.mark.skipif(shutil.which("node") is None, reason="node (>= 20) runs sequence.js; install nodejs")
    def test_sequence_js_follows_the_same_scenarios(self):
        """web/assets/js/lib/sequence.js gives the same results on the same table, with
        the same window and timeout: the browser and Python clients keep one rule."""
        table = {name: [options, [step[:-1] for step in steps]] for name, (options, steps) in SCENARIOS.items()}
        done = subprocess.run(["node", "--input-type=module", "-e", NODE_DRIVER % json.dumps(SEQUENCE_JS.as_uri())],
                              input=json.dumps(table), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        got = json.loads(done.stdout)
        assert (got["WINDOW"], got["GAP_TIMEOUT_MS"]) == (WINDOW, GAP_TIMEOUT * 1000)
        for name, (_, steps) in SCENARIOS.items():
            check(steps, got["scenarios"][name])


# -- the speaker's audio order: one table, two players ---------------------------------
#
# listen --audio-out (AudioOrder) and the browser's player.js (AudioPlayer) keep one
# rule. Each step is ["push", speaker chunk number, at, expected] or ["wait", at,
# expected]; before it, what is due by `at` expires (the client's tick, the player's
# timer). Expected: the chunk numbers written/played, how many were skipped, how many
# arrivals were dropped (late or twice). Times in milliseconds.


def audio_result(written=(), skipped=0, dropped=0):
    return {"written": list(written), "skipped": skipped, "dropped": dropped}


QUIET = audio_result()

AUDIO_SCENARIOS = {
    "the first chunk waits the hold for earlier ones, then chunks are written at once": ({}, [
        ["push", 1, 0, QUIET],
        ["push", 2, 100, QUIET],
        ["wait", 299, QUIET],
        ["wait", 300, audio_result([1, 2])],
        ["push", 3, 400, audio_result([3])],
    ]),
    "chunk 2 delivered before chunk 1 within the hold: written 1, 2": ({}, [
        ["push", 2, 0, QUIET],
        ["push", 1, 200, QUIET],
        ["wait", 299, QUIET],
        ["wait", 300, audio_result([1, 2])],
    ]),
    "chunk 1 after the hold: 2 was written, 1 is dropped": ({}, [
        ["push", 2, 0, QUIET],
        ["wait", 300, audio_result([2])],
        ["push", 1, 350, audio_result(dropped=1)],
        ["push", 3, 400, audio_result([3])],
    ]),
    "a missing chunk holds the later ones, which it releases when it comes": ({}, [
        ["push", 1, 0, QUIET],
        ["push", 3, 400, audio_result([1])],
        ["push", 2, 500, audio_result([2, 3])],
    ]),
    "a missing chunk is skipped after the hold and dropped if it comes later": ({}, [
        ["push", 1, 0, QUIET],
        ["push", 3, 1000, audio_result([1])],
        ["wait", 1299, QUIET],
        ["wait", 1300, audio_result([3], skipped=1)],
        ["push", 2, 1400, audio_result(dropped=1)],
    ]),
    "a duplicate is dropped": ({}, [
        ["push", 1, 0, QUIET],
        ["push", 1, 350, audio_result([1], dropped=1)],
    ]),
    "more than the window (32) waiting behind a missing chunk give it up at once": ({}, [
        ["push", 1, 0, QUIET],
        ["wait", 300, audio_result([1])],
        *[["push", n, 400, QUIET] for n in range(3, 35)],
        ["push", 35, 400, audio_result(range(3, 36), skipped=1)],
    ]),
    "a longer hold (listen --audio-hold 5) waits that long for the first chunks": ({"holdMs": 5000}, [
        ["push", 2, 0, QUIET],
        ["push", 1, 4999, QUIET],
        ["wait", 5000, audio_result([1, 2])],
    ]),
}

_SKIPPED = re.compile(r"chunk\(s\) (\d+)\.\.(\d+) skipped")


def run_audio_python(options, steps):
    """The audio table's steps on AudioOrder, expiring what is due first, as the
    client's tick does."""
    audio = AudioOrder(hold=options.get("holdMs", AUDIO_HOLD * 1000))
    out = []
    for op, *args in steps:
        args = args[:-1]  # the expectation
        at = args[-1]
        actions = []
        due = audio.deadline()
        if due is not None and at >= due:
            actions += audio.expire(at)
        if op == "push":
            actions += audio.push(args[0], str(args[0]).encode(), at)
        gaps = [_SKIPPED.search(text) for text in notes(actions)]
        out.append(audio_result([int(data) for data in written(actions)],
                                skipped=sum(int(g[2]) - int(g[1]) + 1 for g in gaps if g),
                                dropped=sum("came too late or twice" in text for text in notes(actions))))
    return out


PLAYER_DRIVER = """
import { readFileSync } from "node:fs";
import { mock } from "node:test";
import { AudioPlayer } from %s;
const out = {};
for (const [name, [options, steps]] of Object.entries(JSON.parse(readFileSync(0, "utf8")))) {
  mock.timers.enable({ apis: ["setTimeout"] });
  let clock = 0;
  const player = new AudioPlayer({ ...options, now: () => clock });  // never started: no AudioContext
  out[name] = steps.map(([op, ...args]) => {
    const before = player.stats;
    const at = args[args.length - 1];
    const elapsed = at - clock;
    clock = at;  // what the timer's callback reads, as the client's tick(at)
    mock.timers.tick(elapsed);  // the player's own timer expires what is due
    if (op === "push") {
      player.push({ type: "audio", format: "pcm16/16000", speakerSequenceNumber: args[0],
        audioData: Buffer.from([1, 0]).toString("base64") });
    } else if (op !== "wait") throw new Error(`unknown step ${op}`);
    const after = player.stats;
    return { written: after.played.slice(before.played.length), skipped: after.skipped - before.skipped,
      dropped: after.late - before.late };
  });
  player.close();
  mock.timers.reset();
}
process.stdout.write(JSON.stringify(out));
"""


class TestSameAudioRuleAsTheBrowserPlayer:
    @pytest.mark.parametrize("name", AUDIO_SCENARIOS)
    def test_audio_order_follows_the_scenario(self, name):
        """AudioOrder (listen --audio-out) gives the table's results, step by step."""
        options, steps = AUDIO_SCENARIOS[name]
        check(steps, run_audio_python(options, steps))

    def test_the_table_uses_the_documented_hold_and_window(self):
        """The default scenarios are written for 300 ms and 32 chunks."""
        assert (AUDIO_HOLD, AUDIO_WINDOW) == (0.3, 32)

    @pytest.mark.skipif(shutil.which("node") is None, reason="node (>= 20) runs player.js; install nodejs")
    def test_player_js_follows_the_same_scenarios(self):
        """web/assets/js/lib/player.js, driven by its own timer (node's mock timers),
        plays the same chunks, skips and drops the same ones, with its default hold
        and window: the browser and `listen --audio-out` keep one rule."""
        table = {name: [options, [step[:-1] for step in steps]] for name, (options, steps) in AUDIO_SCENARIOS.items()}
        done = subprocess.run(["node", "--input-type=module", "-e", PLAYER_DRIVER % json.dumps(PLAYER_JS.as_uri())],
                              input=json.dumps(table), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        got = json.loads(done.stdout)
        for name, (_, steps) in AUDIO_SCENARIOS.items():
            check(steps, got[name])
