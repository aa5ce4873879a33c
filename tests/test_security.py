"""Security headers, CSP, CORS and the websocket origin check.

In-process tests of the middleware first, then the running app (UI, API, static files, copilot
script, socket.io), then the Chainlit UI under its CSP in headless Chromium.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import socketio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from faqbot.web.security import (
    SecurityHeadersMiddleware,
    inline_script_hashes,
    websocket_origin_check,
)
from tests.browser_support import ARTIFACTS, browser_page, send_message
from tests.e2e_support import chainlit_server

ALLOWED = "http://partner.test:3000"
PAGE = (
    "<!doctype html><html><head><script>window.theme = {};</script>"
    '<script type="module" src="/assets/app.js"></script>'
    "<SCRIPT>\nconst global = globalThis;\n</SCRIPT></head><body>"
    + "<p>padding</p>" * 100
    + "</body></html>"
)
# Computed independently: echo -n '<text>' | openssl dgst -sha256 -binary | base64
THEME_HASH = "'sha256-NBawKqN1Gfb9k6ZN7sW8OobxINhxtnvNmW8gno3wkgQ='"


def script_src(csp: str) -> str:
    return next(d for d in csp.split("; ") if d.startswith("script-src "))


# --- the middleware, in process ------------------------------------------------------------


def _app(https_scheme: bool = False) -> httpx.AsyncClient:
    async def html(request: Request) -> Response:
        return HTMLResponse(PAGE)

    async def data(request: Request) -> Response:
        return JSONResponse({"ok": True}, headers={"X-Frame-Options": "SAMEORIGIN"})

    app = Starlette(
        routes=[Route("/", html), Route("/data", data), Route("/api/docs", html)],
        middleware=[Middleware(SecurityHeadersMiddleware), Middleware(GZipMiddleware)],
    )
    base = "https://testserver" if https_scheme else "http://testserver"
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)


def test_inline_script_hashes_cover_inline_scripts_only() -> None:
    hashes = inline_script_hashes(PAGE.encode())
    assert len(hashes) == 2  # the module script has a src
    assert hashes[0] == THEME_HASH


def test_inline_script_hashes_follow_the_html_parser() -> None:
    html = (
        b"<!-- copy the <script> blocks below --><script>a()</script>"
        b"<script data-src='x'>b()\r\n</script><script>var s = '<!-- not a comment';</script>"
    )
    expected = [b"a()", b"b()\n", b"var s = '<!-- not a comment';"]
    assert inline_script_hashes(html) == [
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        for body in expected
    ]


async def test_json_responses_get_every_header_and_no_inline_script() -> None:
    async with _app() as client:
        resp = await client.get("/data")
    h = resp.headers
    assert h["x-content-type-options"] == "nosniff"
    assert h["x-frame-options"] == "SAMEORIGIN"  # a header the app set is kept
    assert h["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "camera=()" in h["permissions-policy"]
    assert h["cross-origin-opener-policy"] == "same-origin"
    assert script_src(h["content-security-policy"]) == "script-src 'self'"
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert "strict-transport-security" not in h


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
async def test_html_pages_allow_exactly_their_own_inline_scripts(encoding: str) -> None:
    async with _app() as client:
        resp = await client.get("/", headers={"Accept-Encoding": encoding})
    assert resp.headers.get("content-encoding", "identity") == encoding
    assert resp.text == PAGE  # body passed through untouched (httpx decodes gzip)
    src = script_src(resp.headers["content-security-policy"])
    assert src.split(" ")[1:] == ["'self'", *inline_script_hashes(PAGE.encode())]
    assert "'unsafe-inline'" not in src


async def test_gzipped_body_is_forwarded_compressed() -> None:
    gz = {"Accept-Encoding": "gzip"}
    async with _app() as client, client.stream("GET", "/", headers=gz) as resp:
        raw = b"".join([chunk async for chunk in resp.aiter_raw()])
    assert gzip.decompress(raw).decode() == PAGE


async def test_the_api_docs_page_may_load_swagger_from_its_cdn() -> None:
    async with _app() as client:
        docs = (await client.get("/api/docs")).headers["content-security-policy"]
        home = (await client.get("/")).headers["content-security-policy"]
    assert "https://cdn.jsdelivr.net" in script_src(docs)
    assert "https://cdn.jsdelivr.net" not in script_src(home)


@pytest.mark.parametrize(
    ("https_scheme", "forwarded", "hsts"),
    [(False, None, False), (True, None, True), (False, "https", True), (False, "http", False)],
)
async def test_hsts_only_over_https(https_scheme: bool, forwarded: str | None, hsts: bool) -> None:
    headers = {"X-Forwarded-Proto": forwarded} if forwarded else {}
    async with _app(https_scheme) as client:
        resp = await client.get("/data", headers=headers)
    assert ("strict-transport-security" in resp.headers) is hsts


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        (None, "faq.example.com", True),  # not a browser: CORS does not apply
        ("http://partner.test:3000", "faq.example.com", True),
        ("http://partner.test:3000/", "faq.example.com", True),
        ("http://partner.test:3001", "faq.example.com", False),
        ("https://faq.example.com", "faq.example.com", True),  # the Chainlit UI itself
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("http://localhost:8000", "127.0.0.1:8000", False),
        ("http://evil.test", "faq.example.com", False),
        ("null", "faq.example.com", False),
    ],
)
def test_websocket_origin_check(origin: str | None, host: str, allowed: bool) -> None:
    check = websocket_origin_check([ALLOWED])
    assert check(origin, {"HTTP_HOST": host}) is allowed


def test_websocket_origin_check_behind_a_proxy_and_with_a_wildcard() -> None:
    check = websocket_origin_check([ALLOWED])
    env = {"HTTP_HOST": "10.0.0.5:8000", "HTTP_X_FORWARDED_HOST": "help.example.com"}
    assert check("https://help.example.com", env)
    assert websocket_origin_check(["*"])("http://anything.test", {})


# --- the running app -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    with chainlit_server({"CORS_ORIGINS": ALLOWED, "RATE_LIMIT_REQUESTS": "1000"}) as url:
        yield url


def test_refused_origins_are_logged_once_each_and_bounded(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One warning line per refused origin and kind, naming CORS_ORIGINS; after `limit`
    origins, one line saying the rest are not logged (anyone can send any Origin header)."""
    from faqbot.logs import configure_logging
    from faqbot.web.security import RefusedOrigins

    configure_logging("INFO", "json")
    refused = RefusedOrigins(limit=3)
    check = websocket_origin_check([ALLOWED], refused)
    for _ in range(5):
        assert not check("https://partner.test", {"HTTP_HOST": "bot.test"})
    refused.report("https://partner.test", "http")
    refused.report("https://partner.test", "http")
    for n in range(10):
        refused.report(f"https://spam{n}.test", "http")
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "cors.origin_refused" in ln]
    assert len(lines) == 4  # partner (websocket, http), spam0, then "no more logged"
    assert lines[0].count("https://partner.test") == 1
    assert all("CORS_ORIGINS" in ln for ln in lines[:3])
    assert "origin_refused_more" in lines[3]


