"""The LLM path through the real OpenAI SDK against the loopback fake server: what the adapter
(faqbot/llm/openai_model.py) sends and how its HTTP faults reach the bot. The bot's own
decisions on the LLM path are tested in process (tests/test_llm_path.py)."""

from __future__ import annotations

from typing import Any

import pytest

from faqbot.answering.bot import FaqBot, collect
from faqbot.answering.events import Fallback
from faqbot.answering.factory import build_bot
from tests import fake_openai as fo

pytestmark = pytest.mark.llm
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


async def run(bot: FaqBot, q: str) -> list[Any]:
    return [e async for e in bot.answer(q, [])]


async def test_routed_question_goes_over_the_wire(bot: FaqBot, fake_openai: Any) -> None:
    question = "Do you offer discounts for annual subscriptions?"
    fake_openai.script(fo.tool("faq_sales", question=question), fo.text(DISCOUNT))
    result = await collect(bot.answer(question))
    assert result.answer == DISCOUNT
    assert result.category == "sales"
    router_req, answer_req = fake_openai.requests
    assert router_req["model"] == answer_req["model"] == "gpt-4o-mini"
    assert router_req["tool_choice"] == "required"
    assert {t["function"]["name"] for t in router_req["tools"]} >= {"faq_sales", "not_covered"}
    assert "tools" not in answer_req
    for body in (router_req, answer_req):
        assert body["stream"] is True
        assert body["stream_options"] == {"include_usage": True}


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


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (lambda: fo.rate_limited(retry_after=1), "LLM_RATE_LIMITED"),
        (lambda: fo.server_error(), "LLM_UNAVAILABLE"),
        (lambda: fo.hang(seconds=10), "LLM_TIMEOUT"),
        (lambda: fo.bad_args("faq_sales"), "LLM_OUTPUT_REJECTED"),
        (lambda: fo.empty_choices(), "LLM_PROTOCOL"),
        (lambda: fo.error(401, message="Incorrect API key provided"), "LLM_AUTH"),
    ],
)
async def test_router_http_faults_fall_back_to_offline(
    bot: FaqBot, fake_openai: Any, reply: Any, reason: str
) -> None:
    fake_openai.script(reply())
    events = await run(bot, "Do you offer discounts for annual subscriptions?")
    fallback = next(e for e in events if isinstance(e, Fallback))
    assert fallback.reason == reason
    result = events[-1].result
    assert result.fallback_reason == reason
    assert result.mode == "offline"
    assert result.answer == DISCOUNT


@pytest.mark.parametrize(
    "reply",
    [lambda: fo.torn("We offer a twenty percent discount on", after=3), lambda: fo.server_error()],
)
async def test_answer_stream_http_faults_fall_back_and_reset(
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
