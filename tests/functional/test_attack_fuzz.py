"""Property-based fuzzing of the handshake query and of every message (issue 12).

Hypothesis drives the real handlers through the in-process harness (moto's mock:
fast) with hostile input: any keys and values, unicode, control characters, huge
values, repeated keys (API Gateway keeps the last one), near-valid values (a
trailing newline, ``;token=<JWT>`` glued on), and, for ``$default``, every action
with arbitrary fields and arbitrary JSON or text. Whatever comes in:

- no ``INTERNAL_ERROR`` and no status outside the documented ones (5xx only as the
  documented 503s), and no handler that raises;
- no reply over 128 KB (API Gateway would drop it);
- nothing echoed that could carry a token: no JWT, and no client value longer
  than the 24-character prefix :mod:`chalicelib.wire.echo` allows;
- nothing admitted that must not be (a speaker intent without the real token, a
  join to a session that does not exist, a listener acting as the speaker);
- counts consistent after every example: each active session's ``listenerCount``
  equals its listener rows that hold a place.

Examples per test: ``ATTACK_FUZZ_EXAMPLES`` (default 300); no deadline (a loaded
2-core machine must not make it flaky); derandomized under CI (``CI`` set) so a CI
run is reproducible, random elsewhere so developers' runs keep exploring.
Figures go to build/attack-figures.json ("fuzzed handshakes", "fuzzed messages").
"""

import base64
import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import errors
from tests.functional.conftest import LANG_QUERY
from tests.support.attack_figures import tally

pytestmark = pytest.mark.attack

FUZZ = settings(
    max_examples=int(os.environ.get("ATTACK_FUZZ_EXAMPLES", "300")),
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
    print_blob=True,
)

SUPPORTED = ["en", "es", "fr", "de"]
MAX_REPLY_BYTES = 128 * 1024
MAX_ECHO = 24  # chalicelib.wire.echo.MAX_SHOWN
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
DOCUMENTED_STATUSES = {200, 400, 401, 403, 404, 429, 503}


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


# Every code the app defines, INTERNAL_ERROR excepted: a client may get any other.
CLIENT_CODES = {sub.code for sub in _subclasses(errors.BroadcastError)} - {"INTERNAL_ERROR"}
SPEAKER_ONLY = {"endSession", "pauseBroadcast", "resumeBroadcast", "muteBroadcast",
                "unmuteBroadcast", "setVolume", "sendAudio"}
MESSAGE_ACTIONS = ["heartbeat", "joinSession", "getSessionStatus", "changeLanguage", *sorted(SPEAKER_ONLY)]


@pytest.fixture
def config_env(config_env):
    # One address and one user send everything: the limits would soon refuse all
    # of it with 429 and hide the paths behind them (they have their own tests).
    config_env.update(RATE_LIMIT_CONNECTS_PER_MINUTE="0", RATE_LIMIT_SESSIONS_PER_HOUR="0",
                      MAX_LISTENERS_PER_SESSION="5")
    return config_env


class Room:
    """A live session with a speaker and a listener, recreated whenever an example
    ended it or closed one of them."""

    def __init__(self, gateway, token):
        self.gateway = gateway
        self.token = token
        self.sessions = set()  # every session id seen (the oracle's "exists")
        self.active = set()  # those that may still be active
        self.speaker = self.listener = self.session_id = None

    @property
    def store(self):
        return self.gateway.runtime.store

    def ensure(self):
        gateway, store = self.gateway, self.store
        session = self.session_id and store.get_session(self.session_id)
        if not session or session.status != "active" or self.speaker not in gateway.open \
                or session.speaker_connection_id != self.speaker:
            status, body, self.speaker = gateway.connect({**LANG_QUERY, "token": self.token})
            assert status == 200, body
            self.session_id = gateway.last(self.speaker)["sessionId"]
            self.sessions.add(self.session_id)
            self.active.add(self.session_id)
            self.listener = None
        if self.listener not in gateway.open:
            status, body, self.listener = gateway.connect(
                {"action": "joinSession", "sessionId": self.session_id, "targetLanguage": "es"})
            assert status == 200, body
        gateway.inbox.clear()
        return self

    def known_ids(self):
        return {*self.sessions, *self.gateway.open}

    def assert_counts_consistent(self):
        """Every active session's count equals its listener rows holding a place."""
        for session_id in sorted(self.active):
            session = self.store.get_session(session_id)
            if session is None or session.status != "active":
                self.active.discard(session_id)  # an ended session never comes back
                continue
            holding = [c for c in self.store.listeners(session_id) if not c.replaced_by]
            assert session.listener_count == len(holding), (session_id, session.listener_count, holding)


