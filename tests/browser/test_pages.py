"""Issue 14, "Tests in a real browser": the listener and speaker pages in headless
Chromium against the local stack, with Chromium's fake microphone (a tone).

What a person would notice is read from the page (text, state) or from the
pages' small read-only stats objects (``window.broadcastListener.stats``,
``window.broadcastSpeaker.stats``): audio chunks played and the non-silent
samples an AnalyserNode saw, sequence numbers delivered, listener counts.
"""
import subprocess
import sys
import time

import pytest

from tests.browser.conftest import DESKTOP, PHONE, ROOT, screenshot, start_broadcast
from tools.publish import event, invoke

pytestmark = pytest.mark.browser

LISTENER = "broadcastListener"
SPEAKER = "broadcastSpeaker"


def join(open_page, session_id, language, viewport=PHONE):
    """A listener page opened by the share link, language given, joined."""
    listener = open_page(f"/listen?session={session_id}&lang={language}", viewport)
    listener.page.locator("#live").wait_for(state="visible")
    return listener


def publish(stack, session_id, language, text):
    result = invoke(event(session_id, language, text, "translation"), endpoint=stack.http,
                    function="publish", region="us-east-1")
    assert "error" not in result, result
    return result


def count_of(page, language):
    """The count the speaker page shows for ``language`` (0 when not listed)."""
    item = page.page.locator(f"#listeners li[data-language={language}]")
    if item.count() == 0:
        return 0
    return int(item.inner_text().rsplit(":", 1)[1])


WATCH_CHANGES = """ids => {
    window.__changes = [];
    for (const id of ids) new MutationObserver(() => window.__changes.push(
        [Date.now(), id, document.getElementById(id).textContent.trim()]))
      .observe(document.getElementById(id), {childList: true, characterData: true, subtree: true});
}"""


def shown_at(page, element_id, expected, timeout=5.0):
    """Epoch ms at which the page first showed ``expected`` in ``element_id`` (watched by
    WATCH_CHANGES), waiting up to ``timeout`` s for it."""
    page.page.wait_for_function(
        "([id, text]) => window.__changes.some(c => c[1] === id && c[2] === text)",
        arg=[element_id, expected], timeout=timeout * 1000)
    return page.page.evaluate(
        "([id, text]) => window.__changes.find(c => c[1] === id && c[2] === text)[0]", [element_id, expected])


def played_in_order(stats):
    """Speaker chunk numbers the listener played: strictly increasing, none twice."""
    played = stats["audio"]["played"]
    return played == sorted(set(played))


