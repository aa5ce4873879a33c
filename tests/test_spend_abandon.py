"""Spend counted when it is spent (issue 20, item 2), call by call: through the real OpenAI SDK
and the fake server, which counts what it bills (`FakeOpenAI.billed`).

A call charges its prompt when it starts, its completion while it streams, the provider's usage
when that arrives, and, when its caller goes away mid-stream (the generator closed, the task
cancelled), what it had consumed; a request the provider refused costs nothing. The charges go
to real token budgets (process memory) through a turn's `Tab`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from faqbot.answering.bot import collect
from faqbot.answering.factory import build_bot
from faqbot.errors import LLMRateLimitError, LLMUnavailableError
from faqbot.llm.openai_model import OpenAIChatModel, make_client
from faqbot.llm.tokens import estimate_prompt, estimate_tokens
from faqbot.retrieval.embedders import HashEmbedder
from faqbot.retrieval.indexer import SemanticIndexer
from faqbot.spend import Spender, Tab, TokenBudgets
from faqbot.spend.tab import Keys
from tests import fake_openai as fo
from tests.test_speculative_answer import PROFILE, router_choosing, unsure_sales_question

pytestmark = pytest.mark.llm
ANSWER = " ".join(["Our annual plans are billed once a year at a discount."] * 10)
MESSAGES = [
    {"role": "system", "content": "Answer from the FAQ entries below.\n\nA: " + ANSWER},
    {"role": "user", "content": "Do you offer discounts for annual subscriptions?"},
]
WHO = Spender("ip:10.0.0.1", "conversation-1")


@pytest.fixture
def model(fake_openai: fo.FakeOpenAI) -> OpenAIChatModel:
    client = make_client(
        "test-key",
        base_url=fake_openai.base_url,
        timeout=5.0,
        connect_timeout=2.0,
        max_retries=0,
        max_retry_wait=0.0,
    )
    return OpenAIChatModel(client, model="fake-model", max_tokens=500, temperature=0)


@pytest.fixture
def budgets() -> TokenBudgets:
    return TokenBudgets(client_daily_tokens=10**6, conversation_tokens=10**6)


async def first_piece(stream: AsyncIterator[str]) -> str:
    return await anext(stream)


async def billed_settled(fake: fo.FakeOpenAI) -> int:
    """The provider's bill once it has stopped growing (a cut stream has ended)."""
    last = -1
    while (now := fake.billed_tokens()) != last:
        last = now
        await asyncio.sleep(0.2)
    return now


async def test_the_prompt_is_charged_when_the_call_starts_and_the_usage_settles_it(
    model: OpenAIChatModel, budgets: TokenBudgets, fake_openai: fo.FakeOpenAI
) -> None:
    fake_openai.script(fo.text(ANSWER, usage=(300, 40), tokens_per_second=200))
    tab = budgets.tab(WHO)
    stream = model.stream_text(MESSAGES, [], meter=tab)
    await first_piece(stream)
    # the answer has only begun: its prompt (estimated) is already counted
    assert await budgets.spent_today() >= estimate_prompt(MESSAGES) > 0
    rest = [piece async for piece in stream]
    assert "".join(rest).endswith("discount.")
    # finished: exactly what the provider reported (and billed)
    assert tab.tokens == 340
    assert await budgets.spent_today() == 340
    assert await billed_settled(fake_openai) == 340


@pytest.mark.parametrize("how", ["closed", "cancelled"])
async def test_a_call_abandoned_after_its_first_token_is_charged_what_the_provider_billed(
    model: OpenAIChatModel, budgets: TokenBudgets, fake_openai: fo.FakeOpenAI, how: str
) -> None:
    """The caller leaves after the first token: the stream is closed (an SSE client hung up)
    or its task cancelled (the chat's Stop). The provider bills the prompt and the tokens it
    sent; the tab is charged at least that, and not wildly more."""
    fake_openai.script(fo.text(ANSWER, tokens_per_second=40))  # 100 words: 2.5 s
    tab = budgets.tab(WHO)
    got_one = asyncio.Event()

    async def reader() -> None:
        stream = model.stream_text(MESSAGES, [], meter=tab)
        async with contextlib.aclosing(stream):  # type: ignore[type-var]
            await first_piece(stream)
            got_one.set()
            if how == "cancelled":
                await asyncio.sleep(30)  # reading on, until Stop

    task = asyncio.create_task(reader())
    await asyncio.wait_for(got_one.wait(), 5)
    if how == "cancelled":
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    billed = await billed_settled(fake_openai)
    assert billed > fake_openai.billed[-1].prompt_tokens  # some completion was billed, not all
    assert fake_openai.billed[-1].completion_tokens < len(ANSWER.split())
    assert billed <= tab.tokens <= 2 * billed
    assert await budgets.spent_today() == tab.tokens


