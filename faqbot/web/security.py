"""Security headers on every HTTP response, and the origin check for Chainlit's websocket.

`SecurityHeadersMiddleware` is pure ASGI (streaming, SSE and websockets pass untouched). It adds
X-Content-Type-Options, X-Frame-Options, Referrer-Policy, Permissions-Policy,
Cross-Origin-Opener-Policy and a Content-Security-Policy to every response, and
Strict-Transport-Security when the request came over HTTPS (directly, or behind a proxy that says
so with `X-Forwarded-Proto: https`; browsers ignore HSTS on plain HTTP).

The CSP allows no inline script by default. HTML pages (Chainlit's index.html carries two small
inline scripts, written at serve time from `public/theme.json` and the transports setting) get
the SHA-256 hash of each inline script they contain added to `script-src`, computed from the very
body being sent, so only those exact scripts run. Styles may be inline (React style attributes)
or data: URLs (`public/theme.json`'s empty font stylesheet). Nothing is allowed from another host:
the UI is self-contained (airgap.py strips Chainlit's CDN links), so an air-gapped install
works and a stray outside reference shows up as a CSP violation. Nothing may frame any page
(`frame-ancestors 'none'`); the copilot widget is a script on the host page, not a frame, so
embedding still works. Only the API docs page (Swagger UI, a developer tool) loads its script
and CSS from cdn.jsdelivr.net and gets that source added.

`websocket_origin_check` decides which browser origins may open Chainlit's socket.io connection:
browsers apply no CORS to websockets, so without it any web page could talk to the bot.
`CorsRefusalLog` and the websocket check log one warning per refused origin naming CORS_ORIGINS
(the browser only says "Failed to fetch").
`peer_address` gives the client's address for a socket.io connection, decided as for the API.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faqbot.logs import get_logger

log = get_logger("faqbot.web.security")

POLICY: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "script-src": ("'self'",),
    "style-src": ("'self'", "'unsafe-inline'", "data:"),
    "font-src": ("'self'", "data:"),
    "img-src": ("'self'", "data:", "blob:"),
    "connect-src": ("'self'",),
    "media-src": ("'self'", "blob:"),
    "worker-src": ("'self'", "blob:"),
    "object-src": ("'none'",),
    "base-uri": ("'self'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("'none'",),
}
# Swagger UI (FastAPI's /docs page) loads its bundle from jsDelivr and its favicon from FastAPI.
DOCS_SOURCES: dict[str, tuple[str, ...]] = {
    "script-src": ("https://cdn.jsdelivr.net",),
    "style-src": ("https://cdn.jsdelivr.net",),
    "img-src": ("https://fastapi.tiangolo.com",),
}

HEADERS: dict[bytes, bytes] = {
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"strict-origin-when-cross-origin",
    # Chainlit's audio input is off ([features.audio]); turning it on needs microphone=(self).
    b"permissions-policy": b"camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    b"cross-origin-opener-policy": b"same-origin",
}
HSTS = b"max-age=31536000; includeSubDomains"

# A comment is skipped whole (a "<script>" inside it is not a script); a script's body is taken
# whole (a "<!--" inside it is script text), as the HTML parser does.
_SCRIPT_OR_COMMENT = re.compile(
    rb"<!--.*?-->|<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL
)
_SRC_ATTR = re.compile(rb"(?:^|\s)src\s*=", re.IGNORECASE)


def build_csp(
    extra: Mapping[str, Iterable[str]] | None = None, policy: Mapping[str, Sequence[str]] = POLICY
) -> str:
    """The policy as a header value, with `extra` sources appended to their directives."""
    directives = {name: list(sources) for name, sources in policy.items()}
    for name, sources in (extra or {}).items():
        directives.setdefault(name, []).extend(sources)
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def inline_script_hashes(html: bytes) -> list[str]:
    """CSP hash sources ('sha256-...') for every inline <script> of an HTML document."""
    hashes = []
    for match in _SCRIPT_OR_COMMENT.finditer(html):
        attrs, body = match.group(1), match.group(2)
        if body is None or _SRC_ATTR.search(attrs):
            continue
        # Browsers hash the parsed text, in which the parser has turned CRLF and CR into LF.
        body = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        source = f"'sha256-{digest}'"
        if source not in hashes:
            hashes.append(source)
    return hashes


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes:
    for key, value in headers:
        if key.lower() == name:
            return value
    return b""


def _over_https(scope: Scope) -> bool:
    """The request came over HTTPS: directly, or through a proxy saying X-Forwarded-Proto."""
    request_headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
    forwarded = _header(request_headers, b"x-forwarded-proto").split(b",")[0].strip()
    return scope.get("scheme") == "https" or forwarded.lower() == b"https"


def _with_headers(message: Message, csp: str, *, https: bool) -> Message:
    """The response start `message` with every security header it does not set itself."""
    headers = list(message.get("headers", []))
    present = {k.lower() for k, _ in headers}
    added = {**HEADERS, b"content-security-policy": csp.encode()}
    if https:
        added[b"strict-transport-security"] = HSTS
    headers += [(k, v) for k, v in added.items() if k not in present]
    return {**message, "headers": headers}


class SecurityHeadersMiddleware:
    """Add the security headers (and a per-page CSP) to every HTTP response of `app`."""

    def __init__(self, app: ASGIApp, *, docs_paths: Sequence[str] = ("/api/docs",)) -> None:
        self.app = app
        self.docs_paths = tuple(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = _over_https(scope)
        extra: dict[str, tuple[str, ...]] = {}
        if scope.get("path", "") in self.docs_paths:
            extra = DOCS_SOURCES
        start: Message | None = None
        body: list[bytes] = []

        def finish(message: Message, csp: str) -> Message:
            return _with_headers(message, csp, https=https)

        async def send_with_headers(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if _header(headers, b"content-type").startswith(b"text/html"):
                    start = message  # hold it: the CSP depends on the page's inline scripts
                    return
                await send(finish(message, build_csp(extra)))
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            content = b"".join(body)
            scripts = (*extra.get("script-src", ()), *self._hashes(start, content))
            await send(finish(start, build_csp({**extra, "script-src": scripts})))
            await send({"type": "http.response.body", "body": content, "more_body": False})

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    def _hashes(start: Message, content: bytes) -> list[str]:
        encoding = _header(list(start.get("headers", [])), b"content-encoding").lower()
        try:
            if encoding == b"gzip":
                content = gzip.decompress(content)
            elif encoding not in (b"", b"identity"):
                raise ValueError(f"unsupported content-encoding {encoding!r}")
            return inline_script_hashes(content)
        except (OSError, EOFError, ValueError) as exc:
            # No hashes: the page's inline scripts are blocked (safe, but visibly broken).
            log.warning("csp.hash_failed", error=str(exc))
            return []


MAX_ORIGINS_LOGGED = 100
CORS_FIX = (
    "if this site embeds the widget or calls the API, add its origin to CORS_ORIGINS "
    '(e.g. CORS_ORIGINS=["https://www.example.com"]); otherwise nothing to do'
)


class RefusedOrigins:
    """Says once per origin (and per kind: HTTP, websocket), in one warning line, that
    CORS_ORIGINS refused it.

    A browser tells the visitor only "TypeError: Failed to fetch" (the widget on a site missing
    from CORS_ORIGINS); the operator reads the cause here. Bounded: after `limit` distinct
    origins (anyone can send any Origin header) one last line says the rest are not logged.
    """

    def __init__(self, limit: int = MAX_ORIGINS_LOGGED) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._full = False

    def report(self, origin: str, kind: str) -> None:
        origin = origin.strip().lower()[:200]
        key = f"{kind} {origin}"  # the HTTP and the websocket refusals: one line each
        if key in self._seen or self._full:
            return
        if len(self._seen) >= self.limit:
            self._full = True
            log.warning("cors.origin_refused_more", logged=self.limit, note="no more logged")
            return
        self._seen.add(key)
        log.warning(
            "cors.origin_refused", origin=origin, kind=kind, setting="CORS_ORIGINS", fix=CORS_FIX
        )


REFUSED = RefusedOrigins()  # one per process: the HTTP and websocket checks share it


def origin_allowed(origin: str, allowed: Sequence[str], hosts: Iterable[str]) -> bool:
    """`origin` is in `allowed` (or it has "*"), or names one of this server's `hosts`."""
    origins = {o.strip().rstrip("/").lower() for o in allowed}
    if "*" in origins or origin.rstrip("/").lower() in origins:
        return True
    netloc = urlsplit(origin).netloc.lower()
    return bool(netloc) and netloc in {h.strip().lower() for h in hosts if h.strip()}


