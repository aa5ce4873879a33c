"""`FrontDoor`: the gates of /api, applied to the routes Chainlit serves itself.

Chainlit's HTTP routes (`PUT /feedback`, `/project/*`, `/login`, `/auth/*`, ...) sit outside
the API's `RequestGate`, so they had no rate limit, no body cap and took any string as an id
(issue 20). This pure-ASGI middleware stands in front of all of them:

- **Body cap**: a request body over `max_body` bytes gets 413 before it is read.
- **Rate limit**: every request that writes (POST, PUT, PATCH, DELETE) and every read of stored
  conversations (`GET /project/thread/...`, `/project/share/...`) counts toward the client's
  budget, the one shared with the chat and the API (`ip:<addr>`, `user:<id>` signed in).
- **Sign-in throttle**: refused sign-ins (`POST /login`, `/auth/header`, `/auth/jwt` answered
  401/403) count toward a separate, smaller budget per address and per user name (password
  guessing); once one is spent, every attempt is refused (429) until the window frees.
- **Ids**: thread, step, feedback and session ids in the path or in the JSON body must be
  UUIDs; anything else is refused with 400 before Chainlit or its data layer sees it.
- **Requester**: who asks (`faqbot.store.requester`), for the data layer's ownership checks.

/api has its own gate (faqbot/web/limits.py) and socket.io its own (faqbot/web/socket_gate.py);
both paths pass through untouched. SECURITY.md has the map of routes and their gates.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faqbot.errors import RateLimitedError
from faqbot.logs import get_logger
from faqbot.state.ratelimit import RateLimiter
from faqbot.store.requester import Requester, current_requester
from faqbot.web.errors import error_response, rate_limited_response
from faqbot.web.limits import client_key, declared_length, read_capped, replay, too_large
from faqbot.web.schemas import MAX_BODY_BYTES

log = get_logger("faqbot.web.front_door")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SIGN_IN_PATHS = frozenset({"/login", "/auth/header", "/auth/jwt"})
# Paths whose segments after the prefix are ids (thread, element)
ID_PATHS: tuple[tuple[str, ...], ...] = (
    ("project", "thread"),
    ("project", "share"),
)
# Ids inside JSON bodies, by (method, path): dotted keys; `?` marks an optional one
BODY_IDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("PUT", "/feedback"): ("sessionId", "feedback.forId", "feedback.id?", "feedback.threadId?"),
    ("DELETE", "/feedback"): ("feedbackId",),
    ("PUT", "/project/thread"): ("threadId",),
    ("DELETE", "/project/thread"): ("threadId",),
    ("PUT", "/project/thread/share"): ("threadId",),
    ("POST", "/project/threads"): ("pagination.cursor?", "filter.userId?"),
    ("POST", "/project/action"): ("sessionId", "action.id?", "action.forId?"),
    ("PUT", "/project/element"): ("sessionId", "element.id", "element.threadId?", "element.forId?"),
    ("DELETE", "/project/element"): ("sessionId", "element.id", "element.threadId?"),
}
Identify = Callable[[Scope], str | None]


def is_uuid(value: object) -> bool:
    """A UUID in its canonical lower-case text form (what browsers, Chainlit and faqbot make):
    one spelling per id, so an id never names a row under another spelling."""
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _field(body: Any, dotted: str) -> tuple[bool, Any]:
    """(present, value) of a dotted key in a JSON body."""
    value = body
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def bad_body_ids(body: Any, fields: Sequence[str]) -> list[str]:
    """The id fields of `body` that are missing (when required) or not UUIDs."""
    bad = []
    for spec in fields:
        name = spec.rstrip("?")
        present, value = _field(body, name)
        if (not present or value is None) and spec.endswith("?"):
            continue
        if not is_uuid(value):
            bad.append(name)
    return bad


def bad_path_ids(path: str) -> bool:
    """A path under /project/thread/ or /project/share/ whose id segments are not UUIDs."""
    parts = [p for p in path.split("/") if p]
    for prefix in ID_PATHS:
        if tuple(parts[: len(prefix)]) == prefix and len(parts) > len(prefix):
            ids = parts[len(prefix) :: 2]  # thread/<id>/element/<id>
            return not all(is_uuid(i) for i in ids)
    return False


def _invalid_id(fields: Sequence[str]) -> ASGIApp:
    detail = f"Not a valid id: {', '.join(fields)} (ids are UUIDs)."
    return error_response(400, "Invalid id", "INVALID_ID", detail)


class FrontDoor:
    """ASGI middleware applying body cap, rate limits and id checks to non-API routes."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        sign_in_by_address: RateLimiter | None = None,
        sign_in_by_user: RateLimiter | None = None,
        identify: Identify = lambda scope: None,
        max_body: int = MAX_BODY_BYTES,
        passthrough: Sequence[str] = ("/api", "/ws/socket.io"),
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.sign_in_by_address = sign_in_by_address
        self.sign_in_by_user = sign_in_by_user
        self.identify = identify
        self.max_body = max_body
        self.passthrough = tuple(p.rstrip("/") for p in passthrough)

    def _relative(self, scope: Scope) -> str:
        root: str = scope.get("root_path", "")
        path: str = scope["path"]
        return path[len(root) :] if root and path.startswith(root) else path

    def _passes(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.passthrough)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = self._relative(scope) if scope["type"] == "http" else ""
        if scope["type"] != "http" or self._passes(path):
            await self.app(scope, receive, send)
            return
        requester = self._requester(scope)
        refusal = await self._refusal(scope, path, requester)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        messages: list[Message] = []
        if scope["method"] in WRITES:
            capped = await read_capped(receive, self.max_body)
            if capped is None:
                await too_large(self.max_body)(scope, receive, send)
                return
            messages = capped
            refusal = await self._body_refusal(scope, path, messages, requester)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        token = current_requester.set(requester)
        send = self._counting_refusals(path, messages, requester, send)
        try:
            await self.app(scope, replay(messages, receive), send)
        finally:
            current_requester.reset(token)

    def _requester(self, scope: Scope) -> Requester:
        try:
            user = self.identify(scope)
        except Exception:  # an unreadable cookie is no sign-in
            user = None
        return Requester(f"user:{user}", user) if user else Requester(client_key(scope))

    async def _refusal(self, scope: Scope, path: str, who: Requester) -> ASGIApp | None:
        """Refusals decided before the body is read: id in the path, size, rate."""
        if bad_path_ids(path):
            return _invalid_id(["path"])
        method = scope["method"]
        if method in WRITES and (declared_length(scope) or 0) > self.max_body:
            return too_large(self.max_body)
        counted = method in WRITES or (method == "GET" and path.startswith("/project/"))
        if counted and path.startswith(("/project/translations", "/project/settings")):
            counted = False  # the page's own start-up reads
        try:
            if counted:
                await self.limiter.check(who.client)
        except RateLimitedError as exc:
            return rate_limited_response(exc)
        return None

    async def _body_refusal(
        self, scope: Scope, path: str, messages: list[Message], who: Requester
    ) -> ASGIApp | None:
        """Refusals that need the body: ids in JSON, sign-in attempts."""
        body = _body(messages)
        if path in SIGN_IN_PATHS:
            return await self._sign_in_refusal(body, who)
        fields = BODY_IDS.get((scope["method"], path))
        if not fields:
            return None
        try:
            parsed = json.loads(body or b"null")
        except ValueError:
            return None  # Chainlit answers malformed JSON with 422
        bad = bad_body_ids(parsed, fields) if isinstance(parsed, dict) else []
        if bad:
            log.info("front_door.invalid_id", path=path, fields=bad)
            return _invalid_id(bad)
        return None

    def _sign_in_keys(self, body: bytes, who: Requester) -> list[tuple[RateLimiter, str]]:
        """The sign-in budgets an attempt draws on: its address, and the user name it tries."""
        try:
            form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
        except ValueError:
            form = {}
        name = re.sub(r"\s+", " ", (form.get("username") or [""])[0].strip().lower())[:200]
        keys = [(self.sign_in_by_address, f"login:{who.client}")]
        if name:
            keys.append((self.sign_in_by_user, f"login-user:{name}"))
        return [(limiter, key) for limiter, key in keys if limiter is not None]

    async def _sign_in_refusal(self, body: bytes, who: Requester) -> ASGIApp | None:
        """429 while the address or the user name has no sign-in attempt left."""
        try:
            for limiter, key in self._sign_in_keys(body, who):
                await limiter.peek(key)
        except RateLimitedError as exc:
            log.warning("auth.sign_in_throttled", retry_after=exc.retry_after)
            return rate_limited_response(exc)
        return None

    def _counting_refusals(
        self, path: str, messages: list[Message], who: Requester, send: Send
    ) -> Send:
        """`send`, counting a refused sign-in (401/403) against its budgets."""
        if path not in SIGN_IN_PATHS:
            return send
        keys = self._sign_in_keys(_body(messages), who)

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (401, 403):
                for limiter, key in keys:
                    with contextlib.suppress(RateLimitedError):  # spent: the next is refused
                        await limiter.check(key)
            await send(message)

        return watch


def _body(messages: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
