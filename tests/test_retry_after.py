"""A provider's Retry-After must not make each user wait (issue 14, Retry-After defect).

Found by a fault probe: the OpenAI SDK honours Retry-After (up to two minutes) between its
retries, so a 429 with `Retry-After: 20` held every question for 20 s before any fallback. A wait
longer than the SDK retry bound (half of LLM_FIRST_TOKEN_SECONDS, so a retry fits inside the
first-token deadline) must instead end the call at once (offline answer) and open the circuit
breaker for the time the provider asked, so the next questions skip the LLM until then.
Runs the real SDK against the loopback fake server, with the production retry/timeout defaults.
"""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate
from typing import Any

import httpx2
import pytest

from faqbot.answering.bot import FaqBot, collect
from faqbot.answering.breaker import MAX_OPEN_SECONDS, CircuitBreaker
from faqbot.answering.events import TurnResult
from faqbot.answering.factory import build_bot
from faqbot.llm.openai_model import retry_after_seconds, retry_wait_bound
from tests import fake_openai as fo

pytestmark = pytest.mark.llm
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."


@pytest.fixture
def bot(make_settings: Any, fake_openai: Any) -> FaqBot:
    """A bot with the shipped LLM defaults (one SDK retry, 20 s timeout, 30 s budget)."""
    return build_bot(make_settings(openai_api_key="test-key", openai_base_url=fake_openai.base_url))


async def ask(bot: FaqBot, limit_s: float = 5.0) -> tuple[TurnResult, float]:
    """One question's result and how long it took (failing after `limit_s`, not 20 s)."""
    started = time.monotonic()
    result = await asyncio.wait_for(collect(bot.answer("annual discount?")), limit_s)
    return result, time.monotonic() - started


@pytest.mark.parametrize("status", [429, 503])
async def test_a_long_retry_after_falls_back_at_once_and_opens_the_breaker(
    bot: FaqBot, fake_openai: Any, status: int
) -> None:
    fake_openai.script(fo.error(status, retry_after=20))
    first, elapsed = await ask(bot)
    print(f"{status} Retry-After 20: fallback after {elapsed:.2f} s")
    assert first.fallback
    assert first.fallback_reason == ("LLM_RATE_LIMITED" if status == 429 else "LLM_UNAVAILABLE")
    assert first.answer == DISCOUNT  # the offline answer, quoted from the FAQ
    assert elapsed < 5.0  # the 20 s Retry-After was not waited out
    assert len(fake_openai.requests) == 1  # the SDK did not wait to retry
    assert bot.breaker.state == "open"
    assert 19.0 <= bot.breaker.snapshot()["retry_in_s"] <= 20.0  # type: ignore[operator]

    second, elapsed = await ask(bot)
    assert second.fallback_reason == "circuit_open"
    assert len(fake_openai.requests) == 1  # within the 20 s the LLM is not called
    assert elapsed < 5.0


async def test_after_the_retry_after_window_the_llm_is_tried_again(
    make_settings: Any, fake_openai: Any
) -> None:
    bot = build_bot(
        make_settings(
            openai_api_key="test-key", openai_base_url=fake_openai.base_url, openai_max_retries=0
        )
    )
    fake_openai.script(fo.rate_limited(retry_after=1))
    first, _ = await ask(bot)
    assert first.fallback_reason == "LLM_RATE_LIMITED"
    skipped, _ = await ask(bot)
    assert skipped.fallback_reason == "circuit_open"
    assert len(fake_openai.requests) == 1
    await asyncio.sleep(1.1)
    assert bot.breaker.state == "half_open"
    fake_openai.script(fo.tool("faq_sales", question="annual discount?"), fo.text(DISCOUNT))
    again, _ = await ask(bot)
    assert not again.fallback
    assert again.mode == "llm"
    assert len(fake_openai.requests) == 3  # router + answer
    assert bot.breaker.state == "closed"


