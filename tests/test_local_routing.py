"""Local routing: a confident, stand-alone question skips the router's LLM call (issue 11 item 6).

The bot runs the LLM path against the in-process ScriptedChatModel (tests/fake_chat_model.py),
with hybrid retrieval on the deterministic HashEmbedder (so confidences come from the real
calibrated ranker, not a stub).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faqbot.answering.bot import FaqBot, collect
from faqbot.answering.events import RouteDecided
from faqbot.answering.factory import build_bot
from faqbot.domain import ChatTurn
from faqbot.retrieval.embedders import HashEmbedder
from faqbot.retrieval.indexer import SemanticIndexer
from tests import fake_chat_model as fc

DISCOUNT_Q = "Do you offer discounts for annual subscriptions?"
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."


@pytest.fixture
def model() -> Iterator[fc.ScriptedChatModel]:
    scripted = fc.ScriptedChatModel()
    yield scripted
    scripted.assert_all_scripted()


@pytest.fixture
def make_bot(make_settings: Any, model: fc.ScriptedChatModel, tmp_path: Path) -> Any:
    def make(**overrides: Any) -> FaqBot:
        semantic = SemanticIndexer(HashEmbedder(), tmp_path / "vectors")
        settings = make_settings(openai_api_key="test-key", **overrides)
        bot = build_bot(settings, model=model, semantic=semantic)
        assert bot.wait_for_vectors(20)
        assert bot.retriever.mode == "hybrid"
        return bot

    return make


def _route(events: list[Any]) -> RouteDecided:
    return next(e for e in events if isinstance(e, RouteDecided))


async def test_a_confident_question_skips_the_router_call(
    make_bot: Any, model: fc.ScriptedChatModel
) -> None:
    bot = make_bot()
    model.script(fc.text(DISCOUNT))
    events = [e async for e in bot.answer(DISCOUNT_Q)]
    route = _route(events)
    assert route.via == "retrieval"
    assert route.category == "sales"
    assert [c.kind for c in model.calls] == ["text"]  # the answer call only
    assert model.calls[0].tools is None
    result = (await collect(bot.answer(DISCOUNT_Q))).answer  # cached now
    assert result == DISCOUNT


async def test_a_cached_answer_needs_no_llm_call(
    make_bot: Any, model: fc.ScriptedChatModel
) -> None:
    bot = make_bot()
    model.script(fc.text(DISCOUNT))
    await collect(bot.answer(DISCOUNT_Q))
    calls = len(model.calls)
    again = await collect(bot.answer(DISCOUNT_Q))
    assert again.cached
    assert again.answer == DISCOUNT
    assert len(model.calls) == calls  # no router call, no answer call


async def test_a_follow_up_still_goes_to_the_router(
    make_bot: Any, model: fc.ScriptedChatModel
) -> None:
    bot = make_bot()
    model.script(
        fc.tool("faq_sales", question="Do you offer discounts for annual plans?"),
        fc.text(DISCOUNT),
    )
    history = [ChatTurn("user", "What are your pricing plans?"), ChatTurn("assistant", "...")]
    events = [e async for e in bot.answer("and for annual plans?", history)]
    assert _route(events).via == "llm"
    assert model.calls[0].tools  # the router saw the conversation
    assert [m["content"] for m in model.calls[0].messages[1:3]] == [
        "What are your pricing plans?",
        "...",
    ]


async def test_an_unsure_question_goes_to_the_router(
    make_bot: Any, model: fc.ScriptedChatModel
) -> None:
    bot = make_bot()
    model.script(fc.text("I can only answer questions about our FAQ."))  # no tool call
    events = [e async for e in bot.answer("What's the weather in Paris tomorrow?")]
    assert _route(events).via == "llm"
    assert model.calls[0].tools


async def test_local_routing_can_be_switched_off(
    make_bot: Any, model: fc.ScriptedChatModel
) -> None:
    bot = make_bot(local_routing=False)
    model.script(fc.tool("faq_sales", question=DISCOUNT_Q), fc.text(DISCOUNT))
    events = [e async for e in bot.answer(DISCOUNT_Q)]
    assert _route(events).via == "llm"
    assert [c.kind for c in model.calls] == ["tools", "text"]
