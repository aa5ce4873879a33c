"""Disconnected chat sessions are bounded: released at the timeout, at most KEPT_DISCONNECTED.

Found by bench/session_memory.py (bench/RESULTS.md, "Soak"): Chainlit 2.12 never removed a
session's messages (`chainlit.chat_context.chat_contexts`) when it deleted the session, and kept
every disconnected session `session_timeout` (600 s) however many there were. Runs the real app
under tests/memory_probe.py, which only adds a debug route reading those dicts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e_support import ChatClient, chainlit_server, loopback_address

KEPT = 10


async def probe(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        resp = await http.get("/_probe/memory")
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result


async def settled(url: str, ok: Callable[[dict[str, Any]], bool], wait_s: float = 8.0) -> dict:
    """The probe once `ok` holds (the server handles disconnects asynchronously), or the last."""
    deadline = time.monotonic() + wait_s
    while True:
        state = await probe(url)
        if ok(state) or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.2)


async def short_sessions(url: str, first: int, count: int) -> None:
    for i in range(first, first + count):
        async with ChatClient(url, local_addr=loopback_address(i)) as chat:
            turn = await chat.ask("Do you offer discounts?")
            assert turn.reply
            assert not turn.errors


@pytest.fixture(scope="module")
def server() -> Any:
    with chainlit_server({"SOAK_KEPT_DISCONNECTED": str(KEPT)}, app="tests/memory_probe.py") as url:
        yield url


async def set_session_timeout(url: str, seconds: int) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        (await http.post("/_probe/session_timeout", params={"seconds": seconds})).raise_for_status()


def test_disconnected_sessions_release_everything_and_are_capped(server: str) -> None:
    async def scenario() -> None:
        # A short timeout: each session, and all it held, goes once the timeout passes.
        await set_session_timeout(server, 1)
        await short_sessions(server, 0, KEPT)
        gone = await settled(server, lambda s: s["ws_sessions_id"] == 0 and s["chat_contexts"] == 0)
        assert (gone["ws_sessions_id"], gone["user_sessions"], gone["chat_contexts"]) == (0, 0, 0)
        assert gone["disconnected_tracked"] == 0
        assert gone["objects"]["Message"] == 0  # (Chainlit 2.12 alone kept 2 per session)

        # Chainlit's 600 s timeout: of 30 sessions only the latest KEPT are kept.
        await set_session_timeout(server, 600)
        await short_sessions(server, KEPT, 3 * KEPT)
        kept = await settled(server, lambda s: s["ws_sessions_id"] <= KEPT)
        assert kept["ws_sessions_id"] == KEPT
        assert kept["user_sessions"] == KEPT
        assert kept["chat_contexts"] == KEPT  # messages leave with their session
        assert kept["disconnected_tracked"] == KEPT

    asyncio.run(scenario())
