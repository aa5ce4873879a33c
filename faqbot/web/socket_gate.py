"""`SocketGate`: the front door's gates on Chainlit's socket.io events (python-socketio).

Chainlit takes the thread id of a new session from the client (`auth.threadId` in the
handshake) and stores every message it receives before the app's `on_message` runs, so
(issue 20):

- a client-chosen id reached the data layer's SQL (an injection, see
  faqbot/store/chainlit_layer.py) and could name another visitor's (or an API) conversation,
  whose history it then wrote into and renamed;
- a message refused as too long, or over the rate limit, was stored all the same.

The gate wraps Chainlit's own handlers (no Chainlit import: it takes the socket.io server):

- `connect`: the session id must be a UUID (else the connection is refused); a thread id that
  is not a UUID, or names a thread that is stored or live and not the connecting user's own,
  is dropped, so the session starts a new thread of its own.
- `client_message` / `edit_message`: a message id that is not a UUID, text over
  `max_chars`, or a client over its rate limit gets a reply that is shown and never stored;
  Chainlit (and the data layer) never see the message.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from faqbot.errors import RateLimitedError
from faqbot.logs import get_logger
from faqbot.state.ratelimit import RateLimiter
from faqbot.validation import too_long
from faqbot.web.front_door import is_uuid

log = get_logger("faqbot.web.socket_gate")
Handler = Callable[..., Awaitable[Any]]
# (stored?, signed-in author or None) of a thread id
ThreadAuthor = Callable[[str], Awaitable[tuple[bool, str | None]]]
INVALID_MESSAGE = "Sorry, this message could not be read. Please send it again."


class SocketGate:
    """Wraps a python-socketio AsyncServer's connect and message handlers (see module doc)."""

    def __init__(
        self,
        *,
        limiter: RateLimiter,
        max_chars: int,
        author: str,
        thread_author: ThreadAuthor | None,
        live_thread: Callable[[str, str, str | None], bool],
        user_of: Callable[[dict[str, Any]], str | None],
        client_of: Callable[[str], str],
    ) -> None:
        """`live_thread(thread_id, session_id, user)`: another's live session holds that thread;
        `user_of(environ)`: the signed-in user of a handshake; `client_of(sid)`: the rate-limit
        bucket of a connected socket."""
        self.limiter = limiter
        self.max_chars = max_chars
        self.author = author
        self.thread_author = thread_author
        self.live_thread = live_thread
        self.user_of = user_of
        self.client_of = client_of

    def install(self, sio: Any, namespace: str = "/") -> None:
        """Wrap the namespace's handlers (once: a second call is refused)."""
        handlers: dict[str, Handler] = sio.handlers[namespace]
        if getattr(handlers.get("connect"), "faqbot_gate", False):
            raise RuntimeError("the socket gate is already installed")
        wrapped: dict[str, Callable[..., Awaitable[Any]]] = {
            "connect": self._connect,
            "client_message": self._message,
            "edit_message": self._message,
        }
        for event, gate in wrapped.items():
            if event in handlers:
                handlers[event] = self._wrap(gate, handlers[event], sio)

    @staticmethod
    def _wrap(gate: Callable[..., Awaitable[Any]], inner: Handler, sio: Any) -> Handler:
        async def handler(*args: Any) -> Any:
            return await gate(inner, sio, *args)

        handler.faqbot_gate = True  # type: ignore[attr-defined]
        return handler

    async def _connect(self, inner: Handler, sio: Any, sid: str, environ: Any, auth: Any) -> Any:
        if not isinstance(auth, dict) or not is_uuid(auth.get("sessionId")):
            log.info("socket.refused", reason="session id")
            raise ConnectionRefusedError("invalid session")
        thread_id = auth.get("threadId")
        if thread_id and not await self._may_resume(str(thread_id), environ, auth["sessionId"]):
            auth = {**auth, "threadId": None}  # a new thread of its own
        return await inner(sid, environ, auth)

    async def _may_resume(self, thread_id: str, environ: Any, session_id: str) -> bool:
        """A handshake may name a thread only if it is a UUID and the connecting user's own."""
        if not is_uuid(thread_id):
            log.warning("socket.thread_id_refused", reason="not a UUID")
            return False
        user = self.user_of(environ) if isinstance(environ, dict) else None
        if self.live_thread(thread_id, session_id, user):
            log.warning("socket.thread_id_refused", reason="live in another session")
            return False
        if self.thread_author is None:
            return True
        stored, author = await self.thread_author(thread_id)
        if stored and (user is None or author != user):
            log.warning("socket.thread_id_refused", reason="not the visitor's thread")
            return False
        return True

    async def _message(self, inner: Handler, sio: Any, sid: str, payload: Any) -> Any:
        refusal = await self._refusal(sid, payload)
        if refusal is not None:
            await self._tell(sio, sid, refusal)
            return None
        return await inner(sid, payload)

    async def _refusal(self, sid: str, payload: Any) -> str | None:
        """Why a message is not taken (shown to the visitor, never stored), or None. Every
        message counts toward the client's rate limit, refused ones too (as API POSTs do)."""
        try:
            await self.limiter.check(self.client_of(sid))
        except RateLimitedError as exc:
            return exc.user_message
        message = payload.get("message") if isinstance(payload, dict) else None
        if not isinstance(message, dict) or not is_uuid(message.get("id")):
            return INVALID_MESSAGE
        text = message.get("output")
        if not isinstance(text, str):
            return INVALID_MESSAGE
        if len(text) > self.max_chars:
            log.info("socket.message_too_long", chars=len(text), limit=self.max_chars)
            return too_long(len(text), self.max_chars)
        return None

    async def _tell(self, sio: Any, sid: str, text: str) -> None:
        """Show `text` as the bot's reply, without a data layer write, and end the task."""
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
        step = {
            "id": str(uuid.uuid4()),
            "threadId": "",
            "name": self.author,
            "type": "assistant_message",
            "output": text,
            "createdAt": now,
            "start": now,
            "end": now,
            "streaming": False,
            "isError": False,
            "metadata": {},
        }
        await sio.emit("task_start", to=sid)  # as a turn does: the UI's "running" state ends
        await sio.emit("new_message", step, to=sid)
        await sio.emit("task_end", to=sid)
