"""The copilot widget with sign-in on, and the CORS refusal named in the log (issue 20, item 14).

With sign-in on, a host page gets a session token its own server signed for the visitor with
CHAINLIT_AUTH_SECRET and exchanges it (`POST /auth/jwt`, `Authorization: Bearer`) for the session
cookie before it mounts the widget (docs/widget.md). Mounted with `accessToken` instead, Chainlit's
copilot (2.12) does that exchange itself but opens its socket as soon as the visitor opens it:
a visitor quicker than the exchange got a chat that never connected (seen once on a loaded CI
machine, reproduced by holding the exchange). Mounted after it without the token, the copilot
waits for its `GET /user` before it shows the chat and connects. A failed exchange mounts with
the token, so the copilot says why. Without a token the widget says "No authentication token
provided."; a token signed with another secret, or for a revoked user, opens nothing.

Without CORS_ORIGINS naming the host page's origin the browser says only "TypeError: Failed to
fetch": the server now logs one line naming the refused origin and CORS_ORIGINS, once per
origin, for HTTP (Chainlit's routes and /api) and for the websocket origin check alike.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from faqbot.passwords import MIN_ITERATIONS, hash_password
from tests.browser_support import ARTIFACTS, browser_page, send_message
from tests.e2e_support import chainlit_server, free_port, server_log, server_logs_on_failure

pytestmark = [pytest.mark.browser, pytest.mark.chainlit]
SECRET = "widget-sign-in-test-secret-" + "w" * 40
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
HOST_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Partner</title></head>
<body><h1>Partner site</h1>
<script>window.transports = ["websocket"];</script>
<script src="{server}/copilot/index.js"></script>
<script>
  var token = new URLSearchParams(location.search).get("token");
  function mount(accessToken) {{
    window.mountChainlitWidget({{chainlitServer: "{server}", theme: "light", accessToken}});
  }}
  // docs/widget.md, "With sign-in on": the exchange first, then the widget
  if (token) {{
    fetch("{server}/auth/jwt", {{method: "POST", credentials: "include",
                                 headers: {{Authorization: "Bearer " + token}}}})
      .then(function (r) {{ return r.ok; }}, function () {{ return false; }})
      .then(function (ok) {{ mount(ok ? undefined : token); }});
  }} else {{
    mount(undefined);
  }}
</script>
</body></html>"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def visitor_token(identifier: str, secret: str = SECRET, minutes: int = 60) -> str:
    """What the host site's server does for a visitor (README "Embed on your site")."""
    now = int(time.time())
    claims = {
        "identifier": identifier,
        "metadata": {"provider": "partner-site"},
        "iat": now,
        "exp": now + minutes * 60,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


@pytest.fixture(scope="module")
def host_ports() -> tuple[int, int]:
    return free_port(), free_port()  # an allowed origin, a refused one


@pytest.fixture(scope="module")
def app_url(host_ports: tuple[int, int]) -> Iterator[str]:
    env = {
        "AUTH_USERS": f"alice:{hash_password('alice-pw', iterations=MIN_ITERATIONS)}",
        "CHAINLIT_AUTH_SECRET": SECRET,
        "CORS_ORIGINS": f"http://127.0.0.1:{host_ports[0]}",
        "RATE_LIMIT_REQUESTS": "1000",
    }
    with chainlit_server(env) as url:
        yield url


@pytest.fixture(scope="module")
def host_pages(
    app_url: str, host_ports: tuple[int, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    root = tmp_path_factory.mktemp("host")
    (root / "index.html").write_text(HOST_PAGE.format(server=app_url), encoding="utf-8")
    handler = functools.partial(_Quiet, directory=str(root))
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", p), handler) for p in host_ports]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    yield tuple(f"http://127.0.0.1:{p}/index.html" for p in host_ports)  # type: ignore[misc]
    for s in servers:
        s.shutdown()


def _open_widget(page: Any) -> Any:
    page.locator("#chainlit-copilot-button").click(timeout=20_000)
    chat = page.locator("#chainlit-copilot-chat")
    chat.wait_for(timeout=20_000)
    return chat


def test_the_widget_works_with_sign_in_given_an_access_token(
    app_url: str, host_pages: tuple[str, str]
) -> None:
    page: Any
    held: dict[str, list[Any]] = {"jwt": [], "user": []}
    refused = "Authentication failed in websocket connect"
    refusals = server_log(app_url, tail=400_000).count(refused)
    with browser_page() as page:
        # A visitor on a slow network: the token exchange and then the widget's GET /user are
        # held. Nothing can be opened before the exchange ends; opened while /user is pending,
        # the widget connects once /user answers (never a chat that cannot connect).
        page.route("**/auth/jwt", lambda route: held["jwt"].append(route))
        page.route("**/user", lambda route: held["user"].append(route))
        page.goto(f"{host_pages[0]}?token={visitor_token('visitor-42')}")
        page.wait_for_timeout(1500)
        assert len(held["jwt"]) == 1
        assert page.locator("#chainlit-copilot-button").count() == 0
        held["jwt"][0].continue_()
        page.locator("#chainlit-copilot-button").click(timeout=20_000)
        page.wait_for_timeout(1500)
        assert held["user"], "the widget asks who the visitor is"
        page.unroute("**/user")
        for route in held["user"]:
            route.continue_()
        chat = page.locator("#chainlit-copilot-chat")
        chat.wait_for(timeout=20_000)
        send_message(page, "Do you offer discounts for annual subscriptions?")
        chat.get_by_text(DISCOUNT).wait_for(timeout=20_000)
        assert chat.get_by_text("No authentication token provided.").count() == 0
        assert server_log(app_url, tail=400_000).count(refused) == refusals
        page.screenshot(path=str(ARTIFACTS / "copilot-widget-signed-in.png"))
        # The answer's source link opens on the bot's site, where /api wants the session: the
        # visitor's session cookie (set by the token exchange) goes with the navigation.
        link = chat.get_by_role("link", name="Do you offer discounts for annual subscriptions?")
        href = link.get_attribute("href") or ""
        assert "/api/faq/sales-do-you-offer-discounts" in href
        source = page.context.new_page().goto(href)
        assert source.status == 200
        assert "20% discount" in source.text()


@pytest.mark.parametrize(
    "token",
    [None, visitor_token("mallory", secret="another-secret-of-enough-length-0000000")],
    ids=["no-token", "foreign-secret"],
)
def test_without_a_valid_token_the_widget_opens_nothing(
    host_pages: tuple[str, str], token: str | None
) -> None:
    page: Any
    sockets: list[str] = []
    with browser_page() as page:
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.goto(host_pages[0] + (f"?token={token}" if token else ""))
        page.wait_for_timeout(3000)
        if page.locator("#chainlit-copilot-button").count():
            page.locator("#chainlit-copilot-button").click()
            page.wait_for_timeout(1500)
        assert page.locator("#chat-input").count() == 0
        assert sockets == []


def _refusals(url: str) -> list[dict[str, Any]]:
    lines = []
    for line in server_log(url, tail=400_000).splitlines():
        if line.startswith("{") and '"cors.origin_refused"' in line:
            lines.append(json.loads(line))
    return lines


def test_a_refused_origin_is_named_in_the_log_once(
    app_url: str, host_pages: tuple[str, str], host_ports: tuple[int, int]
) -> None:
    refused = f"http://127.0.0.1:{host_ports[1]}"
    page: Any
    with browser_page() as page:
        for _ in range(2):  # twice: still one line
            page.goto(f"{host_pages[1]}?token={visitor_token('visitor-7')}")
            page.wait_for_timeout(2500)
        # a page that opens the socket itself meets the websocket origin check
        socket = app_url.replace("http://", "ws://") + "/ws/socket.io/?EIO=4&transport=websocket"
        page.evaluate(
            """url => new Promise(done => { const ws = new WebSocket(url);
                ws.onerror = ws.onopen = () => done(); setTimeout(done, 3000); })""",
            socket,
        )
        page.wait_for_timeout(500)
    logged = _refusals(app_url)
    kinds = sorted(e["kind"] for e in logged if e["origin"] == refused)
    assert kinds == ["http", "websocket"], logged
    for event in logged:
        assert "CORS_ORIGINS" in event["fix"]
        assert event["level"] == "warning"
    assert not any(e["origin"] == f"http://127.0.0.1:{host_ports[0]}" for e in logged)
