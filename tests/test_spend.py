"""Token budgets (issue 14, "spend limits"), against the in-process ScriptedChatModel
(tests/fake_chat_model.py), which charges each call's Meter as the OpenAI adapter does.

Each scripted LLM call reports exact usage (router 100 + 10 tokens, answer 200 + 20), so a
whole LLM turn costs 330 tokens and the budgets below are reached at known turns. "No LLM
call" is proven by counting the calls the model received.
"""

from __future__ import annotations

from typing import Any

import pytest

from faqbot.answering.bot import FaqBot, collect
from faqbot.answering.events import Fallback, RouteDecided, TurnResult
from faqbot.answering.factory import build_bot
from faqbot.knowledge import load_knowledge_base
from faqbot.spend import NOTICES, Spender, TokenBudgets
from faqbot.spend.counters import MemoryCounters
from tests import fake_chat_model as fc

QUESTION = "Do you offer discounts for annual subscriptions?"
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
ROUTER_TOKENS, ANSWER_TOKENS = 110, 220
TURN_TOKENS = ROUTER_TOKENS + ANSWER_TOKENS


@pytest.fixture
def fake() -> fc.ScriptedChatModel:
    return fc.ScriptedChatModel()


@pytest.fixture
def make_bot(make_settings: Any, fake: fc.ScriptedChatModel) -> Any:
    """An LLM bot on the scripted model; budgets off unless given (0 = no limit)."""

    def make(spend: TokenBudgets | None = None, **overrides: Any) -> FaqBot:
        base: dict[str, Any] = {
            "openai_api_key": "test-key",
            "answer_cache_size": 0,  # every LLM turn makes both calls
            "spend_conversation_tokens": 0,
            "spend_client_daily_tokens": 0,
            "spend_deployment_daily_tokens": 0,
        }
        base.update(overrides)
        settings = make_settings(**base)
        if spend is None:
            return build_bot(settings, model=fake)
        kb = load_knowledge_base(settings.faq_dir)
        return FaqBot(kb, settings, model=fake, spend=spend)

    return make


async def ask(bot: FaqBot, fake: fc.ScriptedChatModel, who: Spender | None) -> TurnResult:
    """One question; an LLM turn is scripted (it is only consumed if the LLM is called)."""
    fake.reset()
    fake.script(
        fc.tool("faq_sales", usage=(100, 10), question=QUESTION),
        fc.text(DISCOUNT, usage=(200, 20)),
    )
    return await collect(bot.answer(QUESTION, spender=who))


def assert_llm(result: TurnResult, fake: fc.ScriptedChatModel) -> None:
    assert result.mode == "llm", result
    assert not result.fallback
    assert result.usage.total_tokens == TURN_TOKENS
    assert [c.kind for c in fake.calls] == ["tools", "text"]  # router and answer


def assert_offline(
    result: TurnResult, fake: fc.ScriptedChatModel, scope: str, calls: int = 0
) -> None:
    """Answered offline with the notice of `scope`'s budget; `calls` LLM requests were made."""
    assert result.mode == "offline"
    assert result.fallback
    assert result.fallback_reason == f"budget_{scope}"
    assert result.fallback_notice == NOTICES[scope]  # type: ignore[index]
    assert result.answer == DISCOUNT  # the FAQ entry, quoted: a real answer, not an error
    assert result.sources
    assert len(fake.calls) == calls


async def test_conversation_budget_sends_the_next_question_offline_without_an_llm_call(
    make_bot: Any, fake: fc.ScriptedChatModel
) -> None:
    bot = make_bot(spend_conversation_tokens=2 * TURN_TOKENS)
    alice = Spender("ip:10.0.0.1", "conversation-a")
    for _ in range(2):
        assert_llm(await ask(bot, fake, alice), fake)
    assert_offline(await ask(bot, fake, alice), fake, "conversation")
    assert "Start a new conversation" in NOTICES["conversation"]
    # per conversation: the same client's new conversation still gets the LLM
    assert_llm(await ask(bot, fake, Spender("ip:10.0.0.1", "conversation-b")), fake)
    assert_offline(await ask(bot, fake, alice), fake, "conversation")


async def test_the_answer_call_is_checked_after_the_router_call_spent_the_budget(
    make_bot: Any, fake: fc.ScriptedChatModel
) -> None:
    """Budget 400: turn 1 spends 330; turn 2 passes the first check (330 < 400), its router
    call brings the count to 440, so the answer call is not made and the turn ends offline."""
    bot = make_bot(spend_conversation_tokens=400)
    who = Spender("ip:10.0.0.1", "c")
    assert_llm(await ask(bot, fake, who), fake)
    fake.reset()
    fake.script(fc.tool("faq_sales", usage=(100, 10), question=QUESTION), fc.text("x"))
    events = [e async for e in bot.answer(QUESTION, spender=who)]
    assert [c.kind for c in fake.calls] == ["tools"]  # the router only
    fallback = next(e for e in events if isinstance(e, Fallback))
    assert fallback.reason == "budget_conversation"
    assert events.index(fallback) > next(
        i for i, e in enumerate(events) if isinstance(e, RouteDecided)
    )
    result = events[-1].result
    assert result.mode == "offline"
    assert result.answer == DISCOUNT
    # a budget is no provider failure
    assert bot.breaker.failures == 0
    assert bot.breaker.state == "closed"


