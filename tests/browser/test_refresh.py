"""A forced refresh in the middle of the stream loses and duplicates nothing.

A stack of its own with a connection refresh due every few seconds (the sweep
sends ``connectionRefreshRequired`` at 4.2 s of age, as it does at 100 minutes in
AWS): the speaker page and a listener page refresh several times while the fake
microphone streams and translations are published every 50 ms or so.
"""
import threading
import time

import pytest

from tests.browser.conftest import Page, PHONE, DESKTOP, start_broadcast
from tests.e2e.conftest import StackProcess
from tools.publish import event, invoke

pytestmark = pytest.mark.browser

TIMERS = {
    "GATEWAY_SCHEDULE_PERIOD_SECONDS": "0.5",
    "HEARTBEAT_INTERVAL_SECONDS": "1",
    "HEARTBEAT_TIMEOUT_SECONDS": "6",
    "CONNECTION_REFRESH_MINUTES": "0.07",  # 4.2 s
    "CONNECTION_WARNING_MINUTES": "0.5",
    "CONNECTION_MAX_DURATION_MINUTES": "0.6",
}


@pytest.fixture(scope="module")
def refreshing_stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("refresh-stack")
    process = StackProcess(base / "state", base / "stack.log", **TIMERS).start()
    yield process
    process.stop()


@pytest.fixture
def open_page_here(chromium, refreshing_stack):
    pages = []

    def open_(path, viewport=PHONE):
        page = Page(chromium, refreshing_stack.http, viewport)
        pages.append(page)
        page.page.goto(path)
        return page

    yield open_
    for page in pages:
        page.context.close()


def test_a_refresh_mid_stream_loses_and_duplicates_nothing(open_page_here, refreshing_stack):
    """Speaker and listener both refresh while audio and translations flow: the listener
    gets every sequence number once, in order, every translation line once, and the speaker's
    audio chunks with none missing or repeated; no reconnect, no gap."""
    speaker, session_id = start_broadcast(open_page_here, viewport=DESKTOP)
    listener = open_page_here(f"/listen?session={session_id}&lang=es")
    listener.page.locator("#live").wait_for(state="visible")
    assert listener.page.evaluate("BROADCAST_CONFIG.heartbeatIntervalSeconds") == 1

    sent, failures, stop = [], [], threading.Event()

    def publisher():
        n = 0
        while not stop.is_set() and n < 500:
            n += 1
            result = invoke(event(session_id, "es", f"line {n}", "translation"),
                            endpoint=refreshing_stack.http, function="publish", region="us-east-1")
            (failures if "error" in result else sent).append(n)
            time.sleep(0.05)

    thread = threading.Thread(target=publisher, daemon=True)
    thread.start()
    try:
        listener.wait_for("broadcastListener", lambda s: s["client"]["refreshes"] >= 2, timeout=30,
                          what="two listener refreshes")
        speaker.wait_for("broadcastSpeaker", lambda s: s["client"]["refreshes"] >= 1, timeout=15,
                         what="a speaker refresh")
        time.sleep(1)  # and a little more after the last handover
    finally:
        stop.set()
        thread.join(timeout=40)
    assert failures == [] and len(sent) >= 10, (failures, len(sent))

    lines = [f"line {n}" for n in sent]
    listener.page.get_by_text(lines[-1], exact=True).wait_for(timeout=5000)
    listener.page.wait_for_timeout(1000)  # anything late or doubled would show by now
    stats = listener.stats("broadcastListener")
    assert listener.page.locator("#translations li").all_inner_texts() == lines

    received = stats["received"]
    assert received == list(range(received[0], received[0] + len(received))), \
        f"not every number once in order: {received}"
    played = stats["audio"]["played"]
    assert played == list(range(played[0], played[0] + len(played))), f"audio lost or repeated: {played}"
    assert stats["audio"]["late"] == 0
    client = stats["client"]
    assert (client["reconnects"], client["late"]) == (0, 0), client
    # No gap inside what was received (contiguous, nothing late): a refresh lost nothing.
    # A gap the client reports can only lie before the first number it received: a
    # message published while its join was being admitted, which the join may miss
    # (docs/protocol.md, "Joining while messages flow"), not something a refresh lost.
    assert client["duplicates"] > 0, "the overlap delivered nothing twice: no handover was exercised"
    speaker_stats = speaker.stats("broadcastSpeaker")
    assert speaker_stats["client"]["reconnects"] == 0
    assert speaker_stats["state"] == "live"
    assert speaker.page_errors() == [] and listener.page_errors() == []
