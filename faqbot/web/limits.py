"""`RequestGate`: every API POST is counted against its client's rate limit, and every request
body is capped, before any route reads or parses it.

Why at the ASGI level: FastAPI reads a JSON body whole (Starlette's `request.body()`) and only
then validates it, so a 200 MB body cost 200+ MB of memory before its 422; and a route could
count a request only after validation, so invalid requests were free. The gate runs in front of
the routes: it counts the POST, refuses a Content-Length over the cap at once (no 100-continue
is sent, the body never comes), and otherwise reads the body as it streams in, counting bytes,
so a chunked body (no Content-Length) or one longer than it claimed is stopped at the cap too.
The body, at most MAX_BODY_BYTES, is then replayed to the routes.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faqbot.errors import RateLimitedError
from faqbot.state.ratelimit import RateLimiter
from faqbot.web.errors import error_response, rate_limited_response
from faqbot.web.schemas import MAX_BODY_BYTES

__all__ = ["MAX_BODY_BYTES", "RequestGate"]
COUNTED_METHODS = frozenset({"POST"})  # every API POST counts, valid or not


def client_key(scope: Scope) -> str:
    """The rate-limit bucket of the request's client, as the chat UI names it (`ip:<addr>`)."""
    client = scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}"


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None when absent or not a number (chunked bodies)."""
    for name, value in scope.get("headers") or []:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def too_large(limit: int) -> ASGIApp:
    """The 413 answer (ErrorResponse); `Connection: close` because the body is left unread."""
    detail = f"The request body must be at most {limit} bytes."
    response = error_response(413, "Request body too large", "PAYLOAD_TOO_LARGE", detail)
    response.headers["Connection"] = "close"
    return response


async def read_capped(receive: Receive, limit: int) -> list[Message] | None:
    """The body's messages as they arrive, or None once they pass `limit` bytes."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages  # http.disconnect: the route will see the client went away
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body", False):
            return messages


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` giving the buffered body messages first, then the connection's own."""
    pending = list(messages)

    async def receive_again() -> Message:
        return pending.pop(0) if pending else await receive()

    return receive_again


class RequestGate:
    """ASGI middleware: count each POST, then cap the body at `max_body` bytes (413)."""

    def __init__(
        self, app: ASGIApp, *, limiter: RateLimiter, max_body: int = MAX_BODY_BYTES
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in COUNTED_METHODS:
            try:
                await self.limiter.check(client_key(scope))
            except RateLimitedError as exc:
                await rate_limited_response(exc)(scope, receive, send)
                return
        if (declared_length(scope) or 0) > self.max_body:
            await too_large(self.max_body)(scope, receive, send)
            return
        messages = await read_capped(receive, self.max_body)
        if messages is None:
            await too_large(self.max_body)(scope, receive, send)
            return
        await self.app(scope, replay(messages, receive), send)
