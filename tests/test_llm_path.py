"""The bot's decisions on the LLM path (routing, grounding, follow-ups, fallback, breaker,
cache), against the in-process ScriptedChatModel. What the OpenAI adapter sends over the wire
and how HTTP faults reach the bot: tests/test_llm_path_http.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faqbot.answering.bot import FaqBot, collect
from faqbot.answering.breaker import CircuitBreaker
from faqbot.answering.events import Done, Fallback, Refused, RouteDecided, Token
from faqbot.answering.factory import build_bot
from faqbot.domain import ChatTurn
from tests import fake_chat_model as fc

REFUSAL = (
    "I don't have that information in my FAQ database. Please contact support for more details."
)
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."


@pytest.fixture
def llm_settings(make_settings: Any) -> Any:
    def make(**overrides: Any) -> Any:
        base = {"openai_api_key": "test-key", "openai_model": "gpt-4o-mini"}
        base.update(overrides)
        return make_settings(**base)

    return make


@pytest.fixture
def model(llm_settings: Any) -> Iterator[fc.ScriptedChatModel]:
    scripted = fc.ScriptedChatModel(prices=llm_settings().llm_price_table)
    yield scripted
    scripted.assert_all_scripted()


@pytest.fixture
def make_bot(llm_settings: Any, model: fc.ScriptedChatModel) -> Any:
    def make(**overrides: Any) -> FaqBot:
        return build_bot(llm_settings(**overrides), model=model)

    return make


@pytest.fixture
def bot(make_bot: Any) -> FaqBot:
    return make_bot()


async def run(bot: FaqBot, q: str, history: list[ChatTurn] | None = None) -> list[Any]:
    return [e async for e in bot.answer(q, history or [])]


@pytest.mark.parametrize(
    ("category", "question", "answer"),
    [
        ("sales", "Do you offer discounts for annual subscriptions?", DISCOUNT),
        ("labs", "How long do you keep raw instrument data?", "Raw data is kept seven years."),
        ("reports", "Can I export reports to PDF?", "Yes, use the Export button and pick PDF."),
    ],
)
async def test_routes_to_each_category_and_streams_the_answer(
    bot: FaqBot, model: fc.ScriptedChatModel, category: str, question: str, answer: str
) -> None:
    model.script(fc.tool(f"faq_{category}", question=question), fc.text(answer))
    events = await run(bot, question)
    route = next(e for e in events if isinstance(e, RouteDecided))
    assert route.category == category
    assert route.via == "llm"
    tokens = [e.text for e in events if isinstance(e, Token)]
    assert len(tokens) >= 5
    result = events[-1].result
    assert result.answer == answer == "".join(tokens).strip()
    assert result.mode == "llm"
    assert not result.fallback
    assert result.sources
    assert result.sources[0].category == category
    router_call, answer_call = model.calls
    assert (router_call.kind, answer_call.kind) == ("tools", "text")
    assert router_call.tools is not None
    assert {t["function"]["name"] for t in router_call.tools} == {
        "faq_sales",
        "faq_labs",
        "faq_reports",
        "not_covered",
    }
    assert router_call.tool_choice == "required"
    assert answer_call.messages[-1]["content"] == question
    assert answer_call.tools is None


async def test_router_tools_are_strict_schemas(bot: FaqBot, model: fc.ScriptedChatModel) -> None:
    model.script(fc.text("NONE"))
    await run(bot, "hello")
    tools = model.calls[0].tools
    assert tools
    for tool in tools:
        fn = tool["function"]
        assert fn["strict"] is True
        assert fn["parameters"]["additionalProperties"] is False
        expected = [] if fn["name"] == "not_covered" else ["question"]
        assert fn["parameters"]["required"] == expected


async def test_follow_up_is_routed_with_history_and_rewritten(
    bot: FaqBot, model: fc.ScriptedChatModel
) -> None:
    history = [
        ChatTurn("user", "Do you offer discounts?"),
        ChatTurn("assistant", DISCOUNT),
    ]
    standalone = "Do you offer discounts for annual subscriptions?"
    model.script(fc.tool("faq_sales", question=standalone), fc.text(DISCOUNT))
    events = await run(bot, "and for annual plans?", history)
    route = next(e for e in events if isinstance(e, RouteDecided))
    assert route.standalone_question == standalone
    router_msgs = model.calls[0].messages
    assert [m["role"] for m in router_msgs] == ["system", "user", "assistant", "user"]
    assert router_msgs[1]["content"] == "Do you offer discounts?"
    assert router_msgs[-1]["content"] == "and for annual plans?"
    answer_msgs = model.calls[1].messages
    assert answer_msgs[-1]["content"] == standalone


async def test_history_window_is_bounded(make_bot: Any, model: fc.ScriptedChatModel) -> None:
    bot = make_bot(llm_history_turns=2)
    history = [ChatTurn("user" if i % 2 == 0 else "assistant", f"turn {i}") for i in range(10)]
    model.script(fc.text("NONE"))
    await run(bot, "latest?", history)
    msgs = model.calls[0].messages
    assert [m["content"] for m in msgs[1:]] == ["turn 8", "turn 9", "latest?"]


async def test_no_tool_call_means_refusal(bot: FaqBot, model: fc.ScriptedChatModel) -> None:
    model.script(fc.text("NONE"))
    events = await run(bot, "What's the weather in Paris?")
    assert next(e for e in events if isinstance(e, RouteDecided)).category is None
    assert any(isinstance(e, Refused) for e in events)
    result = events[-1].result
    assert result.answer == REFUSAL
    assert result.refused
    assert not result.fallback
    assert len(model.calls) == 1  # no answer call


async def test_model_refusal_is_detected(bot: FaqBot, model: fc.ScriptedChatModel) -> None:
    model.script(fc.tool("faq_sales", question="Do you sell lab coats?"), fc.text(REFUSAL))
    result = await collect(bot.answer("Do you sell lab coats?"))
    assert result.refused
    assert result.sources == ()
    assert result.confidence == 0.0


async def test_usage_and_cost_of_both_calls_are_summed(
    bot: FaqBot, model: fc.ScriptedChatModel
) -> None:
    model.script(
        fc.tool("faq_sales", question="annual discount?", usage=(120, 10)),
        fc.text(DISCOUNT, usage=(300, 20)),
    )
    result = await collect(bot.answer("annual discount?"))
    assert result.usage.prompt_tokens == 420
    assert result.usage.completion_tokens == 30
    # gpt-4o-mini: $0.15 / $0.60 per million tokens
    assert result.usage.cost_usd == pytest.approx((420 * 0.15 + 30 * 0.60) / 1e6)


async def test_sources_are_attributed_to_the_entry_the_answer_uses(
    bot: FaqBot, model: fc.ScriptedChatModel
) -> None:
    model.script(
        fc.tool("faq_sales", question="What is your refund policy?"),
        fc.text("We offer a 30-day money-back guarantee for all new subscriptions."),
    )
    result = await collect(bot.answer("refunds?"))
    assert result.sources[0].id == "sales-what-is-your-refund-policy"
    assert 0.5 < result.confidence <= 1.0


async def test_multiple_tool_calls_take_the_best(bot: FaqBot, model: fc.ScriptedChatModel) -> None:
    model.script(
        fc.tools(
            [
                ("faq_labs", {"question": "Can I export reports to PDF?"}),
                ("faq_reports", {"question": "Can I export reports to PDF?"}),
            ]
        ),
        fc.text("Yes. Every report has an Export button with PDF, CSV and Excel options."),
    )
    result = await collect(bot.answer("Can I export reports to PDF?"))
    assert result.category == "reports"


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (fc.rate_limited, "LLM_RATE_LIMITED"),
        (fc.server_error, "LLM_UNAVAILABLE"),
        (fc.timeout, "LLM_TIMEOUT"),
        (fc.bad_args, "LLM_OUTPUT_REJECTED"),
        (fc.unknown_tool, "LLM_OUTPUT_REJECTED"),
        (lambda: fc.tool("faq_sales", question="x", smuggled="y"), "LLM_OUTPUT_REJECTED"),
        (fc.empty_choices, "LLM_PROTOCOL"),
        (fc.auth_error, "LLM_AUTH"),
    ],
)
async def test_router_faults_fall_back_to_offline(
    bot: FaqBot, model: fc.ScriptedChatModel, step: Any, reason: str
) -> None:
    model.script(step())
    events = await run(bot, "Do you offer discounts for annual subscriptions?")
    fallback = next(e for e in events if isinstance(e, Fallback))
    assert fallback.reason == reason
    assert "FAQ" in fallback.message
    if reason == "LLM_AUTH":
        assert "not configured correctly" in fallback.message
    result = events[-1].result
    assert result.fallback
    assert result.fallback_reason == reason
    assert result.mode == "offline"
    assert result.answer == DISCOUNT
    assert result.category == "sales"
    # a model output the bot refused is no verdict on the provider
    assert bot.breaker.failures == (0 if reason == "LLM_OUTPUT_REJECTED" else 1)


@pytest.mark.parametrize(
    "step",
    [lambda: fc.torn("We offer a twenty percent discount on", after=3), fc.server_error],
)
async def test_answer_stream_faults_fall_back_and_reset(
    bot: FaqBot, model: fc.ScriptedChatModel, step: Any
) -> None:
    model.script(fc.tool("faq_sales", question="annual discount?"), step())
    events = await run(bot, "annual discount?")
    kinds = [type(e).__name__ for e in events]
    assert "Fallback" in kinds
    after = kinds[kinds.index("Fallback") :]
    assert "RouteDecided" in after
    assert "Token" in after
    result = events[-1].result
    assert result.fallback
    assert result.answer == DISCOUNT
    assert bot.breaker.failures == 1


async def test_retry_after_keeps_the_circuit_open_that_long(
    make_bot: Any, model: fc.ScriptedChatModel
) -> None:
    bot = make_bot(circuit_failure_threshold=5)
    now = [0.0]
    bot.breaker = CircuitBreaker(5, 30.0, clock=lambda: now[0])
    model.script(fc.rate_limited(retry_after=120))
    assert (await collect(bot.answer("annual discount?"))).fallback_reason == "LLM_RATE_LIMITED"
    assert bot.breaker.state == "open"  # one failure of five, but the provider said 120 s
    now[0] = 119.0
    assert (await collect(bot.answer("annual discount?"))).fallback_reason == "circuit_open"
    assert len(model.calls) == 1


async def test_slow_first_token_beyond_budget_falls_back_in_time(
    make_bot: Any, model: fc.ScriptedChatModel
) -> None:
    bot = make_bot(llm_budget_seconds=0.3)
    never = asyncio.Event()
    model.script(
        fc.tool("faq_sales", question="annual discount?"), fc.gated(fc.text(DISCOUNT), never)
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(5):  # the gate never opens: only the bot's budget ends the wait
        result = await collect(bot.answer("annual discount?"))
    assert loop.time() - started < 2.0
    assert result.fallback
    assert result.fallback_reason == "LLM_TIMEOUT"
    assert result.answer == DISCOUNT


async def test_circuit_breaker_opens_then_closes(
    make_bot: Any, model: fc.ScriptedChatModel
) -> None:
    bot = make_bot()
    now = [0.0]
    bot.breaker = CircuitBreaker(2, 0.5, clock=lambda: now[0])
    model.script(fc.server_error(), fc.server_error())
    for _ in range(2):
        assert (await collect(bot.answer("annual discount?"))).fallback_reason == "LLM_UNAVAILABLE"
    assert bot.breaker.state == "open"
    seen = len(model.calls)
    skipped = await collect(bot.answer("annual discount?"))
    assert skipped.fallback_reason == "circuit_open"
    assert len(model.calls) == seen  # the LLM was not called
    now[0] = 0.6
    assert bot.breaker.state == "half_open"
    model.script(fc.tool("faq_sales", question="annual discount?"), fc.text(DISCOUNT))
    probe = await collect(bot.answer("annual discount?"))
    assert not probe.fallback
    assert bot.breaker.state == "closed"


async def test_repeated_question_hits_the_cache(bot: FaqBot, model: fc.ScriptedChatModel) -> None:
    standalone = "Do you offer discounts for annual subscriptions?"
    model.script(
        fc.tool("faq_sales", question=standalone),
        fc.text(DISCOUNT),
        fc.tool("faq_sales", question=standalone.upper() + "  "),
    )
    first = await collect(bot.answer(standalone))
    second = await collect(bot.answer("and the annual ones?", [ChatTurn("user", "discounts?")]))
    assert not first.cached
    assert second.cached
    assert second.answer == first.answer
    assert second.sources == first.sources
    assert [c.kind for c in model.calls] == ["tools", "text", "tools"]  # no second answer call
    assert bot.cache.stats()["hits"] == 1


async def test_only_top_k_entries_of_a_large_category_are_sent(
    tmp_path: Path, make_bot: Any, model: fc.ScriptedChatModel
) -> None:
    big = tmp_path / "big"
    big.mkdir()
    blocks = [
        f"Q: How do I configure widget model {i} for lab {i}?\n"
        f"A: Widget model {i} is configured from panel {i}."
        for i in range(40)
    ]
    blocks.append(
        "Q: What is the warranty on the centrifuge?\nA: The centrifuge has a 3-year warranty."
    )
    (big / "equipment.txt").write_text("\n\n".join(blocks), encoding="utf-8")
    bot = make_bot(faq_dir=big, retrieval_top_k=3)
    model.script(
        fc.tool("faq_equipment", question="What is the warranty on the centrifuge?"),
        fc.text("The centrifuge has a 3-year warranty."),
    )
    result = await collect(bot.answer("centrifuge warranty?"))
    system = model.calls[1].messages[0]["content"]
    assert system.count("[equipment-") == 3
    assert "3-year warranty" in system
    assert result.sources[0].question == "What is the warranty on the centrifuge?"
    router = model.calls[0]
    router_body = json.dumps([router.messages, router.tools])
    assert "3-year warranty" not in router_body  # the router never sees answers


async def test_small_category_is_sent_whole(bot: FaqBot, model: fc.ScriptedChatModel) -> None:
    model.script(fc.tool("faq_labs", question="QC rules?"), fc.text("Add Westgard rules."))
    await collect(bot.answer("QC rules?"))
    system = model.calls[1].messages[0]["content"]
    assert system.count("[labs-") == 3


async def test_copilot_brief_style_reaches_the_prompt(
    bot: FaqBot, model: fc.ScriptedChatModel
) -> None:
    model.script(fc.tool("faq_sales", question="refund?"), fc.text("30 days."))
    events = [e async for e in bot.answer("refund?", [], brief=True)]
    assert isinstance(events[-1], Done)
    assert "at most two short sentences" in model.calls[1].messages[0]["content"]
