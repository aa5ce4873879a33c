"""A Chainlit visitor who leaves mid-answer cancels the LLM call; it is no provider failure
(issue 14, item 6, the socket.io side; tests/test_abandoned_requests.py covers SSE).

Two ways to leave: the Stop button (the `stop` event: Chainlit cancels the running turn) and a
closed socket (tab closed, network lost). Chainlit itself leaves a turn running when the socket
closes, so before, the LLM call went on for nobody and a stalled one ended as a timeout counted
against the provider: one visitor closing a tab during an outage of a few seconds opened the
breaker for everyone. Now the app cancels a turn whose socket stays gone RECONNECT_GRACE_S.

Real parts: `chainlit run` on a loopback port, the socket.io client of the web UI
(tests/e2e_support.py), the fake OpenAI server recording when each call ended and whether its
client went away. CIRCUIT_FAILURE_THRESHOLD=1: one counted failure would open the breaker, and
/api/health says it did not; the next question then reaches the LLM.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from tests import fake_openai as fo
from tests.e2e_support import ChatClient, chainlit_server, server_logs_on_failure

pytestmark = [pytest.mark.chainlit, pytest.mark.llm]
QUESTION = "Do you offer discounts for annual subscriptions?"
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
DEADLINE_S = 4.0  # LLM_FIRST_TOKEN_SECONDS: an abandoned stalled call that ran on would count
GRACE_S = 2.0  # chainlit_app.RECONNECT_GRACE_S
LONG = " ".join(["Yes, annual plans are discounted by twenty percent."] * 8)  # ~64 words


class RecordingFake(fo.FakeOpenAI):
    """The fake provider, noting when each call ended and whether its client had left."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    async def _hang(self, request: Request, seconds: float) -> None:  # type: ignore[override]
        record: dict[str, Any] = {"kind": "hang", "start": time.monotonic(), "end": None}
        self.calls.append(record)
        await fo.FakeOpenAI._hang(request, seconds)
        record["client_gone"] = await request.is_disconnected()
        record["end"] = time.monotonic()

    async def _sse(
        self, body: dict[str, Any], reply: fo.Reply, usage: dict[str, int], bill: fo.Bill
    ) -> AsyncIterator[str]:
        record: dict[str, Any] = {"kind": "stream", "start": time.monotonic(), "end": None}
        record["finished"] = False
        self.calls.append(record)
        try:
            async for piece in super()._sse(body, reply, usage, bill):
                yield piece
            record["finished"] = True
        finally:  # cancelled by the server when the client closes the connection
            record["end"] = time.monotonic()


@pytest.fixture(scope="module")
def provider() -> Iterator[RecordingFake]:
    fake = RecordingFake().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def url(provider: RecordingFake) -> Iterator[str]:
    env = {
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": provider.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "LLM_FIRST_TOKEN_SECONDS": str(DEADLINE_S),
        "CIRCUIT_FAILURE_THRESHOLD": "1",
        "ANSWER_CACHE_TTL": "0",
        "RATE_LIMIT_REQUESTS": "1000",
    }
    with chainlit_server(env) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(provider: RecordingFake, request: pytest.FixtureRequest) -> Iterator[None]:
    provider.reset()
    provider.calls.clear()
    yield from server_logs_on_failure(request)