class TestBroadcast:
    def test_listeners_in_two_languages_hear_the_speakers_microphone_in_order(self, open_page):
        """The speaker page creates a session from the fake microphone; two listener pages in
        different languages join by its share link and play its audio chunks in order, and
        non-silent samples reach their audio graph; the speaker page counts them after a re-sync."""
        speaker, session_id = start_broadcast(open_page)
        link = speaker.page.locator("#share-link").input_value()
        assert link == f"{speaker.page.url.rsplit('/', 1)[0]}/listen?session={session_id}"
        assert speaker.page.locator("#qr svg").count() == 1
        listeners = []
        for language in ("es", "fr"):
            page = open_page(link)
            page.page.get_by_label("Language", exact=True).select_option(language)
            page.page.get_by_role("button", name="Join").click()
            page.page.locator("#live").wait_for(state="visible")
            listeners.append(page)
        for page in listeners:
            stats = page.wait_for(LISTENER, lambda s: s["audio"]["chunksPlayed"] >= 10
                                  and s["audio"]["nonSilentSamples"] > 1000, timeout=20,
                                  what="10 chunks played and sound in the audio graph")
            assert played_in_order(stats), stats["audio"]["played"]
            played = stats["audio"]["played"]
            assert played[-1] - played[0] + 1 == len(played), f"a chunk was skipped: {played}"
            assert stats["audio"]["contextState"] == "running"
        speaker.page.get_by_role("button", name="Update counts").click()
        speaker.wait_for(SPEAKER, lambda s: s["listeners"] == {"es": 1, "fr": 1}, timeout=5,
                         what="the counts after a re-sync")
        assert speaker.page.locator("#listener-total").inner_text() == "2"
        assert [p.page_errors() for p in (speaker, *listeners)] == [[], [], []]

    def test_the_speaker_sees_the_count_by_language_change_within_2_s_of_each_join_and_leave(
            self, open_page):
        """Pushed, not polled: each join and leave shows on the speaker page within 2 s."""
        speaker, session_id = start_broadcast(open_page)
        es = join(open_page, session_id, "es")
        speaker.wait_for(SPEAKER, lambda s: s["listeners"] == {"es": 1}, timeout=2, what="es joined")
        fr = join(open_page, session_id, "fr")
        speaker.wait_for(SPEAKER, lambda s: s["listeners"] == {"es": 1, "fr": 1}, timeout=2, what="fr joined")
        es.page.get_by_role("button", name="Leave").click()
        speaker.wait_for(SPEAKER, lambda s: s["listeners"] == {"fr": 1}, timeout=2, what="es left")
        fr.context.close()  # the phone goes away without a word
        speaker.wait_for(SPEAKER, lambda s: s["listeners"] == {}, timeout=2, what="fr gone")

    def test_controls_show_on_listener_pages_as_pushed(self, open_page):
        """Pause, mute and volume on the speaker page show on every listener page, pushed
        (no reload, no poll). The issue's "within 1 s" is measured by ``make bench``
        ("pause/resume to all listeners" over the local stack); here
        the bound is loose enough for a CI machine running the suite in parallel, and
        tight enough that a page waiting for a re-sync or a reconnect would miss it."""
        speaker, session_id = start_broadcast(open_page)
        listeners = [join(open_page, session_id, lang) for lang in ("es", "de")]
        s = speaker.page
        for page in listeners:
            page.page.evaluate(WATCH_CHANGES, ["broadcast-state", "broadcast-volume"])
        steps = [
            (lambda: s.get_by_role("button", name="Pause").click(), "broadcast-state", "Paused"),
            (lambda: s.get_by_role("button", name="Resume").click(), "broadcast-state", "Live"),
            (lambda: s.get_by_role("button", name="Mute").click(), "broadcast-state", "Muted"),
            (lambda: s.get_by_role("button", name="Unmute").click(), "broadcast-state", "Live"),
            (lambda: s.get_by_label("Broadcast volume").fill("40"), "broadcast-volume", "40%"),
        ]
        for act, element_id, expected in steps:
            for page in listeners:
                page.page.evaluate("window.__changes = []")
            # Timed in the pages (one machine, one clock): from the speaker's action to the
            # listener page showing it, without the test driver's own delays.
            clicked = s.evaluate("Date.now()")
            act()
            for page in listeners:
                latency = shown_at(page, element_id, expected) - clicked
                assert latency < 3000, f"{expected!r} took {latency} ms to show on {page.page.url}"
        assert s.locator("#broadcast-state").inner_text() == "Live"
        assert s.get_by_role("button", name="Mute").get_attribute("aria-pressed") == "false"

    def test_a_translation_appears_on_its_languages_pages_only(self, open_page, stack):
        """A translation published for Spanish shows as text on the Spanish page, never on the
        French one; `make publish`'s script sends it as another service would."""
        _, session_id = start_broadcast(open_page)
        es, fr = join(open_page, session_id, "es"), join(open_page, session_id, "fr")
        done = subprocess.run(
            [sys.executable, "tools/publish.py", "--endpoint", stack.http, session_id, "es",
             "Bienaventurados los mansos"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        es.page.get_by_text("Bienaventurados los mansos").wait_for(timeout=2000)
        publish(stack, session_id, "fr", "Heureux les doux")
        fr.page.get_by_text("Heureux les doux").wait_for(timeout=2000)
        assert es.page.locator("#translations li").all_inner_texts() == ["Bienaventurados los mansos"]
        assert fr.page.locator("#translations li").all_inner_texts() == ["Heureux les doux"]
        assert es.page.locator("#translations li").get_attribute("lang") == "es"

    def test_ending_the_session_shows_the_ended_state_on_every_listener_page(self, open_page):
        """End broadcast: every listener page says it ended and why; the speaker's too."""
        speaker, session_id = start_broadcast(open_page)
        listeners = [join(open_page, session_id, lang) for lang in ("es", "fr")]
        speaker.page.get_by_role("button", name="End broadcast").click()
        for page in listeners:
            page.page.locator("#ended").wait_for(state="visible", timeout=5000)
            assert page.page.locator("#ended-reason").inner_text() == "The speaker ended the broadcast."
            assert page.stats(LISTENER)["state"] == "ended"
            assert page.page.locator("#live").is_hidden()
        speaker.page.locator("#ended").wait_for(state="visible")
        assert speaker.stats(SPEAKER)["state"] == "ended"


class TestRefusals:
    def test_an_unknown_session_shows_its_message(self, open_page):
        """A well-formed code of no live session: SESSION_NOT_FOUND (in-band: the server
        says it in a first message), in words, and the form is offered again."""
        page = open_page("/listen?session=faithful-shepherd-427&lang=es")
        page.page.get_by_role("alert").filter(has_text="There is no live session with that code").wait_for()
        assert page.page.get_by_label("Session code").is_visible()
        assert page.stats(LISTENER)["state"] == "failed"

    def test_a_malformed_session_code_is_explained_without_connecting(self, open_page):
        page = open_page("/listen?session=not%20a%20code&lang=es")
        page.page.get_by_role("alert").filter(has_text="That is not a session code").wait_for()
        assert page.stats(LISTENER)["client"] is None  # no connection was attempted

    def test_a_language_the_broadcast_does_not_offer_shows_its_message(self, open_page, stack):
        """lang=xx in the link: refused in words before connecting; the picker offers the
        supported languages instead. A change to an unsupported language is refused by the
        server with UNSUPPORTED_LANGUAGE, in words, and changes nothing."""
        _, session_id = start_broadcast(open_page)
        page = open_page(f"/listen?session={session_id}&lang=xx")
        page.page.get_by_role("alert").filter(has_text="This broadcast is not offered in that language").wait_for()
        assert page.stats(LISTENER)["client"] is None  # refused before connecting
        page.page.get_by_label("Language", exact=True).select_option("es")
        page.page.get_by_role("button", name="Join").click()
        page.page.locator("#live").wait_for(state="visible")
        # A language the page does not list (a stale page, a hand-made request): the server's word.
        page.page.evaluate("""() => { const s = document.getElementById('new-language');
            s.append(new Option('Klingon', 'xx', true, true)); }""")
        page.page.get_by_role("button", name="Switch").click()
        page.page.get_by_text("This broadcast is not offered in that language").wait_for()
        assert page.stats(LISTENER)["language"] == "es"

    def test_a_full_session_shows_its_message(self, open_page):
        """The stack takes 2 listeners per session: the third is refused with
        SESSION_FULL (in-band: the server says it in a first message) and told so."""
        _, session_id = start_broadcast(open_page)
        join(open_page, session_id, "es")
        join(open_page, session_id, "fr")
        third = open_page(f"/listen?session={session_id}&lang=de")
        third.page.get_by_role("alert").filter(has_text="This session is full").wait_for()
        assert third.stats(LISTENER)["state"] == "failed"


    def test_a_bad_token_shows_its_message(self, open_page, stack):
        """A token that is no JWT, one that expired, and a well-formed one the server refuses
        (another issuer's signature): each is explained, and no session starts."""
        page = open_page("/speak", DESKTOP)
        p = page.page
        p.get_by_text("Paste a sign-in token").click()
        p.get_by_label("ID token").fill("not-a-token")
        p.get_by_role("button", name="Use this token").click()
        p.get_by_role("alert").filter(has_text="Your sign-in was not accepted").wait_for()
        p.get_by_label("ID token").fill(_expired_token(stack))
        p.get_by_role("button", name="Use this token").click()
        p.get_by_role("alert").filter(has_text="This token has expired").wait_for()
        p.get_by_label("ID token").fill(_foreign_token())
        p.get_by_role("button", name="Use this token").click()
        p.get_by_role("button", name="Start broadcast").click()
        p.get_by_role("alert").filter(has_text="Your sign-in was not accepted").wait_for(timeout=10000)
        assert page.stats(SPEAKER)["sessionId"] is None
        assert p.locator("#live").is_hidden()


def _expired_token(stack):
    from local_stack.issuer import LocalIssuer

    return LocalIssuer(stack.state_dir).token("alice", now=time.time() - 7200, ttl=3600)


def _foreign_token():
    """Right shape and claims, signed by a key the stack's issuer never had."""
    import tempfile

    from local_stack.issuer import LocalIssuer

    with tempfile.TemporaryDirectory() as other:
        return LocalIssuer(other).token("mallory")


class TestPages:
    @pytest.mark.parametrize("viewport_name,viewport", [("phone", PHONE), ("desktop", DESKTOP)])
    def test_screenshots_and_a_usable_layout(self, open_page, viewport_name, viewport):
        """Both pages live, at phone and desktop sizes: screenshots under build/screenshots, no
        horizontal scrolling at 360 px, no console errors."""
        speaker, session_id = start_broadcast(open_page, viewport=viewport)
        listener = join(open_page, session_id, "es", viewport)
        listener.wait_for(LISTENER, lambda s: s["audio"]["chunksPlayed"] > 2, what="audio")
        speaker.page.get_by_role("button", name="Update counts").click()
        speaker.wait_for(SPEAKER, lambda s: s["listenerTotal"] == 1, what="the listener counted")
        paths = [screenshot(speaker, f"speak-{viewport_name}"), screenshot(listener, f"listen-{viewport_name}")]
        for page in (speaker, listener):
            width = page.page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"{page.page.url} scrolls sideways: {width} px"
            assert page.page_errors() == []
        assert all(path.stat().st_size > 10_000 for path in paths)

    def test_the_listener_page_works_from_the_keyboard_alone(self, open_page):
        """Tab to the code, type it, Tab to the language, choose, Enter: joined; every control
        on the way has a label."""
        _, session_id = start_broadcast(open_page)
        page = open_page("/listen")
        p = page.page
        assert p.evaluate("document.activeElement.id") == "session"  # focused for typing
        p.keyboard.type(session_id)
        p.keyboard.press("Tab")
        assert p.evaluate("document.activeElement.id") == "language"
        p.keyboard.press("ArrowDown")  # the first language after the placeholder
        p.keyboard.press("Tab")
        assert p.evaluate("document.activeElement.id") == "join-button"
        p.keyboard.press("Enter")
        p.locator("#live").wait_for(state="visible")
        unlabelled = p.evaluate("""() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter(el => !el.closest('[hidden]'))
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
            .map(el => el.id)""")
        assert unlabelled == []