def websocket_origin_check(
    allowed: Sequence[str], refused: RefusedOrigins = REFUSED
) -> Callable[[str | None, dict[str, Any]], bool]:
    """An origin check for python-engineio's `cors_allowed_origins` (it accepts a callable).

    Allowed: the server's own origin (the Chainlit UI; same host as the request's Host or
    X-Forwarded-Host header, any scheme), every origin in `allowed` (CORS_ORIGINS), or any origin
    when `allowed` contains "*". engineio calls it only when the request has an Origin header:
    non-browser clients send none, and CORS does not concern them. A refusal is logged once per
    origin (`refused`).
    """

    def check(origin: str | None, environ: dict[str, Any] | None = None) -> bool:
        if origin is None:
            return True
        env = environ or {}
        hosts = [env.get("HTTP_HOST", ""), *env.get("HTTP_X_FORWARDED_HOST", "").split(",")]
        if origin_allowed(origin, allowed, hosts):
            return True
        refused.report(origin, "websocket")
        return False

    return check


class CorsRefusalLog:
    """Pure ASGI: log (once per origin, `refused`) an HTTP request from a browser origin that
    CORS_ORIGINS does not allow. It only logs: the CORS middlewares (Chainlit's, the API's)
    decide what the browser may read."""

    def __init__(
        self, app: ASGIApp, *, allowed: Sequence[str], refused: RefusedOrigins = REFUSED
    ) -> None:
        self.app = app
        self.allowed = list(allowed)
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
            origin = _header(headers, b"origin").decode("latin-1")
            if origin:
                forwarded = _header(headers, b"x-forwarded-host").decode("latin-1")
                hosts = [_header(headers, b"host").decode("latin-1"), *forwarded.split(",")]
                if not origin_allowed(origin, self.allowed, hosts):
                    self.refused.report(origin, "http")
        await self.app(scope, receive, send)


def peer_address(environ: Mapping[str, Any]) -> str | None:
    """The client's IP address for a socket.io connection (python-engineio's WSGI-like environ).

    Taken from the connection's ASGI scope (`environ["asgi.scope"]["client"]`), never from
    `REMOTE_ADDR`: python-engineio's ASGI driver always sets that to 127.0.0.1. The scope's client
    is what the HTTP API sees as `request.client` too: uvicorn's ProxyHeadersMiddleware (on under
    `chainlit run`) has replaced it by the `X-Forwarded-For` client only when the direct peer is
    a trusted proxy (FORWARDED_ALLOW_IPS, loopback by default); from any other peer the header is
    ignored. None when the server does not know the peer (e.g. a Unix socket).
    """
    scope = environ.get("asgi.scope")
    client = scope.get("client") if isinstance(scope, Mapping) else None
    if isinstance(client, list | tuple) and client and isinstance(client[0], str) and client[0]:
        return client[0]
    return None
