"""Token budgets hold against an API client that leaves early (issue 20, item 2).

The attack: ask `/api/chat/stream`, read the first token of the answer, close the connection,
ask again. Before: usage was recorded only when a stream completed, so the abandoned answer
calls were never counted while the provider billed their prompts and the tokens it had sent:
against a 5,000-token client budget the provider billed three times the budget, and with
hybrid ranking (confident questions skip the router call) the budget never held at all.

Now the prompt is charged when the call starts, the completion as it streams, and an
abandoned call what it consumed, so the provider's bill stays near the budget. What the
provider billed is counted by the fake server itself (`FakeOpenAI.billed`: the prompt when it
reads a request, completion tokens as it sends them), over real sockets: the API under
uvicorn on a loopback port, a raw HTTP client that really closes its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvicorn

from faqbot.answering.bot import FaqBot
from faqbot.answering.factory import build_bot
from faqbot.spend import StreamSlots
from faqbot.state.conversations import ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.web.app import create_api
from tests import fake_openai as fo
from tests.e2e_support import free_port

pytestmark = pytest.mark.llm
BUDGET = 5_000  # SPEND_CLIENT_DAILY_TOKENS, as in the report
MAX_TURNS = 60  # the attacker gives up after this many questions
QUESTIONS = (
    "Do you offer discounts for annual subscriptions?",
    "What are your pricing plans?",
    "How do I get a refund?",
)
# a provider that takes its time: the whole answer would take 4 s, the client leaves at once
SLOW_ANSWERS = fo.LatencyProfile(tokens_per_second=50, answer_tokens=200)
Served = tuple[FaqBot, int]
SLOTS = StreamSlots(0)  # no cap on answers in progress: the attacker is never refused a 429
FALLBACK = re.compile(rb"event: fallback\ndata: (\{.*?\})\n")


def question(n: int) -> str:
    """A fresh question each time, as an attacker would send (no cache ever answers it)."""
    return f"{QUESTIONS[n % len(QUESTIONS)]} (#{n})"


@pytest.fixture
def serve(make_settings: Any, fake_openai: fo.FakeOpenAI) -> Callable[..., Any]:
    """A context manager: the API under uvicorn with a client budget, as (bot, port)."""

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Served]:
        settings = make_settings(
            openai_api_key="test-key",
            openai_base_url=fake_openai.base_url,
            openai_max_retries=0,
            openai_timeout=10.0,
            spend_client_daily_tokens=BUDGET,
            spend_conversation_tokens=0,
            max_streams_per_client=0,
            **overrides,
        )
        bot = build_bot(settings)
        api = create_api(
            lambda: bot, RateLimiter(10_000, 60), settings, ConversationStore(), streams=SLOTS
        )
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        task = asyncio.create_task(server.serve())
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, no event
                await asyncio.sleep(0.01)
        try:
            yield bot, port
        finally:
            server.should_exit = True
            await task

    return start


async def ask_and_leave(port: int, text: str) -> str:
    """POST /chat/stream, read until the first answer token (or a fallback), hang up.

    Returns "token" (the LLM's answer had started), "fallback:<reason>" (the answer is offline)
    or "ended" (the stream finished before either).
    """
    body = json.dumps({"question": text}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"POST /chat/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        seen = b""
        async with asyncio.timeout(15):
            while chunk := await reader.read(4096):
                seen += chunk
                if fallback := FALLBACK.search(seen):
                    return f"fallback:{json.loads(fallback[1])['reason']}"
                if b"event: token\n" in seen:
                    return "token"
        return "ended"
    finally:
        writer.close()  # the visitor leaves: the server sees the connection drop
        await writer.wait_closed()


async def settled(fake: fo.FakeOpenAI) -> None:
    """Wait until the provider's bill stops growing (cut streams have ended)."""
    last = -1
    while (now := fake.billed_tokens()) != last:
        last = now
        await asyncio.sleep(0.3)


async def attack(port: int, fake: fo.FakeOpenAI) -> list[str]:
    """Ask and leave until the answers turn offline (or MAX_TURNS); the outcome of each turn."""
    outcomes: list[str] = []
    for n in range(MAX_TURNS):
        outcomes.append(await ask_and_leave(port, question(n)))
        if outcomes[-1].startswith("fallback:"):
            break
        await asyncio.sleep(0.05)  # the server notices the hang-up
    await settled(fake)
    return outcomes


Ready = Callable[[FaqBot], Awaitable[None]]


async def run_attack(
    serve: Callable[..., Any], fake: fo.FakeOpenAI, ready: Ready | None = None, **settings: Any
) -> tuple[list[str], int, int]:
    """(outcomes, tokens the provider billed, tokens faqbot counted) for one attack."""
    async with serve(**settings) as (bot, port):
        if ready is not None:
            await ready(bot)
        before = fake.billed_tokens()
        fake.profile = SLOW_ANSWERS
        outcomes = await attack(port, fake)
        return outcomes, fake.billed_tokens() - before, await bot.spend.spent_today()


def assert_budget_held(outcomes: list[str], billed: int, counted: int) -> None:
    report = f"{len(outcomes)} turns, provider billed {billed}, faqbot counted {counted}"
    assert outcomes[0] == "token", report  # the LLM answered while the budget lasted
    assert outcomes[-1] == "fallback:budget_client", report  # then the budget stopped it
    assert billed <= 1.5 * BUDGET, report
    assert counted >= billed, report  # faqbot never counts less than the provider bills


async def test_a_client_that_leaves_after_the_first_token_is_held_to_its_budget(
    serve: Callable[..., Any], fake_openai: fo.FakeOpenAI
) -> None:
    outcomes, billed, counted = await run_attack(serve, fake_openai)
    print(f"lexical: {len(outcomes)} turns, billed {billed}, counted {counted}")
    assert_budget_held(outcomes, billed, counted)


async def test_with_hybrid_ranking_embeddings_and_answers_count_too(
    serve: Callable[..., Any], fake_openai: fo.FakeOpenAI
) -> None:
    """Hybrid ranking routes confident questions without the router call, and embeds each new
    question (billed per question): both count against the client's budget."""

    async def vectors(bot: FaqBot) -> None:
        assert await asyncio.to_thread(bot.wait_for_vectors, 30)
        assert bot.retriever.mode == "hybrid"

    outcomes, billed, counted = await run_attack(
        serve,
        fake_openai,
        vectors,
        embeddings="openai",
        embeddings_base_url=fake_openai.base_url,
    )
    print(f"hybrid: {len(outcomes)} turns, billed {billed}, counted {counted}")
    assert fake_openai.billed_tokens("embeddings") > 0
    assert_budget_held(outcomes, billed, counted)
