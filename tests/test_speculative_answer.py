"""Speculative answer call (SPECULATIVE_ANSWER, issue 11 item 6): for an unsure question the
answer call for retrieval's best category starts while the router decides, and is kept only if
the router agrees.

Against the loopback fake OpenAI server with a latency profile (router and answer calls take
real time), hybrid retrieval on the deterministic HashEmbedder (real calibrated zones).
"""

from __future__ import annotations

import json
import time
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
from tests import fake_openai as fo

pytestmark = pytest.mark.llm

DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
CANDIDATES = [
    "is there a discount for paying annually",
    "what about annual subscription pricing",
    "plans cost",
]
# router: 300 ms to its first token, then 10 argument fragments at 50 tokens/s (~0.5 s in all);
# an answer's first token after 300 ms, so a speculative answer's first token is in by the time
# the router has decided.
PROFILE = fo.LatencyProfile(first_token_ms=300, tokens_per_second=50, tool_call_tokens=10)


@pytest.fixture
def make_bot(make_settings: Any, fake_openai: Any, tmp_path: Path) -> Any:
    def make(**overrides: Any) -> FaqBot:
        settings = make_settings(
            openai_api_key="test-key",
            openai_base_url=fake_openai.base_url,
            openai_max_retries=0,
            openai_timeout=5.0,
            llm_budget_seconds=10.0,
            answer_cache_size=0,
            **overrides,
        )
        semantic = SemanticIndexer(HashEmbedder(), tmp_path / "vectors")
        bot = build_bot(settings, semantic=semantic)
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


def router_choosing(category: str | None) -> Any:
    """A fake model whose router picks `category` (None: "not covered") and whose answer call
    quotes the first FAQ answer it was given."""

    def respond(body: dict[str, Any]) -> fo.Reply:
        if body.get("tools"):
            names = [t["function"]["name"] for t in body["tools"]]
            if category is None:
                return fo.tool("not_covered")
            chosen = next(n for n in names if category in n)
            return fo.tool(chosen, question=body["messages"][-1]["content"])
        return fo.auto_responder(body)

    return respond


async def run(bot: FaqBot, question: str, history: list[ChatTurn] | None = None) -> dict[str, Any]:
    """Events, result, and the seconds from the route decision to the first answer token."""
    routed = first = None
    events = []
    async for event in bot.answer(question, history or []):
        if isinstance(event, RouteDecided):
            routed = time.perf_counter()
        if isinstance(event, Token) and first is None:
            first = time.perf_counter()
        events.append(event)
    done = next(e for e in events if isinstance(e, Done))
    route = next(e for e in events if isinstance(e, RouteDecided))
    wait = first - routed if first is not None and routed is not None else None
    return {"wait": wait, "result": done.result, "route": route, "events": events}


def kinds(fake: Any) -> list[str]:
    return ["router" if r.get("tools") else "answer" for r in fake.requests]


def counted(outcome: str) -> float:
    return SPECULATIVE.labels(outcome)._value.get()  # type: ignore[no-any-return]


async def test_the_router_agrees_and_the_started_answer_is_kept(
    make_bot: Any, fake_openai: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_openai, "responder", router_choosing("sales"))
    fake_openai.profile = PROFILE
    serial_bot = make_bot()
    question = unsure_sales_question(serial_bot)
    serial = await run(serial_bot, question)
    assert kinds(fake_openai) == ["router", "answer"]
    fake_openai.reset()
    fake_openai.profile = PROFILE
    kept_before = counted("kept")

    fast = await run(make_bot(speculative_answer=True), question)

    assert sorted(kinds(fake_openai)) == ["answer", "router"]  # no third call
    assert fast["route"].via == "llm"
    assert fast["route"].category == "sales"
    assert fast["result"].answer == serial["result"].answer
    assert [s.id for s in fast["result"].sources] == [s.id for s in serial["result"].sources]
    assert counted("kept") == kept_before + 1
    # serially the answer call starts once the router has decided: its first token comes
    # >= 300 ms later (the profile); speculatively it was already on its way
    assert serial["wait"] >= 0.25
    assert fast["wait"] < 0.15
    assert fast["result"].usage.completion_tokens > 0  # the kept call's tokens are counted


async def test_the_router_disagrees_and_the_started_answer_is_dropped(
    make_bot: Any, fake_openai: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_openai, "responder", router_choosing("labs"))
    fake_openai.profile = PROFILE  # the router takes long enough for the guess to go out
    bot = make_bot(speculative_answer=True)
    question = unsure_sales_question(bot)
    discarded_before = counted("discarded")

    out = await run(bot, question)

    assert out["route"].category == "labs"
    assert kinds(fake_openai).count("answer") == 2  # the dropped one and the real one
    answer_prompts = [json.dumps(r["messages"]) for r in fake_openai.requests if not r.get("tools")]
    assert any("LabLens Agent" in p for p in answer_prompts)  # grounded on labs
    assert "LabLens Agent" in out["result"].answer or "instrument" in out["result"].answer.lower()
    assert DISCOUNT not in out["result"].answer  # nothing of the sales answer leaked
    assert counted("discarded") == discarded_before + 1


async def test_the_router_says_not_covered_and_nothing_of_the_guess_is_shown(
    make_bot: Any, fake_openai: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_openai, "responder", router_choosing(None))
    fake_openai.profile = PROFILE
    bot = make_bot(speculative_answer=True)
    out = await run(bot, unsure_sales_question(bot))
    assert out["route"].category is None
    assert out["result"].refused
    tokens = "".join(e.text for e in out["events"] if isinstance(e, Token))
    assert "discount" not in tokens.lower()


async def test_off_by_default_and_never_for_follow_ups_or_confident_questions(
    make_bot: Any, fake_openai: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_openai, "responder", router_choosing("sales"))
    question = unsure_sales_question(make_bot())
    await run(make_bot(), question)  # default settings
    assert kinds(fake_openai) == ["router", "answer"]

    bot = make_bot(speculative_answer=True)
    fake_openai.reset()
    history = [ChatTurn("user", "What are your pricing plans?"), ChatTurn("assistant", "...")]
    await run(bot, "and for annual plans?", history)
    assert kinds(fake_openai) == ["router", "answer"]  # a follow-up waits for the rewrite

    fake_openai.reset()
    out = await run(bot, "Do you offer discounts for annual subscriptions?")
    assert out["route"].via == "retrieval"  # confident: routed locally, one call
    assert kinds(fake_openai) == ["answer"]
