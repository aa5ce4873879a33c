"""Speculative answer call (SPECULATIVE_ANSWER, issue 11 item 6): for an unsure question the
answer call for retrieval's best category starts while the router decides, and is kept only if
the router agrees.

In process (tests/fake_chat_model.py): the router's call is held at a gate until the answer
call has arrived, so "the answer started while the router decided" is shown by the order of
events, not by timing. Hybrid retrieval on the deterministic HashEmbedder (real calibrated
zones).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faqbot.answering.bot import FaqBot
from faqbot.answering.events import Done, RouteDecided, Token
from faqbot.answering.factory import build_bot
from faqbot.domain import ChatTurn
from faqbot.metrics import SPECULATIVE
from faqbot.retrieval.embedders import HashEmbedder
from faqbot.retrieval.indexer import SemanticIndexer
from tests import fake_chat_model as fc
from tests import fake_openai as fo

DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
LABS = "Any instrument that exports CSV or mzML can be connected through the LabLens Agent."
CANDIDATES = [
    "is there a discount for paying annually",
    "what about annual subscription pricing",
    "plans cost",
]


# For tests/test_spend_abandon.py, which bills a dropped speculation over the wire: the router
# takes 300 ms to its first token, then 10 argument fragments at 50 tokens/s (~0.5 s in all),
# so a speculative answer's call has gone out by the time the router has decided.
PROFILE = fo.LatencyProfile(first_token_ms=300, tokens_per_second=50, tool_call_tokens=10)


def router_choosing(category: str | None) -> Any:
    """An HTTP fake responder whose router picks `category` (None: "not covered") and whose
    answer call quotes the first FAQ answer it was given (tests/test_spend_abandon.py)."""

    def respond(body: dict[str, Any]) -> fo.Reply:
        if body.get("tools"):
            names = [t["function"]["name"] for t in body["tools"]]
            if category is None:
                return fo.tool("not_covered")
            chosen = next(n for n in names if category in n)
            return fo.tool(chosen, question=body["messages"][-1]["content"])
        return fo.auto_responder(body)

    return respond


@pytest.fixture
def model() -> Iterator[fc.ScriptedChatModel]:
    scripted = fc.ScriptedChatModel()
    yield scripted
    scripted.assert_all_scripted()


@pytest.fixture
def make_bot(make_settings: Any, model: fc.ScriptedChatModel, tmp_path: Path) -> Any:
    def make(**overrides: Any) -> FaqBot:
        settings = make_settings(openai_api_key="test-key", answer_cache_size=0, **overrides)
        semantic = SemanticIndexer(HashEmbedder(), tmp_path / "vectors")
        bot = build_bot(settings, model=model, semantic=semantic)
        assert bot.wait_for_vectors(20)
        return bot

    return make


def unsure_sales_question(bot: FaqBot) -> str:
    """A question retrieval ranks under sales with a "Did you mean" (unsure) confidence."""
    for question in CANDIDATES:
        found = bot.retriever.search(question, k=1)
        zone = bot.offline.zones.zone(found.confidence)
        if found.top is not None and found.top.entry.category == "sales" and zone == "suggest":
            return question
    pytest.fail("no candidate question is in the suggest zone: update CANDIDATES")


async def run(bot: FaqBot, question: str, history: list[ChatTurn] | None = None) -> dict[str, Any]:
    events = [e async for e in bot.answer(question, history or [])]
    done = next(e for e in events if isinstance(e, Done))
    route = next(e for e in events if isinstance(e, RouteDecided))
    return {"result": done.result, "route": route, "events": events}


async def run_held(
    bot: FaqBot, model: fc.ScriptedChatModel, question: str, router: fc.Step, *answers: fc.Step
) -> dict[str, Any]:
    """Run `question` with the router's reply held until a second call (the speculative
    answer) has gone out; fails if none does."""
    release = asyncio.Event()
    model.script(fc.gated(router, release), *answers)
    turn = asyncio.create_task(run(bot, question))
    try:
        async with asyncio.timeout(5):
            await model.wait_calls(2)  # the answer call went out while the router is held
    finally:
        release.set()
    assert [c.kind for c in model.calls[:2]] == ["tools", "text"]
    return await turn


async def run_serial(
    bot: FaqBot,
    model: fc.ScriptedChatModel,
    question: str,
    router: fc.Step,
    *answers: fc.Step,
    history: list[ChatTurn] | None = None,
) -> dict[str, Any]:
    """Run `question` with the router's reply held until the event loop has run everything
    else that was ready (a speculative answer call would have gone out by then)."""
    release = asyncio.Event()
    model.script(fc.gated(router, release), *answers)
    seen = len(model.calls)
    turn = asyncio.create_task(run(bot, question, history))
    async with asyncio.timeout(5):
        await model.wait_calls(seen + 1)
    for _ in range(20):  # a started speculation needs one or two turns of the loop
        await asyncio.sleep(0)
    assert len(model.calls) == seen + 1, "an answer call went out before the router decided"
    release.set()
    return await turn


def kinds(model: fc.ScriptedChatModel) -> list[str]:
    return ["router" if c.kind == "tools" else "answer" for c in model.calls]


def grounded_on(call: fc.Call) -> str:
    return json.dumps(call.messages)


def counted(outcome: str) -> float:
    return SPECULATIVE.labels(outcome)._value.get()  # type: ignore[no-any-return]


async def test_the_router_agrees_and_the_started_answer_is_kept(
    make_bot: Any, model: fc.ScriptedChatModel
) -> None:
    serial_bot = make_bot()
    question = unsure_sales_question(serial_bot)
    model.script(fc.tool("faq_sales", question=question), fc.text(DISCOUNT))
    serial = await run(serial_bot, question)
    assert kinds(model) == ["router", "answer"]
    model.calls.clear()
    kept_before = counted("kept")

    fast = await run_held(
        make_bot(speculative_answer=True),
        model,
        question,
        fc.tool("faq_sales", question=question),
        fc.text(DISCOUNT, usage=(200, 15)),
    )

    assert kinds(model) == ["router", "answer"]  # no third call
    assert fast["route"].via == "llm"
    assert fast["route"].category == "sales"
    assert fast["result"].answer == serial["result"].answer == DISCOUNT
    assert [s.id for s in fast["result"].sources] == [s.id for s in serial["result"].sources]
    assert "20% discount" in grounded_on(model.calls[1])  # grounded on sales
    assert counted("kept") == kept_before + 1
    assert fast["result"].usage.completion_tokens >= 15  # the kept call's tokens are counted


async def test_the_router_disagrees_and_the_started_answer_is_dropped(
    make_bot: Any, model: fc.ScriptedChatModel
) -> None:
    bot = make_bot(speculative_answer=True)
    question = unsure_sales_question(bot)
    discarded_before = counted("discarded")

    out = await run_held(
        bot,
        model,
        question,
        fc.tool("faq_labs", question=question),
        fc.text(DISCOUNT),  # the speculative sales answer, dropped
        fc.text(LABS),  # the answer grounded on the router's category
    )

    assert out["route"].category == "labs"
    assert kinds(model) == ["router", "answer", "answer"]  # the dropped one and the real one
    assert "LabLens Agent" not in grounded_on(model.calls[1])
    assert "LabLens Agent" in grounded_on(model.calls[2])  # grounded on labs
    assert out["result"].answer == LABS
    tokens = "".join(e.text for e in out["events"] if isinstance(e, Token))
    assert "discount" not in tokens.lower()  # nothing of the sales answer leaked
    assert counted("discarded") == discarded_before + 1


async def test_the_router_says_not_covered_and_nothing_of_the_guess_is_shown(
    make_bot: Any, model: fc.ScriptedChatModel
) -> None:
    bot = make_bot(speculative_answer=True)
    out = await run_held(
        bot, model, unsure_sales_question(bot), fc.tool("not_covered"), fc.text(DISCOUNT)
    )
    assert out["route"].category is None
    assert out["result"].refused
    tokens = "".join(e.text for e in out["events"] if isinstance(e, Token))
    assert "discount" not in tokens.lower()


async def test_off_by_default_and_never_for_follow_ups_or_confident_questions(
    make_bot: Any, model: fc.ScriptedChatModel
) -> None:
    question = unsure_sales_question(make_bot())
    await run_serial(
        make_bot(), model, question, fc.tool("faq_sales", question=question), fc.text(DISCOUNT)
    )  # default settings
    assert kinds(model) == ["router", "answer"]

    bot = make_bot(speculative_answer=True)
    model.calls.clear()
    history = [ChatTurn("user", "What are your pricing plans?"), ChatTurn("assistant", "...")]
    rewrite = "Do you offer discounts for annual plans?"
    follow_up = "what about annual subscription pricing then?"
    found = bot.retriever.search(follow_up, k=1)  # unsure: it would qualify if it stood alone
    assert bot.offline.zones.zone(found.confidence) == "suggest", "update the follow-up"
    assert bot.offline.is_follow_up(follow_up)
    await run_serial(
        bot,
        model,
        follow_up,
        fc.tool("faq_sales", question=rewrite),
        fc.text(DISCOUNT),
        history=history,
    )
    assert kinds(model) == ["router", "answer"]  # a follow-up waits for the rewrite

    model.calls.clear()
    model.script(fc.text(DISCOUNT))
    out = await run(bot, "Do you offer discounts for annual subscriptions?")
    assert out["route"].via == "retrieval"  # confident: routed locally, one call
    assert kinds(model) == ["answer"]
