"""Many chat-UI sessions at once against one `chainlit run` process (issue 11, first defect).

Chainlit 2.12 opened each websocket session with a nested `run_until_complete` (chat profiles
under nest_asyncio): every connection set up at the same time added ~40 frames to the stack,
and about 25 of them reached Python's recursion limit. With faqbot's workaround
(faqbot_chainlit/patches.py `sync_session_config`) every session must connect and be answered.

Bounded for CI: 100 sessions, one question each, on loopback (about 3 s on 2 busy cores; the
defect failed half of them). `bench/ws_load.py` runs the same scenario at other sizes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.e2e_support import (
    ChatClient,
    chainlit_server,
    loopback_address,
    loopback_aliases_work,
    server_log,
    server_logs_on_failure,
)

pytestmark = pytest.mark.chainlit
SESSIONS = 100
WAIT_S = 30.0  # per step: generous for a loaded CI machine; the defect fails fast anyway
QUESTION = "Do you offer discounts for annual subscriptions?"
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    # The default rate limit stays on: each simulated user connects from its own address. Where
    # the machine has only 127.0.0.1, everyone shares one bucket: lift the limit instead.
    env = (
        {}
        if loopback_aliases_work()
        else {"RATE_LIMIT_REQUESTS": "100000", "MAX_STREAMS_PER_CLIENT": "0"}
    )
    with chainlit_server(env) as url:
        yield url


async def _session(url: str, i: int) -> str:
    """Connect, ask, disconnect; return "" on success, else what went wrong."""
    addr = loopback_address(i) if loopback_aliases_work() else None
    try:
        async with ChatClient(url, local_addr=addr, connect_timeout=WAIT_S) as chat:
            turn = await chat.ask(QUESTION, wait_s=WAIT_S)
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    if turn.errors:
        return f"error message: {turn.errors[0][:200]}"
    if not turn.reply.startswith(DISCOUNT):
        return f"unexpected reply: {turn.reply[:200]}"
    return ""


async def test_100_concurrent_ui_sessions_connect_and_are_answered(url: str) -> None:
    results = await asyncio.gather(*(_session(url, i) for i in range(SESSIONS)))
    failures = [r for r in results if r]
    log = server_log(url, tail=10**9)
    assert failures == [], f"{len(failures)}/{SESSIONS} sessions failed, e.g. {failures[:3]}"
    assert "RecursionError" not in log
    assert "Exception in ASGI application" not in log


async def test_the_server_still_answers_after_the_burst(url: str) -> None:
    """No state left broken by the burst (sessions, tasks, rate-limit store)."""
    async with ChatClient(url, local_addr=None) as chat:
        turn = await chat.ask(QUESTION)
    assert turn.reply.startswith(DISCOUNT)