async def test_a_request_the_provider_refused_costs_nothing(
    model: OpenAIChatModel, budgets: TokenBudgets, fake_openai: fo.FakeOpenAI
) -> None:
    fake_openai.script(fo.rate_limited(60))
    tab = budgets.tab(WHO)
    with pytest.raises(LLMRateLimitError):
        await model.call_tools(MESSAGES, [], meter=tab)
    assert fake_openai.billed_tokens() == 0
    assert tab.tokens == 0
    assert await budgets.spent_today() == 0


async def test_a_torn_stream_is_charged_its_prompt_and_what_arrived(
    model: OpenAIChatModel, budgets: TokenBudgets, fake_openai: fo.FakeOpenAI
) -> None:
    fake_openai.script(fo.torn(ANSWER, after=5))
    tab = budgets.tab(WHO)
    with pytest.raises(LLMUnavailableError):
        async for _ in model.stream_text(MESSAGES, [], meter=tab):
            pass
    billed = await billed_settled(fake_openai)
    assert fake_openai.billed[-1].completion_tokens == 5
    assert billed <= tab.tokens <= 2 * billed


class SlowCounts:
    """Counts whose writes take a while (a slow Redis): the charge must land anyway."""

    def __init__(self) -> None:
        self.total = 0

    async def add(self, keys: Keys, tokens: int) -> None:
        await asyncio.sleep(0.2)
        self.total += tokens


async def test_a_charge_lands_even_when_its_caller_is_cancelled_while_writing() -> None:
    counts = SlowCounts()
    tab = Tab(counts, [("deployment", "k", 60)])

    async def settle_in_finally() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            await tab.charge(120)  # as the model's finally does

    task = asyncio.create_task(settle_in_finally())
    await asyncio.sleep(0.05)
    task.cancel()  # Stop
    await asyncio.sleep(0.05)
    task.cancel()  # and again, while the charge is being written
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)
    assert counts.total == 120


async def test_embedding_a_new_question_is_charged_once(
    make_settings: Any, fake_openai: fo.FakeOpenAI
) -> None:
    """Hybrid ranking over a billed embeddings endpoint: each new question's embedding is
    charged to its asker (estimated at least as high as the provider bills it); a question
    the query cache holds costs nothing."""
    settings = make_settings(
        openai_api_key="test-key",
        openai_base_url=fake_openai.base_url,
        openai_max_retries=0,
        embeddings="openai",
        embeddings_base_url=fake_openai.base_url,
        answer_cache_size=0,
    )
    bot = build_bot(settings)
    assert await asyncio.to_thread(bot.wait_for_vectors, 30)
    question = "Can I pay once a year for a cheaper plan?"
    for n in (1, 2):
        before = fake_openai.billed_tokens("embeddings")
        spent_before = await bot.spend.spent_today()
        result = await collect(bot.answer(question, spender=WHO))
        billed = fake_openai.billed_tokens("embeddings") - before
        chat = result.usage.total_tokens  # the chat calls, settled to the provider's usage
        charged = await bot.spend.spent_today() - spent_before - chat
        if n == 1:
            assert billed > 0
            assert charged == estimate_tokens(question) >= billed
        else:
            assert billed == charged == 0


async def test_a_dropped_speculative_answer_is_charged_what_it_consumed(
    make_settings: Any, fake_openai: fo.FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPECULATIVE_ANSWER starts the answer call before the router has decided; when the router
    decides otherwise the call is cancelled, and what it consumed is still counted."""
    monkeypatch.setattr(fake_openai, "responder", router_choosing("labs"))
    fake_openai.profile = PROFILE  # the router takes long enough for the guess to go out
    settings = make_settings(
        openai_api_key="test-key",
        openai_base_url=fake_openai.base_url,
        openai_max_retries=0,
        llm_budget_seconds=10.0,
        answer_cache_size=0,
        speculative_answer=True,
    )
    bot = build_bot(settings, semantic=SemanticIndexer(HashEmbedder(), tmp_path / "vectors"))
    assert bot.wait_for_vectors(20)
    result = await collect(bot.answer(unsure_sales_question(bot), spender=WHO))
    assert result.category == "labs"
    answers = [r for r in fake_openai.requests if not r.get("tools")]
    assert len(answers) == 2  # the dropped guess and the real answer
    billed = await billed_settled(fake_openai)
    assert billed > result.usage.total_tokens  # the provider billed the dropped call too...
    assert await bot.spend.spent_today() >= billed  # ...and so did the budget
