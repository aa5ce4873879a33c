"""The LLM path through the real OpenAI SDK against the loopback fake server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from faqbot.answering.bot import FaqBot, collect
from faqbot.answering.events import Done, Fallback, Refused, RouteDecided, Token
from faqbot.answering.factory import build_bot
from faqbot.domain import ChatTurn
from tests import fake_openai as fo

pytestmark = pytest.mark.llm
REFUSAL = (
    "I don't have that information in my FAQ database. Please contact support for more details."
)
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."


@pytest.fixture
def llm_settings(make_settings: Any, fake_openai: Any) -> Any:
    def make(**overrides: Any) -> Any:
        base = {
            "openai_api_key": "test-key",
            "openai_base_url": fake_openai.base_url,
            "openai_model": "gpt-4o-mini",
            "openai_max_retries": 0,
            "openai_timeout": 2.0,
            "llm_budget_seconds": 3.0,
        }
        base.update(overrides)
        return make_settings(**base)

    return make


@pytest.fixture
def bot(llm_settings: Any) -> FaqBot:
    return build_bot(llm_settings())


def chat_requests(fake: Any) -> list[dict[str, Any]]:
    return list(fake.requests)


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
    bot: FaqBot, fake_openai: Any, category: str, question: str, answer: str
) -> None:
    fake_openai.script(fo.tool(f"faq_{category}", question=question), fo.text(answer))
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
    router_req, answer_req = chat_requests(fake_openai)
    assert {t["function"]["name"] for t in router_req["tools"]} == {
        "faq_sales",
        "faq_labs",
        "faq_reports",
        "not_covered",
    }
    assert router_req["tool_choice"] == "required"
    assert answer_req["messages"][-1]["content"] == question
    assert "tools" not in answer_req


async def test_router_tools_are_strict_schemas(bot: FaqBot, fake_openai: Any) -> None:
    fake_openai.script(fo.text("NONE"))
    await run(bot, "hello")
    tools = chat_requests(fake_openai)[0]["tools"]
    for tool in tools:
        fn = tool["function"]
        assert fn["strict"] is True
        assert fn["parameters"]["additionalProperties"] is False
        expected = [] if fn["name"] == "not_covered" else ["question"]
        assert fn["parameters"]["required"] == expected
    body = chat_requests(fake_openai)[0]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_follow_up_is_routed_with_history_and_rewritten(
    bot: FaqBot, fake_openai: Any
) -> None:
    history = [
        ChatTurn("user", "Do you offer discounts?"),
        ChatTurn("assistant", DISCOUNT),
    ]
    standalone = "Do you offer discounts for annual subscriptions?"
    fake_openai.script(fo.tool("faq_sales", question=standalone), fo.text(DISCOUNT))
    events = await run(bot, "and for annual plans?", history)
    route = next(e for e in events if isinstance(e, RouteDecided))
    assert route.standalone_question == standalone
    router_msgs = chat_requests(fake_openai)[0]["messages"]
    assert [m["role"] for m in router_msgs] == ["system", "user", "assistant", "user"]
    assert router_msgs[1]["content"] == "Do you offer discounts?"
    assert router_msgs[-1]["content"] == "and for annual plans?"
    answer_msgs = chat_requests(fake_openai)[1]["messages"]
    assert answer_msgs[-1]["content"] == standalone


async def test_history_window_is_bounded(llm_settings: Any, fake_openai: Any) -> None:
    bot = build_bot(llm_settings(llm_history_turns=2))
    history = [ChatTurn("user" if i % 2 == 0 else "assistant", f"turn {i}") for i in range(10)]
    fake_openai.script(fo.text("NONE"))
    await run(bot, "latest?", history)
    msgs = chat_requests(fake_openai)[0]["messages"]
    assert [m["content"] for m in msgs[1:]] == ["turn 8", "turn 9", "latest?"]


async def test_no_tool_call_means_refusal(bot: FaqBot, fake_openai: Any) -> None:
    fake_openai.script(fo.text("NONE"))
    events = await run(bot, "What's the weather in Paris?")
    assert next(e for e in events if isinstance(e, RouteDecided)).category is None
    assert any(isinstance(e, Refused) for e in events)
    result = events[-1].result
    assert result.answer == REFUSAL
    assert result.refused
    assert not result.fallback
    assert len(chat_requests(fake_openai)) == 1  # no answer call


async def test_model_refusal_is_detected(bot: FaqBot, fake_openai: Any) -> None:
    fake_openai.script(fo.tool("faq_sales", question="Do you sell lab coats?"), fo.text(REFUSAL))
    result = await collect(bot.answer("Do you sell lab coats?"))
    assert result.refused
    assert result.sources == ()
    assert result.confidence == 0.0


async def test_usage_and_cost_are_recorded(bot: FaqBot, fake_openai: Any) -> None:
    fake_openai.script(
        fo.tool("faq_sales", question="annual discount?", usage=(120, 10)),
        fo.text(DISCOUNT, usage=(300, 20)),
    )
    result = await collect(bot.answer("annual discount?"))
    assert result.usage.prompt_tokens == 420
    assert result.usage.completion_tokens == 30
    # gpt-4o-mini: $0.15 / $0.60 per million tokens
    assert result.usage.cost_usd == pytest.approx((420 * 0.15 + 30 * 0.60) / 1e6)


async def test_sources_are_attributed_to_the_entry_the_answer_uses(
    bot: FaqBot, fake_openai: Any
) -> None:
    fake_openai.script(
        fo.tool("faq_sales", question="What is your refund policy?"),
        fo.text("We offer a 30-day money-back guarantee for all new subscriptions."),
    )
    result = await collect(bot.answer("refunds?"))
    assert result.sources[0].id == "sales-what-is-your-refund-policy"
    assert 0.5 < result.confidence <= 1.0


async def test_multiple_tool_calls_take_the_best(bot: FaqBot, fake_openai: Any) -> None:
    fake_openai.script(
        fo.tools(
            [
                ("faq_labs", {"question": "Can I export reports to PDF?"}),
                ("faq_reports", {"question": "Can I export reports to PDF?"}),
            ]
        ),
        fo.text("Yes. Every report has an Export button with PDF, CSV and Excel options."),
    )
    result = await collect(bot.answer("Can I export reports to PDF?"))
    assert result.category == "reports"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (lambda: fo.rate_limited(retry_after=1), "LLM_RATE_LIMITED"),
        (lambda: fo.server_error(), "LLM_UNAVAILABLE"),
        (lambda: fo.hang(seconds=10), "LLM_TIMEOUT"),
        (lambda: fo.bad_args("faq_sales"), "LLM_OUTPUT_REJECTED"),
        (lambda: fo.unknown_tool("faq_nope"), "LLM_OUTPUT_REJECTED"),
        (lambda: fo.empty_choices(), "LLM_PROTOCOL"),
        (lambda: fo.error(401, message="Incorrect API key provided"), "LLM_AUTH"),
    ],
)
async def test_router_faults_fall_back_to_offline(
    bot: FaqBot, fake_openai: Any, reply: Any, reason: str
) -> None:
    fake_openai.script(reply())
    events = await run(bot, "Do you offer discounts for annual subscriptions?")
    fallback = next(e for e in events if isinstance(e, Fallback))
    assert fallback.reason == reason
    assert "FAQ" in fallback.message
    result = events[-1].result
    assert result.fallback
    assert result.fallback_reason == reason
    assert result.mode == "offline"
    assert result.answer == DISCOUNT
    assert result.category == "sales"


@pytest.mark.parametrize(
    "reply",
    [lambda: fo.torn("We offer a twenty percent discount on", after=3), lambda: fo.server_error()],
)
async def test_answer_stream_faults_fall_back_and_reset(
    bot: FaqBot, fake_openai: Any, reply: Any
) -> None:
    fake_openai.script(fo.tool("faq_sales", question="annual discount?"), reply())
    events = await run(bot, "annual discount?")
    kinds = [type(e).__name__ for e in events]
    assert "Fallback" in kinds
    after = kinds[kinds.index("Fallback") :]
    assert "RouteDecided" in after
    assert "Token" in after
    result = events[-1].result
    assert result.fallback
    assert result.answer == DISCOUNT


async def test_slow_first_token_beyond_budget_falls_back_in_time(
    llm_settings: Any, fake_openai: Any
) -> None:
    bot = build_bot(llm_settings(llm_budget_seconds=1.0, openai_timeout=5.0))
    fake_openai.script(
        fo.tool("faq_sales", question="annual discount?"), fo.text(DISCOUNT, first_token_delay=3)
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await collect(bot.answer("annual discount?"))
    assert loop.time() - started < 2.0
    assert result.fallback
    assert result.fallback_reason == "LLM_TIMEOUT"


async def test_connection_refused_falls_back(make_settings: Any) -> None:
    bot = build_bot(
        make_settings(
            openai_api_key="k",
            openai_base_url="http://127.0.0.1:9/v1",
            openai_max_retries=0,
            openai_timeout=1.0,
        )
    )
    result = await collect(bot.answer("annual discount?"))
    assert result.fallback
    assert result.fallback_reason == "LLM_UNAVAILABLE"
    assert result.answer == DISCOUNT


async def test_auth_error_is_logged_for_operators_without_the_key(
    llm_settings: Any, fake_openai: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = build_bot(llm_settings(openai_api_key="sk-very-secret-123"))
    fake_openai.script(fo.error(401, message="Incorrect API key provided"))
    events = await run(bot, "annual discount?")
    fallback = next(e for e in events if isinstance(e, Fallback))
    assert "not configured correctly" in fallback.message
    out = capsys.readouterr()
    logs = out.out + out.err
    assert "llm.auth_failed" in logs
    assert "sk-very-secret-123" not in logs
    assert fake_openai.headers[0]["authorization"] == "Bearer sk-very-secret-123"


async def test_circuit_breaker_opens_then_closes(llm_settings: Any, fake_openai: Any) -> None:
    bot = build_bot(llm_settings(circuit_failure_threshold=2, circuit_reset_seconds=0.5))
    fake_openai.script(fo.server_error(), fo.server_error())
    for _ in range(2):
        assert (await collect(bot.answer("annual discount?"))).fallback_reason == "LLM_UNAVAILABLE"
    assert bot.breaker.state == "open"
    seen = len(fake_openai.requests)
    skipped = await collect(bot.answer("annual discount?"))
    assert skipped.fallback_reason == "circuit_open"
    assert len(fake_openai.requests) == seen  # the LLM was not called
    await asyncio.sleep(0.6)
    assert bot.breaker.state == "half_open"
    fake_openai.script(fo.tool("faq_sales", question="annual discount?"), fo.text(DISCOUNT))
    probe = await collect(bot.answer("annual discount?"))
    assert not probe.fallback
    assert bot.breaker.state == "closed"


async def test_repeated_question_hits_the_cache(bot: FaqBot, fake_openai: Any) -> None:
    standalone = "Do you offer discounts for annual subscriptions?"
    fake_openai.script(
        fo.tool("faq_sales", question=standalone),
        fo.text(DISCOUNT),
        fo.tool("faq_sales", question=standalone.upper() + "  "),
    )
    first = await collect(bot.answer(standalone))
    second = await collect(bot.answer("and the annual ones?", [ChatTurn("user", "discounts?")]))
    assert not first.cached
    assert second.cached
    assert second.answer == first.answer
    assert second.sources == first.sources
    assert len(fake_openai.requests) == 3  # router, answer, router: no second answer call
    assert bot.cache.stats()["hits"] == 1


async def test_only_top_k_entries_of_a_large_category_are_sent(
    tmp_path: Path, llm_settings: Any, fake_openai: Any
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
    bot = build_bot(llm_settings(faq_dir=big, retrieval_top_k=3))
    fake_openai.script(
        fo.tool("faq_equipment", question="What is the warranty on the centrifuge?"),
        fo.text("The centrifuge has a 3-year warranty."),
    )
    result = await collect(bot.answer("centrifuge warranty?"))
    system = chat_requests(fake_openai)[1]["messages"][0]["content"]
    assert system.count("[equipment-") == 3
    assert "3-year warranty" in system
    assert result.sources[0].question == "What is the warranty on the centrifuge?"
    router_body = json.dumps(chat_requests(fake_openai)[0])
    assert "3-year warranty" not in router_body  # the router never sees answers


async def test_small_category_is_sent_whole(bot: FaqBot, fake_openai: Any) -> None:
    fake_openai.script(fo.tool("faq_labs", question="QC rules?"), fo.text("Add Westgard rules."))
    await collect(bot.answer("QC rules?"))
    system = chat_requests(fake_openai)[1]["messages"][0]["content"]
    assert system.count("[labs-") == 3


async def test_copilot_brief_style_reaches_the_prompt(bot: FaqBot, fake_openai: Any) -> None:
    fake_openai.script(fo.tool("faq_sales", question="refund?"), fo.text("30 days."))
    events = [e async for e in bot.answer("refund?", [], brief=True)]
    assert isinstance(events[-1], Done)
    assert "at most two short sentences" in chat_requests(fake_openai)[1]["messages"][0]["content"]