async def test_the_http_refusal_log_skips_allowed_and_same_origin_requests(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from faqbot.logs import configure_logging
    from faqbot.web.security import CorsRefusalLog, RefusedOrigins

    configure_logging("INFO", "json")
    inner = Starlette(routes=[Route("/", lambda r: JSONResponse({}))])
    app = CorsRefusalLog(inner, allowed=[ALLOWED], refused=RefusedOrigins())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as http:
        for origin in (ALLOWED, "http://bot.test", None, "https://evil.test"):
            headers = {"origin": origin} if origin else {}
            assert (await http.get("/", headers=headers)).status_code == 200
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "cors.origin_refused" in ln]
    assert len(lines) == 1
    assert "https://evil.test" in lines[0]


@pytest.mark.chainlit
@pytest.mark.parametrize(
    "path", ["/", "/api/health", "/public/logo.svg", "/copilot/index.js", "/api/nope", "/health"]
)
def test_every_response_carries_the_security_headers(app_url: str, path: str) -> None:
    resp = httpx.get(app_url + path)
    headers = resp.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "camera=()" in headers["permissions-policy"]
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert "'unsafe-inline'" not in script_src(csp)
    assert "strict-transport-security" not in headers  # plain HTTP


@pytest.mark.chainlit
def test_the_ui_page_csp_hashes_its_inline_scripts(app_url: str) -> None:
    resp = httpx.get(app_url + "/", headers={"Accept-Encoding": "gzip"})
    assert resp.headers["content-encoding"] == "gzip"
    inline = re.findall(r"<script>(.*?)</script>", resp.text, re.DOTALL)
    assert any("window.transports" in s for s in inline)
    hashes = inline_script_hashes(resp.content)
    assert len(hashes) == len(inline) >= 2
    assert script_src(resp.headers["content-security-policy"]).split(" ")[2:] == hashes


@pytest.mark.chainlit
def test_hsts_only_behind_https(app_url: str) -> None:
    resp = httpx.get(app_url + "/api/health", headers={"X-Forwarded-Proto": "https"})
    assert resp.headers["strict-transport-security"].startswith("max-age=31536000")


@pytest.mark.chainlit
def test_api_is_served_ahead_of_chainlit_routes(app_url: str) -> None:
    resp = httpx.get(app_url + "/api/health")
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["status"] == "ok"
    schema = httpx.get(app_url + "/api/openapi.json").json()
    assert "/chat" in schema["paths"]
    assert schema["servers"] == [{"url": "/api"}]
    for path in ("/api/faq/a%0Ab", "/api/nope", "/api"):  # never the SPA, always the API's shape
        body = httpx.get(app_url + path).json()
        assert set(body) == {"error", "detail", "error_code"}, path
    docs = httpx.get(app_url + "/api/docs")
    assert "/api/openapi.json" in docs.text
    assert "https://cdn.jsdelivr.net" in script_src(docs.headers["content-security-policy"])