async def test_client_daily_budget_spans_conversations_and_spares_other_clients(
    make_bot: Any, fake: fc.ScriptedChatModel
) -> None:
    bot = make_bot(spend_client_daily_tokens=2 * TURN_TOKENS)
    assert_llm(await ask(bot, fake, Spender("ip:10.0.0.1", "c1")), fake)
    assert_llm(await ask(bot, fake, Spender("ip:10.0.0.1", "c2")), fake)
    # a new conversation does not reset a client's daily budget
    assert_offline(await ask(bot, fake, Spender("ip:10.0.0.1", "c3")), fake, "client")
    assert_llm(await ask(bot, fake, Spender("ip:10.0.0.2", "c4")), fake)


async def test_deployment_daily_budget_covers_every_client_and_the_cli(
    make_bot: Any, fake: fc.ScriptedChatModel
) -> None:
    bot = make_bot(spend_deployment_daily_tokens=2 * TURN_TOKENS)
    assert_llm(await ask(bot, fake, Spender("ip:10.0.0.1", "c1")), fake)
    assert_llm(await ask(bot, fake, None), fake)  # the CLI: no client, still counted
    for who in (Spender("ip:10.0.0.3", "c3"), None):
        assert_offline(await ask(bot, fake, who), fake, "deployment")
    status = await bot.spend.status()
    assert status["deployment_tokens_today"] == 2 * TURN_TOKENS
    assert status["deployment_budget_reached"] is True


async def test_the_broadest_budget_reached_is_the_one_reported(
    make_bot: Any, fake: fc.ScriptedChatModel
) -> None:
    bot = make_bot(
        spend_conversation_tokens=TURN_TOKENS,
        spend_client_daily_tokens=TURN_TOKENS,
        spend_deployment_daily_tokens=2 * TURN_TOKENS,
    )
    who = Spender("ip:10.0.0.1", "c1")
    assert_llm(await ask(bot, fake, who), fake)
    assert_offline(await ask(bot, fake, who), fake, "client")  # not "conversation"
    assert_llm(await ask(bot, fake, Spender("ip:10.0.0.2", "c2")), fake)
    assert_offline(await ask(bot, fake, who), fake, "deployment")


async def test_daily_budgets_start_again_on_the_next_utc_day(
    make_bot: Any, fake: fc.ScriptedChatModel
) -> None:
    now = [1_800_000_000.0]  # 2027-01-15 08:00 UTC
    spend = TokenBudgets(
        client_daily_tokens=TURN_TOKENS, deployment_daily_tokens=10**6, clock=lambda: now[0]
    )
    bot = make_bot(spend=spend)
    who = Spender("ip:10.0.0.1", "c1")
    assert spend.day() == "2027-01-15"
    assert_llm(await ask(bot, fake, who), fake)
    assert_offline(await ask(bot, fake, who), fake, "client")
    now[0] += 16 * 3600  # 2027-01-16 00:00 UTC
    assert spend.day() == "2027-01-16"
    assert (await spend.status())["deployment_tokens_today"] == 0
    assert_llm(await ask(bot, fake, who), fake)


async def test_no_budget_means_no_limit(make_bot: Any, fake: fc.ScriptedChatModel) -> None:
    bot = make_bot()
    who = Spender("ip:10.0.0.1", "c1")
    for _ in range(4):
        assert_llm(await ask(bot, fake, who), fake)
    assert (await bot.spend.status())["deployment_tokens_today"] == 4 * TURN_TOKENS


def test_defaults_limit_a_conversation_and_a_client_but_not_the_deployment(
    make_settings: Any,
) -> None:
    settings = make_settings()
    assert settings.spend_conversation_tokens > 0
    assert settings.spend_client_daily_tokens > settings.spend_conversation_tokens
    assert settings.spend_deployment_daily_tokens == 0
    assert settings.max_streams_per_client > 0


def test_memory_counters_expire_keys_and_sweep_them_out() -> None:
    """Counts read 0 once expired, and expired keys leave memory at the next sweep, so a
    deployment without Redis does not keep a key per visitor forever."""
    now = [1000.0]
    counters = MemoryCounters(sweep_every=60.0, clock=lambda: now[0])
    assert counters.incr("day", 300, expiry_s=100) == 300
    assert counters.incr("day", 30, expiry_s=100) == 330  # the expiry runs from the first count
    for i in range(1000):
        counters.incr(f"conversation-{i}", 10, expiry_s=50)
    assert len(counters) == 1001
    now[0] += 55
    assert counters.get("conversation-1") == 0
    assert counters.get("day") == 330
    now[0] += 50  # 105 s: past every expiry and the sweep interval
    assert counters.get("day") == 0
    assert counters.incr("fresh", 1, expiry_s=100) == 1  # this write sweeps
    assert len(counters) == 1
    assert counters.incr("day", 5, expiry_s=100) == 5  # an expired key starts again