@pytest.fixture
def room(gateway, issuer):
    return Room(gateway, issuer.token("alice")).ensure()


def strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def assert_nothing_leaks(reply, sent_values, token, known_ids=()):
    """A reply (a refusal body or a posted message) is small and has no JWT; a
    refusal or error repeats no client value longer than the allowed prefix (ids
    that exist, which replies name by design, aside)."""
    text = json.dumps(reply)
    assert len(text.encode()) <= MAX_REPLY_BYTES, len(text)
    shown = list(strings_in(reply))
    for value in shown:
        assert not JWT.search(value), value
        assert token[:24] not in value
    if reply.get("type", "error") != "error":
        return
    for sent in sent_values:
        if len(sent) > MAX_ECHO and sent not in known_ids:
            assert not any(sent in value for value in shown), sent[:80]


# -- strategies ------------------------------------------------------------------

CONTROL = st.text(alphabet=st.characters(max_codepoint=31), min_size=1, max_size=8)
UNICODE = st.text(alphabet=st.characters(min_codepoint=128, exclude_categories=["Cs"]), min_size=1, max_size=12)
HUGE = st.builds(lambda unit, n: (unit or "x") * n, st.text(max_size=3), st.integers(1_000, 40_000))
SUFFIXES = st.sampled_from(["\n", "\x00", " ", "%0A", "\t", "\u2028", ";", "&x=1"])


def connect_values(room):
    token = room.token
    valid = st.sampled_from([
        "createSession", "joinSession", "refreshConnection", "speaker", "listener",
        *SUPPORTED, "xx", "EN", "standard", "premium", "", room.session_id, room.listener,
        room.speaker, "faithful-shepherd-427"])
    return st.one_of(
        valid, valid, st.text(max_size=30), CONTROL, UNICODE, HUGE,
        st.just(token), st.builds(lambda v, s: v + s, valid, SUFFIXES),
        st.builds(lambda v: f"{v};token={token}", valid), st.just(token[:-5]),
    )


def connect_queries(room):
    """Half free-form pairs, half a valid query of each intent with a few keys
    replaced, dropped or added (so fuzzing reaches past validation too)."""
    token, values = room.token, connect_values(room)
    templates = st.sampled_from([
        [("action", "joinSession"), ("sessionId", room.session_id), ("targetLanguage", "es")],
        [("sessionId", room.session_id), ("targetLanguage", "fr")],
        [("action", "createSession"), ("sourceLanguage", "en"), ("token", token)],
        [("action", "createSession"), ("sourceLanguage", "de"), ("qualityTier", "premium"), ("token", token)],
        [("action", "refreshConnection"), ("sessionId", room.session_id), ("role", "listener"),
         ("targetLanguage", "es"), ("previousConnectionId", room.listener)],
        [("action", "refreshConnection"), ("sessionId", room.session_id), ("role", "listener"),
         ("targetLanguage", "de")],
        [("action", "refreshConnection"), ("sessionId", room.session_id), ("role", "speaker"),
         ("token", token)],
    ])
    changes = st.lists(st.tuples(st.one_of(KEYS, st.text(max_size=12)), values), max_size=3)
    mutated = st.builds(lambda pairs, drop, extra: [p for i, p in enumerate(pairs) if i not in drop] + extra,
                        templates, st.sets(st.integers(0, 4), max_size=2), changes)
    free = st.lists(st.tuples(st.one_of(KEYS, KEYS, st.text(max_size=12)), values), max_size=8)
    return st.one_of(mutated, free)


