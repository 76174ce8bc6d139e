"""End to end, issue 12 defect 3: one client's hostile frames end nothing but its own
connection, and only when the RFC says so. Over the real app and stack.

Before the fix, JSON nested ~990 deep and invalid UTF-8 each aborted the sender's
TCP connection (1006); from the speaker, that ended the session for everyone.
"""
import json
from contextlib import ExitStack

import pytest

from test_e2e_long_sessions import wait_until
from test_e2e_sessions import create, expect_closed, join, recv_json

pytestmark = [pytest.mark.e2e, pytest.mark.attack]
# The shared stack limits sessions per user per hour: a user of our own.


def nested(depth):
    return '{"action": "setVolume", "volumeLevel": %s0.5%s}' % ("[" * depth, "]" * depth)


def status(ws):
    ws.send(json.dumps({"action": "getSessionStatus"}))
    while True:
        message = recv_json(ws)
        if message["type"] == "sessionStatus":
            return message


@pytest.mark.parametrize("depth", [990, 5000])
def test_deep_json_from_the_speaker_is_refused_and_the_session_goes_on(stack, depth):
    """The speaker's deeply nested message gets INVALID_MESSAGE; its socket, the
    listener's and the session stay."""
    with ExitStack() as sockets:
        speaker, created = create(stack, sockets, user="hostile-frames")
        listener, _ = join(stack, sockets, created["sessionId"], "es")
        speaker.send(nested(depth))
        assert recv_json(speaker)["code"] == "INVALID_MESSAGE"
        assert status(speaker)["status"] == "active"
        assert status(listener)["listenerCount"] == 1


def test_invalid_utf8_from_a_listener_closes_it_with_1007_only(stack):
    """A listener's text frame that is not UTF-8 closes that listener with 1007; the
    session goes on and the listener is no longer counted."""
    with ExitStack() as sockets:
        speaker, created = create(stack, sockets, user="hostile-frames")
        listener, _ = join(stack, sockets, created["sessionId"], "es")
        listener.send(b'{"action": "heartbeat\xff"}', text=True)
        assert expect_closed(listener) == 1007
        assert status(speaker)["status"] == "active"
        wait_until(lambda: status(speaker)["listenerCount"] == 0, 10, "the listener to be uncounted")
