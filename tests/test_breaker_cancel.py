"""A cancelled half-open probe must release the circuit breaker (issue 14, first defect).

The half-open state lets exactly one request try the LLM. When that request's consumer goes
away (Stop button, closed tab, dropped SSE client) the probe must be given back without a
verdict, or the breaker stays half-open with `_probing` set and never calls the LLM again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from faqbot.answering.bot import FaqBot, collect
from faqbot.answering.breaker import CircuitBreaker
from faqbot.answering.events import RouteDecided, Token
from faqbot.answering.factory import build_bot
from tests import fake_openai as fo

pytestmark = pytest.mark.llm
RESET_S = 0.3
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."


@pytest.fixture
def half_open_bot(make_settings: Any, fake_openai: Any) -> Any:
    """A bot whose breaker opened after one provider failure; call it to wait for half-open."""

    async def make() -> FaqBot:
        bot = build_bot(
            make_settings(
                openai_api_key="test-key",
                openai_base_url=fake_openai.base_url,
                openai_max_retries=0,
                openai_timeout=5.0,
                llm_budget_seconds=6.0,
                circuit_failure_threshold=1,
                circuit_reset_seconds=RESET_S,
            )
        )
        fake_openai.script(fo.server_error())
        assert (await collect(bot.answer("annual discount?"))).fallback_reason == "LLM_UNAVAILABLE"
        assert bot.breaker.state == "open"
        await asyncio.sleep(RESET_S + 0.05)
        assert bot.breaker.state == "half_open"
        return bot

    return make


async def _wait_for_requests(fake: Any, count: int) -> None:
    """Wait (up to 3 s) until the fake server has received `count` chat requests."""
    async with asyncio.timeout(3):
        while len(fake.requests) < count:  # noqa: ASYNC110 - the fake records in its own thread
            await asyncio.sleep(0.01)


async def _next_question_reaches_the_llm(bot: FaqBot, fake: Any) -> None:
    """After the reset time the next question is a new probe that calls the LLM and closes."""
    await asyncio.sleep(RESET_S + 0.05)
    seen = len(fake.requests)
    fake.script(fo.tool("faq_sales", question="annual discount?"), fo.text(DISCOUNT))
    result = await collect(bot.answer("annual discount?"))
    assert len(fake.requests) == seen + 2, "the LLM was not tried again"
    assert not result.fallback
    assert result.answer == DISCOUNT
    assert bot.breaker.state == "closed"


async def test_cancelled_probe_task_releases_the_half_open_breaker(
    half_open_bot: Any, fake_openai: Any
) -> None:
    bot = await half_open_bot()
    seen = len(fake_openai.requests)
    fake_openai.script(fo.hang(10))  # the provider stalls; the visitor presses Stop
    probe = asyncio.create_task(collect(bot.answer("annual discount?")))
    await _wait_for_requests(fake_openai, seen + 1)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert bot.breaker.failures == 1  # a cancellation is not a provider failure
    await _next_question_reaches_the_llm(bot, fake_openai)


async def test_probe_stream_closed_early_releases_the_half_open_breaker(
    half_open_bot: Any, fake_openai: Any
) -> None:
    bot = await half_open_bot()
    fake_openai.script(
        fo.tool("faq_sales", question="annual discount?"),
        fo.text(DISCOUNT, tokens_per_second=5),  # slow enough to close mid-answer
    )
    stream = bot.answer("annual discount?")
    events: list[Any] = []
    async for event in stream:  # the SSE client reads the route and one token, then leaves
        events.append(event)
        if isinstance(event, Token):
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert any(isinstance(e, RouteDecided) for e in events)
    assert bot.breaker.failures == 1
    await _next_question_reaches_the_llm(bot, fake_openai)


def test_release_gives_back_the_probe_without_a_verdict() -> None:
    now = [0.0]
    breaker = CircuitBreaker(1, 10.0, clock=lambda: now[0])
    breaker.record_failure()
    now[0] = 11.0
    assert breaker.allow()  # the one probe
    assert not breaker.allow()  # others wait for its verdict
    breaker.release()
    assert breaker.state == "half_open"
    assert breaker.failures == 1
    assert breaker.allow()  # the next request may probe
