"""A stalled provider costs a user seconds, not twenty (issue 14, item 6).

Before: with the provider accepting the connection and never answering, each of the first three
questions waited for the SDK (20 s read timeout, then its retry, cut by the 30 s budget: 30.0 s
measured with the shipped defaults) before the offline answer, and only then the breaker opened.
Now LLM_FIRST_TOKEN_SECONDS bounds the silence of every LLM call, router and answer: no first
output within it -> offline answer and a provider failure for the breaker; mid-stream, no chunk
for as long -> the same, the partial answer replaced. A slow answer that keeps streaming is not
cut. The real SDK against the loopback fake server, with the shipped SDK timeout, retries and
budget; only the deadline is set short (1 s) to keep the tests fast.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from faqbot.answering.bot import FaqBot, collect
from faqbot.answering.events import Event, Fallback, Token, TurnResult
from faqbot.answering.factory import build_bot
from tests import fake_openai as fo

pytestmark = pytest.mark.llm
DEADLINE_S = 1.0
# Scheduling on a shared, loaded 2-core machine, the offline answer, the fake's thread; still far
# below what a missed deadline costs (the 30 s stall, the 20 s client timeout)
MARGIN_S = 2.0
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
SLOW = (
    "Yes: paying yearly gives you a 20% discount on every plan, and you can switch from "
    "monthly to yearly billing at any time from the billing page."
)


@pytest.fixture
def bot(make_settings: Any, fake_openai: Any) -> FaqBot:
    """Shipped LLM defaults (20 s SDK timeout, one SDK retry, 30 s budget, breaker after 3)."""
    settings = make_settings(
        openai_api_key="test-key",
        openai_base_url=fake_openai.base_url,
        llm_first_token_seconds=DEADLINE_S,
    )
    assert settings.openai_timeout == 20.0
    assert settings.openai_max_retries == 1
    assert settings.circuit_failure_threshold == 3
    return build_bot(settings)


async def timed(bot: FaqBot, question: str = "annual discount?") -> tuple[list[Event], float]:
    """The events of one question and how long it took."""
    started = time.monotonic()
    events = [event async for event in bot.answer(question)]
    return events, time.monotonic() - started


def result_of(events: list[Event]) -> TurnResult:
    return events[-1].result  # type: ignore[attr-defined, no-any-return]


async def test_a_stalled_provider_costs_each_question_the_deadline_then_nothing(
    bot: FaqBot, fake_openai: Any
) -> None:
    """Five questions in a row against a provider that accepts and never answers."""
    fake_openai.stall_seconds = 30  # every chat call hangs (no headers, no bytes)
    waits: list[float] = []
    for n in range(5):
        events, elapsed = await timed(bot)
        waits.append(elapsed)
        result = result_of(events)
        assert result.fallback
        assert result.answer == DISCOUNT  # the offline answer, quoted from the FAQ
        expected = "LLM_TIMEOUT" if n < 3 else "circuit_open"
        assert result.fallback_reason == expected, (n, result.fallback_reason)
    print("waits:", ", ".join(f"{w:.2f} s" for w in waits), f"(worst {max(waits):.2f} s)")
    for wait in waits[:3]:
        assert DEADLINE_S - 0.05 <= wait < DEADLINE_S + MARGIN_S
    assert max(waits[3:]) < DEADLINE_S / 2  # the breaker is open: the deadline is not waited
    assert len(fake_openai.requests) == 3  # one router call each; none once the breaker opened
    assert bot.breaker.state == "open"


@pytest.mark.parametrize(
    "stalled",
    [
        pytest.param(fo.hang(30), id="no-headers"),
        pytest.param(
            fo.tools([("faq_sales", {"question": "q"})], first_token_delay=30), id="headers-only"
        ),
    ],
)
async def test_the_router_call_has_the_deadline(
    bot: FaqBot, fake_openai: Any, stalled: fo.Reply
) -> None:
    fake_openai.script(stalled)
    events, elapsed = await timed(bot)
    result = result_of(events)
    assert result.fallback_reason == "LLM_TIMEOUT"
    assert result.answer == DISCOUNT
    assert len(fake_openai.requests) == 1
    assert "tools" in fake_openai.requests[0]  # it was the router's call that stalled
    assert DEADLINE_S - 0.05 <= elapsed < DEADLINE_S + MARGIN_S
    assert bot.breaker.failures == 1  # a stall is a provider failure


async def test_the_answer_call_has_the_deadline(bot: FaqBot, fake_openai: Any) -> None:
    fake_openai.script(
        fo.tool("faq_sales", question="annual discount?"),
        fo.text("never sent", first_token_delay=30),
    )
    events, elapsed = await timed(bot)
    result = result_of(events)
    assert result.fallback_reason == "LLM_TIMEOUT"
    assert result.answer == DISCOUNT
    assert len(fake_openai.requests) == 2
    assert elapsed < DEADLINE_S + MARGIN_S
    assert not [e for e in events if isinstance(e, Token) and "never" in e.text]
    assert bot.breaker.failures == 1


async def test_a_slow_answer_that_keeps_streaming_completes(bot: FaqBot, fake_openai: Any) -> None:
    """Router and answer each start at 0.5 s and then stream slowly, each for over twice the
    deadline: nothing is cut, since the deadline is only for the first token and the silence
    between chunks."""
    fake_openai.script(
        fo.tools(
            [("faq_sales", {"question": "annual discount?"})],
            first_token_delay=0.5,
            tokens_per_second=2.5,  # 4 argument fragments: the tool call ends at about 2.1 s
        ),
        fo.text(SLOW, first_token_delay=0.5, tokens_per_second=12),  # 27 words: about 2.7 s
    )
    events, elapsed = await timed(bot)
    result = result_of(events)
    print(f"slow router + answer took {elapsed:.2f} s (deadline {DEADLINE_S} s)")
    assert not result.fallback
    assert result.mode == "llm"
    assert result.answer == SLOW  # every token arrived
    assert elapsed > 3 * DEADLINE_S
    assert bot.breaker.failures == 0
    assert bot.breaker.state == "closed"


async def test_a_stream_that_stalls_mid_answer_is_replaced_by_the_offline_answer(
    bot: FaqBot, fake_openai: Any
) -> None:
    fake_openai.script(
        fo.tool("faq_sales", question="annual discount?"),
        fo.stall("Partial words that never finish", after=3, seconds=30),
    )
    events, elapsed = await timed(bot)
    result = result_of(events)
    kinds = [type(e).__name__ for e in events]
    first_fallback = kinds.index("Fallback")
    partial = "".join(e.text for e in events[:first_fallback] if isinstance(e, Token))
    assert partial == "Partial words that"  # what the user already saw...
    fallback = events[first_fallback]
    assert isinstance(fallback, Fallback)
    assert fallback.reason == "LLM_TIMEOUT"  # ...is then discarded (a Fallback after tokens)
    assert result.answer == DISCOUNT  # and the offline answer replaces it
    assert "Partial" not in result.answer
    assert elapsed < DEADLINE_S + MARGIN_S
    assert bot.breaker.failures == 1


async def test_the_default_deadline_is_a_few_seconds_and_inside_the_budget(
    make_settings: Any,
) -> None:
    settings = make_settings()
    assert 2.0 <= settings.llm_first_token_seconds <= 10.0
    assert settings.llm_first_token_seconds < settings.openai_timeout
    assert settings.llm_first_token_seconds < settings.llm_budget_seconds


async def test_without_a_stall_the_turn_is_unchanged(bot: FaqBot, fake_openai: Any) -> None:
    fake_openai.script(fo.tool("faq_sales", question="annual discount?"), fo.text(DISCOUNT))
    result: TurnResult = await collect(bot.answer("annual discount?"))
    assert result.mode == "llm"
    assert not result.fallback
    assert result.answer == DISCOUNT
