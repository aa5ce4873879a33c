"""A cancelled half-open probe must release the circuit breaker (issue 14, first defect).

The half-open state lets exactly one request try the LLM. When that request's consumer goes
away (Stop button, closed tab, dropped SSE client) the probe must be given back without a
verdict, or the breaker stays half-open with `_probing` set and never calls the LLM again.
In process (tests/fake_chat_model.py) with the breaker on a test clock: the order of events
is set by gates, not by sleeps.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from faqbot.answering.bot import FaqBot, collect
from faqbot.answering.breaker import CircuitBreaker
from faqbot.answering.events import RouteDecided, Token
from faqbot.answering.factory import build_bot
from tests import fake_chat_model as fc

RESET_S = 30.0
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def half_open_bot(make_settings: Any) -> Any:
    """A bot whose breaker opened after one provider failure, now half-open; and its model
    and clock."""

    async def make() -> tuple[FaqBot, fc.ScriptedChatModel, Clock]:
        model = fc.ScriptedChatModel(fc.server_error())
        bot = build_bot(make_settings(openai_api_key="test-key"), model=model)
        clock = Clock()
        bot.breaker = CircuitBreaker(1, RESET_S, clock=clock)
        assert (await collect(bot.answer("annual discount?"))).fallback_reason == "LLM_UNAVAILABLE"
        assert bot.breaker.state == "open"
        clock.now += RESET_S
        assert bot.breaker.state == "half_open"
        return bot, model, clock

    return make


async def _next_question_reaches_the_llm(
    bot: FaqBot, model: fc.ScriptedChatModel, clock: Clock
) -> None:
    """After the reset time the next question is a new probe that calls the LLM and closes."""
    clock.now += RESET_S
    seen = len(model.calls)
    model.script(fc.tool("faq_sales", question="annual discount?"), fc.text(DISCOUNT))
    result = await collect(bot.answer("annual discount?"))
    assert len(model.calls) == seen + 2, "the LLM was not tried again"
    assert not result.fallback
    assert result.answer == DISCOUNT
    assert bot.breaker.state == "closed"
    model.assert_all_scripted()


async def test_cancelled_probe_task_releases_the_half_open_breaker(half_open_bot: Any) -> None:
    bot, model, clock = await half_open_bot()
    seen = len(model.calls)
    model.script(fc.hang())  # the provider stalls; the visitor presses Stop
    probe = asyncio.create_task(collect(bot.answer("annual discount?")))
    async with asyncio.timeout(5):
        await model.wait_calls(seen + 1)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert bot.breaker.failures == 1  # a cancellation is not a provider failure
    assert not bot.breaker.probing
    await _next_question_reaches_the_llm(bot, model, clock)


async def test_probe_stream_closed_early_releases_the_half_open_breaker(
    half_open_bot: Any,
) -> None:
    bot, model, clock = await half_open_bot()
    rest = asyncio.Event()  # never set: the answer stops after its first piece
    model.script(
        fc.tool("faq_sales", question="annual discount?"),
        fc.gated(fc.text(DISCOUNT), rest, after=1),
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
    assert not bot.breaker.probing
    await _next_question_reaches_the_llm(bot, model, clock)


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
