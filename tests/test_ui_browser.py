"""Suggestion buttons, the mode notice, entry pages, avatars and "no outside request", in
headless Chromium against `chainlit run` (the chat UI, and the copilot widget on another origin).

The server runs with CONFIDENCE_THRESHOLD=1.0 / SUGGEST_THRESHOLD=0.0: a question that only
partly matches the FAQ gets "Did you mean" buttons; an exact FAQ question is still answered.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from faqbot.knowledge.loader import load_knowledge_base
from tests.browser_support import ARTIFACTS, browser_page, send_message
from tests.e2e_support import ROOT, chainlit_server, free_port, server_logs_on_failure

pytestmark = pytest.mark.browser
KB = load_knowledge_base(ROOT / "faqs")
UNSURE_Q = "Is there a refund if I cancel my annual plan?"
QUESTION = "Do you offer discounts for annual subscriptions?"
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
HOST_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Partner</title></head>
<body><h1>Partner site</h1>
<script>window.transports = ["websocket"];</script>
<script src="{server}/copilot/index.js"></script>
<script>window.mountChainlitWidget({{chainlitServer: "{server}", theme: "light"}});</script>
</body></html>"""


# An image's natural width once it has loaded (0 if it failed).
LOADED_WIDTH = """img => img.complete ? img.naturalWidth : new Promise(done => {
    img.addEventListener("load", () => done(img.naturalWidth));
    img.addEventListener("error", () => done(0));
})"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


@pytest.fixture(scope="module")
def host_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def app_url(host_port: int) -> Iterator[str]:
    env = {
        "CONFIDENCE_THRESHOLD": "1.0",
        "SUGGEST_THRESHOLD": "0.0",
        "EMBEDDINGS": "off",
        "RATE_LIMIT_REQUESTS": "1000",
        "CORS_ORIGINS": f"http://127.0.0.1:{host_port}",
    }
    with chainlit_server(env) as url:
        yield url


@pytest.fixture(scope="module")
def host_page(
    app_url: str, host_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A partner page embedding the widget, served from another loopback origin."""
    root: Path = tmp_path_factory.mktemp("partner")
    (root / "index.html").write_text(HOST_PAGE.format(server=app_url), encoding="utf-8")
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", host_port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{host_port}/index.html"
    server.shutdown()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def test_clicking_a_suggestion_shows_its_answer_and_source(app_url: str) -> None:
    page: Any
    with browser_page() as page:
        page.goto(app_url)
        send_message(page, UNSURE_Q)
        page.get_by_text("I'm not sure I understood. Did you mean:").wait_for(timeout=20_000)
        offered = [e for e in KB.entries if page.get_by_role("button", name=e.question).count()]
        assert 2 <= len(offered) <= 3, [e.question for e in offered]
        chosen = offered[0]
        page.screenshot(path=str(ARTIFACTS / "suggestions.png"))
        page.get_by_role("button", name=chosen.question).click()

        page.get_by_text(chosen.answer[:60]).first.wait_for(timeout=15_000)
        for entry in offered:  # the buttons are gone after the choice
            page.get_by_role("button", name=entry.question).wait_for(state="detached")
        users = page.locator(".step[data-step-type=user_message]")
        assert [t.strip() for t in users.all_inner_texts()] == [UNSURE_Q, chosen.question]
        link = page.get_by_role("link", name=chosen.question)
        assert link.get_attribute("href") == f"/api/faq/{chosen.id}"
        assert page.get_by_text("chosen from the suggestions · quoted from the FAQ").is_visible()

        # The notice under the input tells the truth about the offline mode.
        notice = page.locator(".watermark").inner_text()
        assert notice.startswith("Answers are quoted from the FAQ.")
        assert "LLMs" not in notice

        # The source link is a page for people.
        page.goto(app_url + f"/api/faq/{chosen.id}")
        assert page.locator("h1").inner_text() == chosen.question
        assert chosen.answer[:40] in page.inner_text("body")
        page.get_by_role("link", name="Ask another question").click()
        page.locator("#chat-input").wait_for(timeout=20_000)


def _record(page: Any, requests: list[str], failed: list[str]) -> None:
    page.on("request", lambda r: requests.append(r.url))
    page.on("requestfailed", lambda r: failed.append(r.url))


def test_the_ui_and_the_widget_make_no_outside_request(app_url: str, host_page: str) -> None:
    """An air-gapped install: every request goes to the app's own (loopback) origin."""
    page: Any
    requests: list[str] = []
    failed: list[str] = []
    with browser_page() as page:
        _record(page, requests, failed)
        page.goto(app_url)
        send_message(page, QUESTION)
        page.get_by_text(DISCOUNT).first.wait_for(timeout=20_000)
        page.wait_for_timeout(1000)
        html = page.content()
    with browser_page() as page:
        _record(page, requests, failed)
        page.goto(host_page)
        page.locator("#chainlit-copilot-button").click(timeout=20_000)
        send_message(page, QUESTION)
        page.locator("#chainlit-copilot-chat").get_by_text(DISCOUNT).wait_for(timeout=20_000)
        page.wait_for_timeout(1000)
    network = [u for u in requests if not u.startswith(("data:", "blob:")) and u != host_page]
    assert network, "no request recorded"
    outside = sorted({u for u in network if _origin(u) != app_url})
    assert outside == [], outside
    assert failed == []
    for needle in ("cdn.jsdelivr.net", "fonts.googleapis.com", "fonts.gstatic.com"):
        assert needle not in html


def test_the_widget_avatar_loads_on_another_site(app_url: str, host_page: str) -> None:
    page: Any
    with browser_page() as page:
        page.goto(host_page)
        page.locator("#chainlit-copilot-button").click(timeout=20_000)
        send_message(page, QUESTION)
        chat = page.locator("#chainlit-copilot-chat")
        chat.get_by_text(DISCOUNT).wait_for(timeout=20_000)
        avatar = chat.locator("img[alt^='Avatar for']").last
        avatar.wait_for()
        src = avatar.get_attribute("src") or ""
        assert src.startswith(app_url + "/"), src
        assert avatar.evaluate(LOADED_WIDTH) > 0
        page.screenshot(path=str(ARTIFACTS / "copilot-avatar.png"))
