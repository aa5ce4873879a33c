"""Chainlit sessions as faqbot sees them: whose they are, and the end of abandoned ones."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from faqbot.logs import get_logger
from faqbot.web.security import peer_address

log = get_logger("faqbot.chainlit")


def session_client(session: Any) -> str:
    """The rate-limit bucket: the signed-in user, else the client's address, as the API's.

    Not the socket.io environ's REMOTE_ADDR: python-engineio's ASGI driver always writes
    127.0.0.1 there. The address comes from the connection's ASGI scope (see
    `faqbot.web.security.peer_address`: X-Forwarded-For counts only from a trusted proxy).
    """
    user = getattr(session, "user", None)
    if user is not None:
        return f"user:{user.identifier}"
    environ: dict[str, Any] = getattr(session, "environ", {}) or {}
    address = peer_address(environ)
    return f"ip:{address}" if address else f"session:{session.id}"


def server_origin(session: Any) -> str:
    """This server's own origin as the browser reached it (for links inside the widget)."""
    environ: dict[str, Any] = getattr(session, "environ", {}) or {}
    proto = "https" if environ.get("HTTP_X_FORWARDED_PROTO") == "https" else "http"
    return f"{proto}://{environ.get('HTTP_HOST', '127.0.0.1')}"


def socket_client(sid: str) -> str:
    """The rate-limit bucket of a socket.io connection (see `session_client`)."""
    from chainlit.session import WebsocketSession

    session = WebsocketSession.get(sid)
    return session_client(session) if session is not None else f"socket:{sid}"


def live_thread(thread_id: str, session_id: str, user: str | None) -> bool:
    """Another live session (not `session_id`), not of the same signed-in user, holds this
    thread (a session is kept 600 s after its socket closes: the user may resume it)."""
    from chainlit.session import ws_sessions_id

    def foreign(s: Any) -> bool:
        owner = getattr(getattr(s, "user", None), "identifier", None)
        return bool(s.id != session_id and (user is None or owner != user))

    return any(s.thread_id == thread_id and foreign(s) for s in list(ws_sessions_id.values()))


def cancel_unless_back(session: Any, grace_s: float, tasks: set[asyncio.Task[Any]]) -> None:
    """The visitor's socket closed (tab closed, network lost) with an answer in progress: cancel
    it unless the session is back within `grace_s`. Chainlit itself leaves the turn running, so
    its LLM call went on for nobody (spending tokens) and a stalled one ended as a timeout
    counted against the provider; cancelled, it is no provider failure (faqbot.answering.bot)."""
    task = getattr(session, "current_task", None)
    if task is None or task.done():
        return
    left_from = getattr(session, "socket_id", None)

    async def cancel_if_gone() -> None:
        await asyncio.sleep(grace_s)
        if getattr(session, "socket_id", None) == left_from and not task.done():
            log.info("chat.abandoned", session_id=session.id)
            task.cancel()

    watcher = asyncio.get_running_loop().create_task(cancel_if_gone())
    tasks.add(watcher)  # keep a reference: the loop holds tasks only weakly
    watcher.add_done_callback(tasks.discard)


async def bound_disconnected(session: Any, kept: OrderedDict[str, None], limit: int) -> None:
    """Bound the sessions kept after their visitors left (issue 14, bench/RESULTS.md "Soak").

    Chainlit keeps a disconnected session (its history, messages, emitter) for `session_timeout`
    seconds so that the same tab can reconnect; a visitor opening and closing sessions in a loop
    could make the process hold as many as it can open in that time. Only the latest `limit`
    (socket ids in `kept`, oldest first) are kept: older ones are released now, as Chainlit
    would at the timeout.
    """
    socket_id = getattr(session, "socket_id", None)
    if socket_id is None:  # not a websocket session: nothing is kept
        return
    kept[socket_id] = None
    while len(kept) > limit:
        socket_id, _ = kept.popitem(last=False)
        await release_session(socket_id)


async def release_session(socket_id: str) -> None:
    """Chainlit's own end of a session (socket.disconnect's `clear`), unless it reconnected."""
    from chainlit.session import WebsocketSession
    from chainlit.user_session import user_sessions

    session = WebsocketSession.get(socket_id)  # None once it reconnected (new socket id)
    if session is not None:
        user_sessions.pop(session.id, None)
        await session.delete()
