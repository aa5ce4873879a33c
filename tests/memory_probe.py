"""Debug-only app for memory investigations: chainlit_app.py plus one read-only probe route.

    chainlit run tests/memory_probe.py --headless --port 8000   (from the repository root)

Used by tests/test_session_memory.py and bench/session_memory.py. Never deploy it:
`GET /_probe/memory` tells anyone how many sessions the process holds.
It answers with the process RSS, the sessions Chainlit keeps (`ws_sessions_id`, by session id;
`user_sessions`, the `cl.user_session` dicts; `chat_contexts`, each session's messages), live
objects by type (after `gc.collect()`), and,
when the process runs under tracemalloc (`PYTHONTRACEMALLOC=1`), the allocation sites that grew
most since the previous call. `?trim=1` also gives freed heap back to the OS (`malloc_trim`), to
tell memory still in use from memory the allocator merely keeps.

`SOAK_SESSION_TIMEOUT` (seconds), when set, overrides `[project] session_timeout` of
.chainlit/config.toml, so that the release after the timeout can be watched in minutes;
`SOAK_KEPT_DISCONNECTED` overrides how many disconnected sessions chainlit_app.py keeps.
`?holders=<type name>` adds referrer chains of one live object of that type (who keeps it).
"""

from __future__ import annotations

import collections
import ctypes
import gc
import importlib
import os
import tracemalloc
from typing import Any

import chainlit.server as cl_server
from chainlit.chat_context import chat_contexts
from chainlit.config import config as cl_config
from chainlit.session import ws_sessions_id, ws_sessions_sid
from chainlit.user_session import user_sessions
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

# The real app (its handlers, API and middleware); PROBE_APP_MODULE names another version of it
# on sys.path, e.g. an older chainlit_app.py saved under another name, for before/after runs.
chainlit_app = importlib.import_module(os.environ.get("PROBE_APP_MODULE", "chainlit_app"))

if os.environ.get("SOAK_SESSION_TIMEOUT"):
    cl_config.project.session_timeout = int(os.environ["SOAK_SESSION_TIMEOUT"])
if os.environ.get("SOAK_KEPT_DISCONNECTED"):
    chainlit_app.KEPT_DISCONNECTED = int(os.environ["SOAK_KEPT_DISCONNECTED"])

WATCHED_TYPES = ("WebsocketSession", "Message", "Step", "Action", "Task", "Future", "ChatTurn")
_previous: list[tracemalloc.Snapshot] = []


def rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _objects_by_type() -> dict[str, int]:
    counts: collections.Counter[str] = collections.Counter(
        type(o).__name__ for o in gc.get_objects()
    )
    watched = {name: counts.get(name, 0) for name in WATCHED_TYPES}
    return {"total": sum(counts.values()), **watched, **dict(counts.most_common(8))}


def _tracemalloc_growth(limit: int = 12) -> list[str]:
    if not tracemalloc.is_tracing():
        return []
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    growth: list[str] = []
    if _previous:
        stats = snapshot.compare_to(_previous[-1], "lineno")
        growth = [str(s) for s in stats[:limit]]
    _previous[:] = [snapshot]
    return growth


def _describe(o: Any) -> str:
    if isinstance(o, dict):
        keys = list(o)[:6]
        return f"dict(len={len(o)}, keys={keys!r})"
    if isinstance(o, list | tuple | set):
        return f"{type(o).__name__}(len={len(o)})"
    return f"{type(o).__module__}.{type(o).__qualname__}"


def _holders(type_name: str, depth: int = 4) -> list[list[str]]:
    """Referrer chains (up to `depth`) of one live object of `type_name`: who keeps it."""
    found = [o for o in gc.get_objects() if type(o).__name__ == type_name]
    if not found:
        return []
    chains: list[list[str]] = []
    frontier: list[tuple[Any, list[str]]] = [(found[-1], [type_name])]
    ignore = {id(found), id(frontier)}
    for _ in range(depth):
        nxt: list[tuple[Any, list[str]]] = []
        for obj, chain in frontier:
            for ref in gc.get_referrers(obj)[:5]:
                if id(ref) in ignore or type(ref).__name__ == "frame":
                    continue
                nxt.append((ref, [*chain, _describe(ref)]))
        frontier = nxt[:10]
        ignore.add(id(frontier))
    chains = [chain for _, chain in frontier]
    return chains


async def memory(request: Request) -> JSONResponse:
    gc.collect()
    before_trim = rss_kb()
    if request.query_params.get("trim"):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    body: dict[str, Any] = {
        "rss_kb": rss_kb(),
        "rss_kb_before_trim": before_trim,
        "ws_sessions_id": len(ws_sessions_id),
        "ws_sessions_sid": len(ws_sessions_sid),
        "user_sessions": len(user_sessions),
        "chat_contexts": len(chat_contexts),
        "disconnected_tracked": len(getattr(chainlit_app, "_disconnected", ())),
        "session_timeout": cl_config.project.session_timeout,
        "objects": _objects_by_type(),
        "tracemalloc_growth": _tracemalloc_growth(),
    }
    if request.query_params.get("holders"):
        body["holders"] = _holders(request.query_params["holders"])
    return JSONResponse(body)


async def set_timeout(request: Request) -> JSONResponse:
    """POST /_probe/session_timeout?seconds=N: later disconnects are kept N seconds."""
    cl_config.project.session_timeout = int(request.query_params["seconds"])
    return JSONResponse({"session_timeout": cl_config.project.session_timeout})


cl_server.app.router.routes[:0] = [
    Route("/_probe/memory", memory, methods=["GET"]),
    Route("/_probe/session_timeout", set_timeout, methods=["POST"]),
]