@pytest.mark.chainlit
def test_cors_follows_cors_origins_for_api_and_chainlit(app_url: str) -> None:
    for path in ("/api/chat", "/project/settings", "/auth/config"):
        ok = httpx.options(
            app_url + path,
            headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"},
        )
        bad = httpx.options(
            app_url + path,
            headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"},
        )
        assert ok.headers.get("access-control-allow-origin") == ALLOWED, path
        assert bad.status_code == 400, path
        assert "access-control-allow-origin" not in bad.headers, path
    # The API's own policy answers for /api (not Chainlit's allow-everything-with-credentials).
    api = httpx.options(
        app_url + "/api/chat", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}
    )
    assert api.headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
    assert "access-control-allow-credentials" not in api.headers
    simple = httpx.get(app_url + "/api/health", headers={"Origin": ALLOWED})
    assert simple.headers["access-control-allow-origin"] == ALLOWED
    assert simple.headers["access-control-expose-headers"] == "Retry-After"
    refused = httpx.get(app_url + "/auth/config", headers={"Origin": "http://evil.test"})
    assert "access-control-allow-origin" not in refused.headers


async def _socket(url: str, origin: str | None) -> bool:
    """True if a socket.io client sending this Origin header gets a Chainlit session."""
    sio = socketio.AsyncClient(reconnection=False)
    auth = {
        "sessionId": str(uuid.uuid4()),
        "clientType": "copilot",
        "threadId": "",
        "userEnv": "{}",
        "chatProfile": "",
    }
    try:
        await sio.connect(
            url,
            socketio_path="/ws/socket.io",
            transports=["websocket"],
            auth=auth,
            headers={"Origin": origin} if origin else {},
            wait_timeout=5,
        )
    except socketio.exceptions.ConnectionError:
        await sio.shutdown()
        return False
    await sio.disconnect()
    return True


@pytest.mark.chainlit
def test_socket_connections_follow_cors_origins(app_url: str) -> None:
    async def attempts() -> list[bool]:
        origins = [ALLOWED, app_url, None, "http://evil.test", "http://partner.test:3001"]
        return [await _socket(app_url, o) for o in origins]

    assert asyncio.run(attempts()) == [True, True, True, False, False]


# --- the UI under its CSP, in Chromium --------------------------------------------------------

WATCH_CSP = """document.addEventListener("securitypolicyviolation", e => {
    (window.__csp = window.__csp || []).push(e.violatedDirective + " " + e.blockedURI);
});"""


@pytest.mark.browser
def test_the_chainlit_ui_works_under_its_csp(app_url: str) -> None:
    page: Any
    console: list[str] = []
    with browser_page() as page:
        page.add_init_script(WATCH_CSP)
        page.on("console", lambda m: console.append(m.text))
        page.goto(app_url)
        send_message(page, "Do you offer discounts for annual subscriptions?")
        page.get_by_text("20% discount for annual subscriptions").first.wait_for(timeout=20_000)
        page.wait_for_timeout(500)
        assert page.evaluate("window.__csp") is None
        assert not [m for m in console if "Content Security Policy" in m], console
        page.screenshot(path=str(ARTIFACTS / "ui-under-csp.png"))
        # The policy is live: a script injected into the page is refused.
        page.evaluate(
            """() => { const s = document.createElement("script");
                s.textContent = "window.__injected = 1"; document.body.appendChild(s); }"""
        )
        assert page.evaluate("window.__injected") is None
        assert any(v.startswith("script-src") for v in page.evaluate("window.__csp"))


# --- air-gapped: nothing from another host ----------------------------------------------------


def test_the_policy_allows_no_other_host_outside_the_api_docs() -> None:
    from faqbot.web.security import build_csp

    assert "https:" not in build_csp()
    assert "//" not in build_csp()


def test_chainlits_cdn_links_are_stripped_from_its_index_page() -> None:
    import importlib.util
    from pathlib import Path

    from faqbot.web.airgap import strip_external_links

    spec = importlib.util.find_spec("chainlit")  # locate it without importing (no config load)
    assert spec is not None
    assert spec.origin is not None
    index = Path(spec.origin).parent / "frontend" / "dist" / "index.html"
    original = index.read_text(encoding="utf-8")
    assert "cdn.jsdelivr.net" in original  # what Chainlit ships (if not, drop this test)
    page = strip_external_links(original)
    for host in ("cdn.jsdelivr.net", "fonts.googleapis.com", "fonts.gstatic.com"):
        assert host not in page
    assert '<script type="module" crossorigin src="/assets/' in page  # own files stay
    assert '<link rel="stylesheet" crossorigin href="/assets/' in page
    assert strip_external_links("<link rel=preconnect href=//x.example>a") == "a"