KEYS = st.sampled_from(["action", "sessionId", "targetLanguage", "sourceLanguage", "qualityTier",
                        "role", "token", "previousConnectionId"])
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
VOLUMES = st.floats(0, 1)
JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10 ** 30, max_value=10 ** 400),
    FLOATS, st.text(max_size=30), CONTROL, UNICODE,
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def field_values(room):
    return {
        "volumeLevel": st.one_of(VOLUMES, JSON_LEAVES),
        "targetLanguage": st.one_of(st.sampled_from(SUPPORTED + ["xx", "es\n"]), JSON_LEAVES),
        "sessionId": st.one_of(st.just(room.session_id), st.just("faithful-shepherd-427"), JSON_LEAVES),
        "audioData": st.one_of(st.binary(min_size=1, max_size=64).map(lambda b: base64.b64encode(b).decode()),
                               st.just("A" * 129_028), JSON_LEAVES),
        "sequenceNumber": st.one_of(st.integers(-5, 10 ** 20), JSON_LEAVES),
        "format": JSON_LEAVES,
        "token": st.just(room.token),
        "extra": JSON_VALUES,
    }


def valid_messages(room):
    """Each action with the fields it needs, well formed."""
    return st.one_of(
        st.sampled_from([{"action": a} for a in ("heartbeat", "getSessionStatus", "endSession",
                                                 "pauseBroadcast", "resumeBroadcast", "muteBroadcast",
                                                 "unmuteBroadcast")]),
        st.builds(lambda v: {"action": "setVolume", "volumeLevel": v}, VOLUMES),
        st.builds(lambda lang: {"action": "changeLanguage", "targetLanguage": lang}, st.sampled_from(SUPPORTED)),
        st.builds(lambda lang: {"action": "joinSession", "sessionId": room.session_id, "targetLanguage": lang},
                  st.sampled_from(SUPPORTED)),
        st.builds(lambda b, n: {"action": "sendAudio", "audioData": base64.b64encode(b).decode(),
                                "sequenceNumber": n}, st.binary(min_size=1, max_size=256), st.integers(0, 10 ** 6)),
    )


def message_bodies(room):
    actions = st.one_of(st.sampled_from(MESSAGE_ACTIONS), st.text(max_size=20), HUGE, JSON_LEAVES)
    known = st.fixed_dictionaries({"action": actions}, optional=field_values(room)).map(json.dumps)
    valid = valid_messages(room)
    near_valid = st.builds(lambda m, extra: json.dumps({**m, **extra}), valid,
                           st.dictionaries(st.sampled_from(sorted(field_values(room))), JSON_LEAVES, max_size=2))
    deep = st.builds(lambda n, kind: (kind[0] * n) + "1" + (kind[1] * n),
                     st.integers(10, 5_000), st.sampled_from([("[", "]"), ('{"a":', "}")]))
    return st.one_of(valid.map(json.dumps), near_valid, known, known, JSON_VALUES.map(json.dumps),
                     st.text(max_size=200), deep,
                     st.sampled_from(["", "null", "[]", "{}", '"x"', "NaN", '{"action": NaN}']))


# -- the handshake -----------------------------------------------------------------


def connect_oracle(room, query):
    """Why this query must not be admitted, or None if it may be."""
    action = query.get("action") or None  # "action=" (empty) is as good as omitted
    if action is None and query.get("sessionId") and query.get("targetLanguage"):
        action = "joinSession"
    speaker = action == "createSession" or (action == "refreshConnection" and query.get("role") == "speaker")
    if speaker and query.get("token") != room.token:
        return "a speaker intent without the real token"
    if action == "createSession" and query.get("sourceLanguage") not in SUPPORTED:
        return "a session in an unsupported language"
    if action in ("joinSession", "refreshConnection") and query.get("sessionId") not in room.sessions:
        return "a connection to a session that does not exist"
    if not speaker and action in ("joinSession", "refreshConnection") \
            and query.get("targetLanguage") not in SUPPORTED:
        return "a listener in an unsupported language"
    if action not in ("createSession", "joinSession", "refreshConnection"):
        return "no valid intent"
    return None


