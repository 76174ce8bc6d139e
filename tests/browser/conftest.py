"""The pages in a real browser: Playwright driving Debian's Chromium against the
real local stack (``python -m local_stack run`` on free ports of 127.0.0.1).

Chromium is launched with ``executable_path`` (Playwright's own browser download
cannot be reached here), a fake microphone (a tone), autoplay allowed, and every
network feature that could reach beyond 127.0.0.1 turned off. Where Chromium or
Playwright is missing the tests skip with a reason saying how to get them, unless
``BROWSER_TESTS=require`` (CI), where they fail instead.
"""
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import StackProcess

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}

CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # Nothing leaves the machine: no DNS but loopback, no proxy lookups, no
    # background services (updates, safe browsing, metrics, translation).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-pings",
    "--metrics-recording-only",
    "--no-first-run",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,"
    "AutofillServerCommunication,CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions",
]

HOW_TO_ENABLE = ("browser tests need Chromium and Playwright: `make browser-deps` installs them as root on "
                 "Debian (apt-get install -y chromium; playwright from requirements-dev.txt), or set "
                 "CHROMIUM=/path/to/chromium")


def chromium_path():
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def _missing():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if not chromium_path():
        return "chromium is not installed"
    return None


def pytest_collection_modifyitems(config, items):
    missing = _missing()
    if missing is None:
        return
    required = os.environ.get("BROWSER_TESTS") == "require"
    for item in items:
        if "browser" in item.keywords:
            if required:
                item.add_marker(pytest.mark.usefixtures("_browser_required"))
            else:
                item.add_marker(pytest.mark.skip(reason=f"{missing}; {HOW_TO_ENABLE}"))


@pytest.fixture
def _browser_required():
    pytest.fail(f"BROWSER_TESTS=require but {_missing()}; {HOW_TO_ENABLE}")


@pytest.fixture(scope="module")
def chromium():
    """One Chromium per test module. Not per session: Playwright's sync API runs an
    asyncio loop in the main thread while it is started, and tests of other modules
    that call asyncio.run() must not find one running."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """One stack for the browser tests: 2 listeners per session (for SESSION_FULL)."""
    base = tmp_path_factory.mktemp("browser-stack")
    process = StackProcess(base / "state", base / "stack.log", MAX_LISTENERS_PER_SESSION="2").start()
    yield process
    process.stop()


class Page:
    """A page in its own browser context, with its console errors collected."""

    def __init__(self, browser, base_url, viewport):
        self.context = browser.new_context(viewport=viewport, base_url=base_url)
        self.context.set_default_timeout(10_000)
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def stats(self, name):
        return self.page.evaluate(f"window.{name}.stats")

    def wait_for(self, name, predicate, timeout=10.0, what="a condition"):
        """Poll ``window.<name>.stats`` until ``predicate(stats)``; returns the stats."""
        deadline = time.monotonic() + timeout
        stats = None
        while time.monotonic() < deadline:
            stats = self.stats(name)
            if predicate(stats):
                return stats
            self.page.wait_for_timeout(50)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; last stats: {stats}")

    def page_errors(self):
        """Console errors other than refused WebSocket handshakes (expected in refusal tests)."""
        return [e for e in self.errors if not re.search(r"WebSocket connection to .* failed", e)]


@pytest.fixture
def open_page(chromium, stack):
    """``open_page(path, viewport=PHONE)``: a new page at ``path`` of the stack."""
    pages = []

    def open_(path, viewport=PHONE, base_url=None):
        page = Page(chromium, base_url or stack.http, viewport)
        pages.append(page)
        page.page.goto(path)
        return page

    yield open_
    for page in pages:
        page.context.close()


def start_broadcast(open_page, *, user="speaker", viewport=DESKTOP, source="en"):
    """The speaker page signed in locally with a broadcast started; returns (page, session id)."""
    speaker = open_page("/speak", viewport)
    p = speaker.page
    p.get_by_label("User name (local development)").fill(user)
    p.get_by_role("button", name="Sign in locally").click()
    p.get_by_label("Spoken language").select_option(source)
    p.get_by_role("button", name="Start broadcast").click()
    p.locator("#live").wait_for(state="visible", timeout=15_000)
    session_id = p.locator("#session-id").inner_text()
    assert re.fullmatch(r"[a-z]+-[a-z]+-[1-9][0-9]{2}", session_id), session_id
    return speaker, session_id


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.page.screenshot(path=str(path), full_page=True)
    return path
