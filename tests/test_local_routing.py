"""Local routing: a confident, stand-alone question skips the router's LLM call (issue 11 item 6).

The bot runs the LLM path against the loopback fake OpenAI server, with hybrid retrieval on the
deterministic HashEmbedder (so confidences come from the real calibrated ranker, not a stub).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from faqbot.answering.bot import FaqBot, collect
from faqbot.answering.events import RouteDecided
from faqbot.answering.factory import build_bot
from faqbot.domain import ChatTurn
from faqbot.retrieval.embedders import HashEmbedder
from faqbot.retrieval.indexer import SemanticIndexer
from tests import fake_openai as fo

pytestmark = pytest.mark.llm

DISCOUNT_Q = "Do you offer discounts for annual subscriptions?"
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."


def _settings(make_settings: Any, fake_openai: Any, **overrides: Any) -> Any:
    base = {
        "openai_api_key": "test-key",
        "openai_base_url": fake_openai.base_url,
        "openai_max_retries": 0,
        "openai_timeout": 2.0,
        "llm_budget_seconds": 3.0,
    }
    base.update(overrides)
    return make_settings(**base)


@pytest.fixture
def make_bot(make_settings: Any, fake_openai: Any, tmp_path: Path) -> Any:
    def make(**overrides: Any) -> FaqBot:
        semantic = SemanticIndexer(HashEmbedder(), tmp_path / "vectors")
        bot = build_bot(_settings(make_settings, fake_openai, **overrides), semantic=semantic)
        assert bot.wait_for_vectors(20)
        assert bot.retriever.mode == "hybrid"
        return bot

    return make


def _route(events: list[Any]) -> RouteDecided:
    return next(e for e in events if isinstance(e, RouteDecided))


async def test_a_confident_question_skips_the_router_call(make_bot: Any, fake_openai: Any) -> None:
    bot = make_bot()
    fake_openai.script(fo.text(DISCOUNT))
    events = [e async for e in bot.answer(DISCOUNT_Q)]
    route = _route(events)
    assert route.via == "retrieval"
    assert route.category == "sales"
    assert len(fake_openai.requests) == 1  # the answer call only
    assert not fake_openai.requests[0].get("tools")
    result = (await collect(bot.answer(DISCOUNT_Q))).answer  # cached now
    assert result == DISCOUNT


async def test_a_cached_answer_needs_no_llm_call(make_bot: Any, fake_openai: Any) -> None:
    bot = make_bot()
    fake_openai.script(fo.text(DISCOUNT))
    await collect(bot.answer(DISCOUNT_Q))
    calls = len(fake_openai.requests)
    again = await collect(bot.answer(DISCOUNT_Q))
    assert again.cached
    assert again.answer == DISCOUNT
    assert len(fake_openai.requests) == calls  # no router call, no answer call


async def test_a_follow_up_still_goes_to_the_router(make_bot: Any, fake_openai: Any) -> None:
    bot = make_bot()
    fake_openai.script(
        fo.tool("faq_sales", question="Do you offer discounts for annual plans?"),
        fo.text(DISCOUNT),
    )
    history = [ChatTurn("user", "What are your pricing plans?"), ChatTurn("assistant", "...")]
    events = [e async for e in bot.answer("and for annual plans?", history)]
    assert _route(events).via == "llm"
    assert fake_openai.requests[0].get("tools")  # the router saw the conversation


async def test_an_unsure_question_goes_to_the_router(make_bot: Any, fake_openai: Any) -> None:
    bot = make_bot()
    fake_openai.script(fo.text("I can only answer questions about our FAQ."))  # no tool call
    events = [e async for e in bot.answer("What's the weather in Paris tomorrow?")]
    assert _route(events).via == "llm"
    assert fake_openai.requests[0].get("tools")


async def test_local_routing_can_be_switched_off(make_bot: Any, fake_openai: Any) -> None:
    bot = make_bot(local_routing=False)
    fake_openai.script(fo.tool("faq_sales", question=DISCOUNT_Q), fo.text(DISCOUNT))
    events = [e async for e in bot.answer(DISCOUNT_Q)]
    assert _route(events).via == "llm"
    assert len(fake_openai.requests) == 2