@FUZZ
@given(data=st.data())
def test_fuzzed_handshakes(room, data):
    """Any query string: a documented status and code, a small body that repeats
    nothing dangerous, nothing admitted that must not be, counts consistent."""
    room.ensure()
    gateway, figures = room.gateway, tally("fuzzed handshakes")
    pairs = data.draw(connect_queries(room), label="query pairs")
    query = dict(pairs)  # API Gateway's queryStringParameters: the last value wins
    try:
        status, body, cid = gateway.connect(query)
    except Exception:
        figures.add("server_errors")
        raise
    if status not in DOCUMENTED_STATUSES or (body or {}).get("code") == "INTERNAL_ERROR":
        figures.add("server_errors")
        pytest.fail(f"status {status} {body}")
    if status == 200:
        wrong = connect_oracle(room, query)
        figures.add("wrongly_accepted" if wrong else "accepted")
        assert wrong is None, wrong
        if query.get("action") == "createSession":
            room.sessions.add(gateway.last(cid)["sessionId"])
        for message in gateway.inbox[cid]:
            assert_nothing_leaks(message, [v for _, v in pairs], room.token, room.known_ids())
        gateway.close(cid)
    else:
        figures.add("refused")
        assert body["code"] in CLIENT_CODES, body
        assert_nothing_leaks(body, [v for _, v in pairs], room.token, room.known_ids())
    room.assert_counts_consistent()


# -- messages ----------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_fuzzed_messages(room, data):
    """Any body from the speaker or a listener: never INTERNAL_ERROR or a raised
    handler, no reply too large or echoing a token or a long value, no speaker
    action obeyed from a listener, counts consistent."""
    room.ensure()
    gateway, figures = room.gateway, tally("fuzzed messages")
    sender_role = data.draw(st.sampled_from(["speaker", "listener"]), label="sender")
    sender = room.speaker if sender_role == "speaker" else room.listener
    body = data.draw(message_bodies(room), label="body")
    try:
        gateway.send(sender, body, raw=True)
    except Exception:
        figures.add("server_errors")
        raise
    try:
        sent = list(strings_in(json.loads(body)))
    except (ValueError, RecursionError):
        sent = [body]
    replies = gateway.received(sender)
    posted = [m for messages in gateway.inbox.values() for m in messages]
    if any(m.get("code") == "INTERNAL_ERROR" for m in posted):
        figures.add("server_errors")
        pytest.fail(f"INTERNAL_ERROR for {body[:200]!r}")
    for message in posted:
        assert_nothing_leaks(message, sent, room.token, room.known_ids())
    errors_sent = [m for m in replies if m["type"] == "error"]
    for error in errors_sent:
        assert error["code"] in CLIENT_CODES, error
    action = _action_of(body)
    if sender_role == "listener" and action in SPEAKER_ONLY and not errors_sent:
        figures.add("wrongly_accepted")
        pytest.fail(f"a listener's {action} was obeyed: {replies}")
    figures.add("refused" if errors_sent else "accepted")
    room.assert_counts_consistent()


def _action_of(body):
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return parsed.get("action") if isinstance(parsed, dict) else None


def test_a_volume_below_dynamodbs_range_is_refused(room):
    """Found by the fuzzer: a tiny but valid JSON number as volumeLevel must not be
    INTERNAL_ERROR (it is a volume of 0 in effect, or INVALID_PARAMETER)."""
    room.gateway.send(room.speaker, '{"action": "setVolume", "volumeLevel": 8.919573935658029e-191}', raw=True)
    reply = room.gateway.last(room.speaker)
    assert reply["type"] == "controlAck" and reply["broadcastState"]["volume"] == 0