async def test_a_short_retry_after_is_waited_out_inside_the_budget(
    bot: FaqBot, fake_openai: Any
) -> None:
    """A Retry-After within half the first-token deadline: the SDK retries once and the LLM
    answers, the whole wait inside the deadline."""
    fake_openai.script(
        fo.rate_limited(retry_after=0.3),
        fo.tool("faq_sales", question="annual discount?"),
        fo.text(DISCOUNT),
    )
    result, elapsed = await ask(bot)
    assert not result.fallback
    assert result.answer == DISCOUNT
    assert len(fake_openai.requests) == 3  # 429, retried router call, answer
    assert 0.3 <= elapsed < bot.settings.llm_first_token_seconds
    assert bot.breaker.state == "closed"


async def test_the_retry_wait_bound_follows_the_first_token_deadline(
    make_settings: Any, fake_openai: Any
) -> None:
    """LLM_FIRST_TOKEN_SECONDS=1: a Retry-After of 0.8 s (which the old fixed 2 s bound waited
    out, holding the question past the deadline) is not waited out; the breaker keeps it."""
    settings = make_settings(
        openai_api_key="test-key",
        openai_base_url=fake_openai.base_url,
        llm_first_token_seconds=1.0,
    )
    assert retry_wait_bound(settings.llm_first_token_seconds) == 0.5
    assert bot_wait_bound(build_bot(settings)) == 0.5
    bot = build_bot(settings)
    fake_openai.script(fo.rate_limited(retry_after=0.8))
    result, elapsed = await ask(bot)
    assert result.fallback_reason == "LLM_RATE_LIMITED"
    assert elapsed < 0.8  # sooner than the Retry-After: it was not waited out
    assert len(fake_openai.requests) == 1  # no retry
    assert bot.breaker.state == "open"
    await asyncio.sleep(0.85)  # the breaker's window ends; a 0.4 s Retry-After fits: retried
    fake_openai.script(
        fo.rate_limited(retry_after=0.4),
        fo.tool("faq_sales", question="annual discount?"),
        fo.text(DISCOUNT),
    )
    again, elapsed = await ask(bot)
    assert not again.fallback
    assert len(fake_openai.requests) == 4  # 429, retried router call, answer
    assert 0.4 <= elapsed < settings.llm_first_token_seconds + 0.5


def bot_wait_bound(bot: FaqBot) -> float:
    """The Retry-After bound of the bot's SDK client, and of its copies (used by `ping`)."""
    client: Any = bot.model.client  # type: ignore[union-attr]
    assert client.with_options(max_retries=0).max_retry_wait == client.max_retry_wait
    return float(client.max_retry_wait)


def test_the_default_retry_wait_fits_inside_the_default_deadline(make_settings: Any) -> None:
    settings = make_settings()
    assert 0 < retry_wait_bound(settings.llm_first_token_seconds) < settings.llm_first_token_seconds


def test_retry_after_parsing() -> None:
    assert retry_after_seconds(httpx2.Headers({"retry-after": "20"})) == 20.0
    assert retry_after_seconds(httpx2.Headers({"retry-after": "1.5"})) == 1.5
    assert retry_after_seconds(httpx2.Headers({"retry-after-ms": "250"})) == 0.25
    in_a_minute = retry_after_seconds(httpx2.Headers({"retry-after": formatdate(time.time() + 60)}))
    assert in_a_minute is not None
    assert 55 <= in_a_minute <= 61
    assert retry_after_seconds(httpx2.Headers({"retry-after": "soon"})) is None
    assert retry_after_seconds(httpx2.Headers({"retry-after": "-5"})) is None
    assert retry_after_seconds(httpx2.Headers({"retry-after": "nan"})) is None
    assert retry_after_seconds(httpx2.Headers()) is None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_open_for_keeps_the_longer_window_and_is_capped() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_seconds=30, clock=clock)
    breaker.open_for(5)
    assert breaker.state == "open"
    clock.now = 5.0
    assert breaker.state == "half_open"
    assert breaker.allow()
    breaker.record_failure()  # the probe failed: the usual 30 s window
    breaker.open_for(2)  # a shorter Retry-After does not shorten it
    clock.now = 20.0
    assert breaker.state == "open"
    clock.now = 35.0
    assert breaker.state == "half_open"
    breaker.open_for(10**9)  # an absurd Retry-After is capped
    clock.now = 35.0 + MAX_OPEN_SECONDS
    assert breaker.state == "half_open"
