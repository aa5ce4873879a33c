"""Headless Chromium (Debian's package) through Playwright, never contacting outside hosts.

One Playwright driver and one Chromium serve the whole test session (each start costs 2-5 s on
a loaded 2-core machine); every `browser_page()` gets a fresh browser context (its own cookies,
storage and cache), which is the isolation the tests need.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import os
import re
import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

JOURNAL_LINES = 300  # the last lines of what a page did, printed when its test fails
FRAME_CHARS = 300
RESEND_AFTER_MS = 5_000
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium; .ci/run does)")


def _local_only(route: object) -> None:
    request = route.request  # type: ignore[attr-defined]
    host = urlparse(request.url).hostname or ""
    if host in {"127.0.0.1", "localhost", "::1"} or request.url.startswith(("data:", "blob:")):
        route.continue_()  # type: ignore[attr-defined]
    else:
        route.abort()  # type: ignore[attr-defined]


class _SharedBrowser:
    """The session's Playwright and Chromium, started on first use, stopped at exit.

    Playwright's sync API marks its own event loop as the thread's running loop whenever a call
    returns (it runs that loop between calls); left so between tests, every `asyncio.run()` and
    async test after a browser test would fail ("cannot be called from a running event loop").
    So the mark is set only while a page is in use, and cleared when it is handed back.
    """

    def __init__(self) -> None:
        self._manager: Any = None
        self._browser: Any = None

    def _start(self) -> None:
        from playwright.sync_api import sync_playwright

        self._manager = sync_playwright()
        playwright = self._manager.start()
        self._browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        atexit.register(self.stop)

    def _activate(self) -> None:
        asyncio._set_running_loop(self._manager._loop)  # see the class docstring

    @staticmethod
    def _deactivate() -> None:
        asyncio._set_running_loop(None)

    @contextlib.contextmanager
    def page(self) -> Iterator[object]:
        if self._browser is not None and not self._browser.is_connected():
            self.stop()  # Chromium died (a crashed test): start another
        try:
            if self._browser is None:
                self._start()
            else:
                self._activate()
            context = self._browser.new_context(viewport={"width": 1280, "height": 900})
            try:
                context.route("**/*", _local_only)
                yield context.new_page()
            finally:
                context.close()
        finally:
            self._deactivate()

    def stop(self) -> None:
        manager, self._manager, self._browser = self._manager, None, None
        if manager is None:
            return
        try:
            with contextlib.suppress(Exception):
                asyncio._set_running_loop(manager._loop)
                manager.__exit__()
        finally:
            self._deactivate()


_SHARED = _SharedBrowser()


class _Journal:
    """What the page did (console, errors, failed requests, socket frames), timed, to print
    when a test fails: a timeout alone cannot tell a message never sent from an answer lost."""

    def __init__(self, page: Any) -> None:
        self.started = time.monotonic()
        self.lines: collections.deque[str] = collections.deque(maxlen=JOURNAL_LINES)
        page.on("console", lambda m: self.add(f"console.{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.add(f"pageerror: {e}"))
        page.on("requestfailed", lambda r: self.add(f"failed: {r.method} {r.url} {r.failure}"))
        page.on("websocket", self._socket)

    def add(self, line: str) -> None:
        self.lines.append(f"{time.monotonic() - self.started:7.2f} {line[:FRAME_CHARS]}")

    def _socket(self, socket: Any) -> None:
        self.add(f"websocket {socket.url}")
        socket.on("framesent", lambda frame: self.add(f"sent {frame!s}"))
        socket.on("framereceived", lambda frame: self.add(f"got  {frame!s}"))
        socket.on("close", lambda _: self.add("websocket closed"))

    def report(self, page: Any, error: BaseException) -> None:
        """Print the journal, the page's text and a screenshot's path (to the test's output)."""
        name = re.sub(r"\W+", "-", os.environ.get("PYTEST_CURRENT_TEST", "page"))[-120:]
        shot = ARTIFACTS / f"failed-{name}.png"
        with contextlib.suppress(Exception):
            page.screenshot(path=str(shot))
        text = "(unreadable)"
        with contextlib.suppress(Exception):
            text = page.inner_text("body", timeout=2_000)[-3_000:]
        print(f"--- browser page at failure ({type(error).__name__}; screenshot: {shot}) ---",
              *self.lines, "--- page text ---", text, sep="\n", file=sys.stderr)  # fmt: skip


@contextlib.contextmanager
def browser_page() -> Iterator[object]:
    """A fresh page (in a new context of the session's Chromium) whose requests to non-loopback
    hosts are aborted. Use from synchronous tests (Playwright's sync API). When the block
    raises, what the page did is printed with the failure (`_Journal`)."""
    require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    with _SHARED.page() as page:
        journal = _Journal(page)
        try:
            yield page
        except Exception as error:  # not pytest's skip/exit: those are no failure
            journal.report(page, error)
            raise


def send_message(page: Any, text: str, timeout_ms: float = 20_000) -> None:
    """Type `text` into the chat (the UI's or the widget's) and send it, as a visitor does:
    once the send button takes a click (connected, no answer running), then wait until the UI shows
    it as the visitor's message. That bubble is drawn by the browser itself before anything
    goes to the server, so a test failing after this line failed on the server's side.

    A click the UI did not take (the text still in the box and no bubble after
    `RESEND_AFTER_MS`) is made once more, with a warning in pytest's summary; a
    visitor clicks again too. A message the UI took is never sent twice.
    """
    from playwright.sync_api import expect

    box, send = page.locator("#chat-input"), page.locator("#chat-submit")
    sent = page.locator('[data-step-type="user_message"]', has_text=text)
    before = sent.count()
    box.fill(text)
    expect(send).to_be_enabled(timeout=timeout_ms)  # it is while the box holds text
    send.click()
    try:
        expect(sent).to_have_count(before + 1, timeout=RESEND_AFTER_MS)
        return
    except AssertionError:
        if box.input_value() != text:
            raise  # the UI took the text (the box was emptied) but does not show it
    warnings.warn(f"send_message: the UI did not take the click on send; clicked again ({text!r})",
                  stacklevel=2)  # fmt: skip
    send.click()
    expect(sent).to_have_count(before + 1, timeout=timeout_ms)
