"""The copilot widget on other sites, origin checks, and HTML in answers, in headless Chromium."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import ARTIFACTS, browser_page, send_message
from tests.conftest import FAQ_DIR
from tests.e2e_support import chainlit_server, free_port

pytestmark = pytest.mark.browser
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
XSS_ANSWER = (
    'Paste <script>window.__pwned = 1</script> or <img src="x" onerror="window.__pwned = 2"> '
    "into the page header."
)
HOST_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Partner</title></head>
<body><h1>Partner site</h1>
<script>window.transports = ["websocket"];</script>
<script src="{server}/copilot/index.js"></script>
<script>window.mountChainlitWidget({{chainlitServer: "{server}", theme: "light"}});</script>
</body></html>"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@functools.cache
def _pages_dir(root: Path, server: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(HOST_PAGE.format(server=server), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def faq_with_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("faqs")
    for f in FAQ_DIR.iterdir():
        shutil.copy(f, folder / f.name)
    (folder / "web.txt").write_text(
        f"WEB FAQ\n\nQ: How do I add the tracking snippet to my site header?\nA: {XSS_ANSWER}\n",
        encoding="utf-8",
    )
    return folder


@pytest.fixture(scope="module")
def host_ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture(scope="module")
def app_url(faq_with_html: Path, host_ports: tuple[int, int]) -> Iterator[str]:
    allowed = f"http://127.0.0.1:{host_ports[0]}"
    env = {"FAQ_DIR": str(faq_with_html), "CORS_ORIGINS": allowed, "RATE_LIMIT_REQUESTS": "1000"}
    with chainlit_server(env) as url:
        yield url


@pytest.fixture(scope="module")
def host_pages(
    app_url: str, host_ports: tuple[int, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """The same host page served from an allowed and from a refused origin."""
    root = _pages_dir(tmp_path_factory.mktemp("host"), app_url)
    handler = functools.partial(_Quiet, directory=str(root))
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", p), handler) for p in host_ports]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    yield tuple(f"http://127.0.0.1:{p}/index.html" for p in host_ports)  # type: ignore[misc]
    for s in servers:
        s.shutdown()


def _ask_in_widget(page: Any, question: str) -> Any:
    page.locator("#chainlit-copilot-button").click(timeout=20_000)
    chat = page.locator("#chainlit-copilot-chat")
    chat.wait_for(timeout=20_000)
    send_message(page, question)
    return chat


def test_widget_on_an_allowed_origin_streams_an_answer(host_pages: tuple[str, str]) -> None:
    page: Any
    with browser_page() as page:
        page.goto(host_pages[0])
        chat = _ask_in_widget(page, "Do you offer discounts for annual subscriptions?")
        chat.get_by_text(DISCOUNT).wait_for(timeout=20_000)
        link = chat.get_by_role("link", name="Do you offer discounts for annual subscriptions?")
        assert "/api/faq/sales-do-you-offer-discounts" in (link.get_attribute("href") or "")
        page.screenshot(path=str(ARTIFACTS / "copilot-widget.png"))


RAW_SOCKET = """url => new Promise(done => {
    const ws = new WebSocket(url);
    ws.onmessage = e => { done("open: " + e.data.slice(0, 1)); ws.close(); };
    ws.onerror = () => done("refused");
    setTimeout(() => done("timeout"), 5000);
})"""


def _socket_url(app_url: str) -> str:
    return app_url.replace("http://", "ws://") + "/ws/socket.io/?EIO=4&transport=websocket"


def test_widget_on_a_refused_origin_does_not_connect(
    app_url: str, host_pages: tuple[str, str]
) -> None:
    page: Any
    errors: list[str] = []
    sockets: list[str] = []
    with browser_page() as page:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.goto(host_pages[1])
        page.wait_for_timeout(3000)
        if page.locator("#chainlit-copilot-button").count():
            page.locator("#chainlit-copilot-button").click()
            page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / "copilot-refused-origin.png"))
        # Chainlit's HTTP routes refuse the origin, so the widget never gets its config...
        blocked = [e for e in errors if "blocked by CORS policy" in e]
        assert any(f"{app_url}/auth/config" in e for e in blocked), errors
        # ...never opens its socket, shows no input and no answer.
        assert sockets == []
        assert page.locator("#chat-input").count() == 0
        assert page.get_by_text(DISCOUNT).count() == 0
        # A page that skips the widget and opens the socket itself is refused as well (browsers
        # apply no CORS to websockets: the server checks the Origin header).
        assert page.evaluate(RAW_SOCKET, _socket_url(app_url)) == "refused"


def test_the_socket_accepts_an_allowed_origin(app_url: str, host_pages: tuple[str, str]) -> None:
    page: Any
    with browser_page() as page:
        page.goto(host_pages[0])
        assert page.evaluate(RAW_SOCKET, _socket_url(app_url)) == "open: 0"


def test_html_in_an_answer_is_shown_as_text_in_the_ui(app_url: str) -> None:
    page: Any
    with browser_page() as page:
        page.goto(app_url)
        send_message(page, "How do I add the tracking snippet to my site header?")
        page.get_by_text("into the page header").first.wait_for(timeout=20_000)
        page.wait_for_timeout(500)
        text = page.inner_text("body")
        assert "<script>window.__pwned = 1</script>" in text
        assert page.evaluate("window.__pwned") is None
        assert page.locator("img[src='x']").count() == 0


def test_html_in_an_answer_is_shown_as_text_in_the_widget(host_pages: tuple[str, str]) -> None:
    page: Any
    with browser_page() as page:
        page.goto(host_pages[0])
        chat = _ask_in_widget(page, "How do I add the tracking snippet to my site header?")
        chat.get_by_text("into the page header").first.wait_for(timeout=20_000)
        page.wait_for_timeout(500)
        assert "<script>window.__pwned = 1</script>" in chat.inner_text()
        assert page.evaluate("window.__pwned") is None
        assert page.locator("#chainlit-copilot-chat img[src='x']").count() == 0


def test_the_documented_embed_page_works_under_the_csp(app_url: str) -> None:
    """public/embed.html, served by faqbot itself: widget, custom CSS, answer, no CSP violation."""
    page: Any
    with browser_page() as page:
        page.add_init_script(
            """document.addEventListener("securitypolicyviolation",
                e => (window.__csp = window.__csp || []).push(e.violatedDirective));"""
        )
        page.goto(f"{app_url}/public/embed.html")
        chat = _ask_in_widget(page, "Do you offer discounts for annual subscriptions?")
        chat.get_by_text(DISCOUNT).wait_for(timeout=20_000)
        color = page.locator("#chainlit-copilot-button").evaluate(
            "b => getComputedStyle(b).backgroundColor"
        )
        assert color == "rgb(15, 118, 110)"  # public/copilot.css reached the shadow root
        assert page.evaluate("window.__csp") is None
        page.screenshot(path=str(ARTIFACTS / "copilot-embed-example.png"))
