"""Sessions that must end before their token expires: erased or removed users.

Chainlit's session is a signed JWT (cookie `access_token`, possibly chunked `access_token_0`,
`_1`, ..., or `Authorization: Bearer`) that stays valid for its whole lifetime: it cannot be
taken back. `SessionCheck` is one pure-ASGI middleware in front of everything the app serves
(Chainlit's routes, the socket.io handshake, /api) that refuses a session when

- its user was erased: `python -m faqbot delete-user` wrote a revocation (faqbot/store/
  revocations.py) after the token was issued (`iat`); or
- its user was removed: a password session (`metadata.provider == "password"`) whose user is no
  longer in AUTH_USERS, or a header session once AUTH_HEADER is unset.

A refused credential is taken away: the request goes on without it (so every route answers as
it does to an anonymous visitor: 401 where sign-in is required) and the response clears the
cookie; a websocket handshake carrying one is closed (HTTP 403). An open websocket whose user is
revoked meanwhile is closed at its next message (socket.io pings every 25 s), so a chat tab does
not outlive the revocation either. Checking here, not in the data layer, matters: Chainlit
signs in with the token alone when its data layer fails.

faqbot knows nothing of Chainlit: the app passes `decode` (token -> its claims; raises when the
token is not a valid session) and the cookie's name.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faqbot.config import Settings
from faqbot.logs import get_logger
from faqbot.store.revocations import REFRESH_S, RevocationList

log = get_logger("faqbot.web.session_check")
Claims = Mapping[str, Any]
CLAIMS_KEPT = 4096  # verified tokens remembered (one per active session)
Decode = Callable[[str], Claims]


@dataclass(frozen=True)
class SessionPolicy:
    """Which signed sessions still stand."""

    settings: Settings
    revocations: RevocationList | None = None

    async def refusal(self, claims: Claims) -> str | None:
        """Why this session no longer stands ("removed", "revoked"), or None."""
        identifier = str(claims.get("identifier") or "")
        metadata = claims.get("metadata")
        provider = metadata.get("provider") if isinstance(metadata, Mapping) else None
        if provider == "password" and identifier not in self.settings.auth_users:
            return "removed"
        if provider == "header" and self.settings.auth_header is None:
            return "removed"
        if self.revocations is not None:
            revoked_at = await self.revocations.revoked_at(identifier)
            issued = claims.get("iat")
            issued_at = float(issued) if isinstance(issued, int | float) else 0.0
            if revoked_at is not None and issued_at <= revoked_at:
                return "revoked"
        return None


def _cookies(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """As Starlette (and so Chainlit) parses them."""
    cookies: dict[str, str] = {}
    for key, value in headers:
        if key == b"cookie":
            cookies.update(cookie_parser(value.decode("latin-1")))
    return cookies


class SessionCheck:
    """Pure ASGI: refuse revoked and removed sessions (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        decode: Decode,
        policy: SessionPolicy,
        cookie_name: str = "access_token",
        cookie_path: str = "/",
        recheck_s: float = REFRESH_S,
    ) -> None:
        self.app = app
        self.decode = decode
        self.policy = policy
        self.cookie_name = cookie_name
        self.cookie_path = cookie_path
        self.recheck_s = recheck_s
        self._verified: OrderedDict[str, Claims] = OrderedDict()

    def _is_session_cookie(self, name: str) -> bool:
        prefix = f"{self.cookie_name}_"
        return name == self.cookie_name or (
            name.startswith(prefix) and name[len(prefix) :].isdigit()
        )

    def _cookie_token(self, cookies: dict[str, str]) -> str | None:
        """As Chainlit reads it: the plain cookie, else the chunks _0, _1, ... joined."""
        if token := cookies.get(self.cookie_name):
            return token
        chunks, i = [], 0
        while f"{self.cookie_name}_{i}" in cookies:
            chunks.append(cookies[f"{self.cookie_name}_{i}"])
            i += 1
        return "".join(chunks) or None

    @staticmethod
    def _bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
        for key, value in headers:
            if key == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    return token.strip()
        return None

    def _claims(self, token: str | None) -> Claims | None:
        """The token's claims, or None. Verified once per token (an HS256 check costs ~75 us
        here and every request of a session carries the same one), then kept until it
        expires; only good tokens are kept, at most CLAIMS_KEPT of them."""
        if not token:
            return None
        if (kept := self._verified.get(token)) is not None:
            expires = kept.get("exp")
            if not isinstance(expires, int | float) or expires > time.time():
                self._verified.move_to_end(token)
                return kept
            del self._verified[token]
        try:
            claims = self.decode(token)
        except Exception:  # not a session token of this app (or expired): not ours to judge
            return None
        self._verified[token] = claims
        if len(self._verified) > CLAIMS_KEPT:
            self._verified.popitem(last=False)
        return claims

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
        cookies = _cookies(headers)
        from_cookie = self._claims(self._cookie_token(cookies))
        from_header = self._claims(self._bearer(headers))
        reason = None
        for claims in (from_cookie, from_header):
            if claims is not None and (reason := await self.policy.refusal(claims)):
                break
        if reason is not None:
            log.info("session.refused", reason=reason, path=str(scope.get("path", ""))[:200])
            if scope["type"] == "websocket":
                await self._close_handshake(receive, send)
                return
            stale = [name for name in cookies if self._is_session_cookie(name)]
            await self.app(self._without_credentials(scope, headers), receive,
                           self._clearing(send, stale))  # fmt: skip
            return
        live = from_cookie or from_header
        if scope["type"] == "websocket" and live is not None:
            receive = self._rechecking(live, receive, send)
        await self.app(scope, receive, send)

    @staticmethod
    async def _close_handshake(receive: Receive, send: Send) -> None:
        message = await receive()  # websocket.connect
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": 1008})

    def _without_credentials(self, scope: Scope, headers: list[tuple[bytes, bytes]]) -> Scope:
        """The request as an anonymous visitor sends it: no session cookie, no bearer."""
        kept: list[tuple[bytes, bytes]] = []
        for key, value in headers:
            bearer = value[7:].decode("latin-1").strip()
            session = value[:7].lower() == b"bearer " and self._claims(bearer) is not None
            if key == b"authorization" and session:
                continue
            if key == b"cookie":
                parts = [p for p in value.decode("latin-1").split(";") if p.strip()]
                rest = [p for p in parts if not self._is_session_cookie(p.split("=", 1)[0].strip())]
                if not rest:
                    continue
                value = ";".join(rest).strip().encode("latin-1")
            kept.append((key, value))
        return {**scope, "headers": kept}

    def _clearing(self, send: Send, stale: list[str]) -> Send:
        """Clear the stale session cookies, unless the response sets them itself (a sign-in)."""

        async def clearing(message: Message) -> None:
            if message["type"] == "http.response.start" and stale:
                headers = list(message.get("headers", []))
                set_now = {
                    v.decode("latin-1").split("=", 1)[0].strip()
                    for k, v in headers
                    if k.lower() == b"set-cookie"
                }
                for name in stale:
                    if name not in set_now:
                        headers.append((b"set-cookie", self._expired(name)))
                message = {**message, "headers": headers}
            await send(message)

        return clearing

    def _expired(self, name: str) -> bytes:
        return (
            f'{name}=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; '
            f"Path={self.cookie_path}; HttpOnly; SameSite=lax"
        ).encode("latin-1")

    def _rechecking(self, claims: Claims, receive: Receive, send: Send) -> Receive:
        """An open websocket: at a message, at most every `recheck_s`, ask the policy again;
        refused, close the socket and tell the app the client left."""
        checked = time.monotonic()

        async def rechecking() -> Message:
            nonlocal checked
            message = await receive()
            if (
                message["type"] != "websocket.receive"
                or time.monotonic() - checked < self.recheck_s
            ):
                return message
            checked = time.monotonic()
            if reason := await self.policy.refusal(claims):
                log.info("session.closed", reason=reason)
                with contextlib.suppress(Exception):  # already closing: the client is gone
                    await send({"type": "websocket.close", "code": 1008})
                return {"type": "websocket.disconnect", "code": 1008}
            return message

        return rechecking