async def started_call(provider: RecordingFake, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while not provider.calls or provider.calls[-1]["kind"] != kind:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return provider.calls[-1]


async def first_token(chat: ChatClient) -> None:
    async with asyncio.timeout(10):
        while not chat.turn.tokens:  # noqa: ASYNC110 - socket.io events fill the turn
            await asyncio.sleep(0.02)


async def ended(record: dict[str, Any], wait_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait_s
    while record["end"] is None and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    assert record["end"] is not None, "the provider call is still running"
    return record


async def breaker(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        health = (await client.get("/api/health")).json()
    return dict(health["circuit_breaker"])


async def assert_no_failure_and_the_llm_answers(url: str, provider: RecordingFake) -> None:
    """Past the first-token deadline of the abandoned call: no failure counted, breaker closed,
    and a new question is answered by the LLM."""
    state = await breaker(url)
    assert state["consecutive_failures"] == 0, state
    assert state["state"] == "closed", state
    provider.script(fo.tool("faq_sales", question=QUESTION), fo.text(DISCOUNT))
    seen = len(provider.requests)
    async with ChatClient(url) as chat:
        turn = await chat.ask(QUESTION)
    assert len(provider.requests) == seen + 2  # router + answer: the LLM was asked
    assert turn.text == DISCOUNT
    assert "fallback" not in turn.reply


async def test_stop_during_a_stalled_call_cancels_it(url: str, provider: RecordingFake) -> None:
    provider.script(fo.hang(30))
    async with ChatClient(url) as chat:
        sent = await chat.send(QUESTION)
        call = await started_call(provider, "hang")
        await chat.stop()
        stopped = time.monotonic()
        await chat.wait_turn(5, "stop", sent)
    await ended(call, 3)
    print(f"stalled call ended {call['end'] - stopped:.3f} s after Stop")
    assert call["end"] - stopped < 1.0
    assert call["client_gone"] is True  # cancelled by the app, not a timeout
    await asyncio.sleep(max(0.0, sent + DEADLINE_S + 0.5 - time.monotonic()))
    await assert_no_failure_and_the_llm_answers(url, provider)


async def test_stop_mid_stream_cancels_the_answer_call(url: str, provider: RecordingFake) -> None:
    provider.script(fo.tool("faq_sales", question=QUESTION), fo.text(LONG, tokens_per_second=10))
    async with ChatClient(url) as chat:
        sent = await chat.send(QUESTION)
        await first_token(chat)
        call = provider.calls[-1]
        await chat.stop()
        stopped = time.monotonic()
        turn = await chat.wait_turn(5, "stop", sent)
    await ended(call, 3)
    assert call["end"] - stopped < 1.0
    assert call["finished"] is False  # the stream was cut, not read to its end
    assert len(turn.tokens) < 30
    await assert_no_failure_and_the_llm_answers(url, provider)


async def test_a_socket_closed_during_a_stalled_call_cancels_it(
    url: str, provider: RecordingFake
) -> None:
    provider.script(fo.hang(30))
    chat = ChatClient(url)
    async with chat:
        sent = await chat.send(QUESTION)
        call = await started_call(provider, "hang")
    closed = time.monotonic()  # the tab is gone
    await ended(call, GRACE_S + 3)
    print(f"stalled call ended {call['end'] - closed:.3f} s after the socket closed")
    assert call["end"] - closed < GRACE_S + 1.0
    assert call["client_gone"] is True
    await asyncio.sleep(max(0.0, sent + DEADLINE_S + 0.5 - time.monotonic()))
    await assert_no_failure_and_the_llm_answers(url, provider)


async def test_a_socket_closed_mid_stream_cancels_the_answer_call(
    url: str, provider: RecordingFake
) -> None:
    provider.script(
        fo.tool("faq_sales", question=QUESTION), fo.text(LONG, tokens_per_second=8)
    )  # about 8 s of answer
    async with ChatClient(url) as chat:
        await chat.send(QUESTION)
        await first_token(chat)
        call = provider.calls[-1]
    closed = time.monotonic()
    await ended(call, GRACE_S + 3)
    print(f"answer stream ended {call['end'] - closed:.3f} s after the socket closed")
    assert call["end"] - closed < GRACE_S + 1.0
    assert call["finished"] is False
    await assert_no_failure_and_the_llm_answers(url, provider)


async def test_a_socket_back_within_the_grace_keeps_its_answer(
    url: str, provider: RecordingFake
) -> None:
    """A network blip is not a visitor leaving: the same session reconnects at once, the answer
    goes on streaming to the new socket and completes; the LLM stream is read to its end."""
    provider.script(
        fo.tool("faq_sales", question=QUESTION), fo.text(LONG, tokens_per_second=16)
    )  # about 4 s of answer, longer than the grace
    async with ChatClient(url) as chat:
        await chat.send(QUESTION)
        await first_token(chat)
        call = provider.calls[-1]
        await chat.reconnect()
        async with asyncio.timeout(15):
            while not any(LONG in str(m.get("output")) for m in chat.turn.replies):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    await ended(call, 3)
    assert call["finished"] is True  # not cancelled although the first socket closed
    assert call["end"] - call["start"] > GRACE_S
    assert chat.turn.text.startswith("Yes")
    state = await breaker(url)
    assert state["consecutive_failures"] == 0
