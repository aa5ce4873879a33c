"""The router against servers that do not take every `tool_choice` form (issue 23, item 1).

The fake server's "llama-cpp" mode breaks the stream of a "required" request as llama-cpp-python
0.3.36 does; its "ollama" mode answers tool requests in plain text, as Ollama ignores
`tool_choice`. Each question below needs the router (lexical ranking: no local routing), and
each must get an LLM answer, routed by the model's tool call or by retrieval, never the offline
fallback for a capability reason, with the circuit breaker closed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from faqbot.answering.bot import FaqBot, collect
from faqbot.answering.events import RouteDecided
from faqbot.answering.factory import build_bot
from faqbot.llm.capabilities import MEMORY, CapabilityMemory
from faqbot.metrics import TOOL_CHOICE_REFUSED
from tests import fake_openai as fo

pytestmark = pytest.mark.llm

QUESTIONS = {  # question -> category
    "What are your pricing plans?": "sales",
    "How long do you keep raw instrument data?": "labs",
    "Can I schedule reports by email?": "reports",
    "What is your refund policy?": "sales",
}
NAMED = {"type": "function", "function": {"name": "route_question"}}


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[fo.FakeOpenAI]:
    with fo.running(mode=request.param) as fake:
        yield fake


def make_bot(make_settings: Any, fake: fo.FakeOpenAI) -> FaqBot:
    return build_bot(
        make_settings(
            openai_api_key="test-key",
            openai_base_url=fake.base_url,
            openai_max_retries=0,
            openai_timeout=2.0,
            llm_budget_seconds=5.0,
        )
    )


def refusals(form: str) -> float:
    return TOOL_CHOICE_REFUSED.labels(form)._value.get()


async def ask_all(bot: FaqBot) -> list[tuple[Any, RouteDecided]]:
    out = []
    for question in QUESTIONS:
        events = [e async for e in bot.answer(question)]
        route = next(e for e in events if isinstance(e, RouteDecided))
        out.append((events[-1].result, route))
    return out


@pytest.mark.parametrize("server", ["llama-cpp"], indirect=True)
async def test_llama_cpp_routes_by_a_named_tool_call_and_remembers_it(
    make_settings: Any, server: fo.FakeOpenAI
) -> None:
    bot = make_bot(make_settings, server)
    before = refusals("required")
    answers = await ask_all(bot)
    for (result, route), (question, category) in zip(answers, QUESTIONS.items(), strict=True):
        assert not result.fallback, (question, result.fallback_reason)
        assert result.mode == "llm"
        assert route.via == "llm", question
        assert route.category == category, question
        assert result.sources[0].category == category  # a grounded answer, not a refusal
    assert bot.breaker.state == "closed"
    assert bot.breaker.failures == 0
    router_calls = [r for r in server.requests if r.get("tools")]
    # "required" was refused once (its stream broke), then every question went by name
    assert [r["tool_choice"] for r in router_calls] == ["required"] + [NAMED] * len(QUESTIONS)
    assert [t["function"]["name"] for t in router_calls[1]["tools"]] == ["route_question"]
    assert refusals("required") - before == 1
    endpoint = bot.model.endpoint  # type: ignore[union-attr]
    assert MEMORY.snapshot()[endpoint]["tool_choice"] == "named"
    assert MEMORY.snapshot()[endpoint]["refused"] == ["required"]


@pytest.mark.parametrize("server", ["ollama"], indirect=True)
async def test_ollama_text_replies_are_routed_by_retrieval_not_the_fallback(
    make_settings: Any, server: fo.FakeOpenAI
) -> None:
    bot = make_bot(make_settings, server)
    answers = await ask_all(bot)
    for (result, route), (question, category) in zip(answers, QUESTIONS.items(), strict=True):
        assert not result.fallback, (question, result.fallback_reason)
        assert result.mode == "llm", question  # the model wrote the answer
        assert route.via == "retrieval", question
        assert route.category == category, question
        assert result.sources[0].category == category  # a grounded answer, not a refusal
    assert bot.breaker.state == "closed"
    assert bot.breaker.failures == 0
    snap = MEMORY.snapshot()[bot.model.endpoint]  # type: ignore[union-attr]
    assert snap["tool_choice"] == "required"
    assert snap["refused"] == []
    assert snap["replies_without_tool_call"] == len(QUESTIONS)


async def test_an_endpoint_refusing_every_form_is_routed_by_retrieval(make_settings: Any) -> None:
    def no_tools(body: dict[str, Any]) -> fo.Reply:
        if body.get("tools"):
            return fo.error(400, message="tools are not supported by this model")
        return fo.auto_responder(body)

    with fo.running(responder=no_tools) as fake:
        bot = make_bot(make_settings, fake)
        for _ in range(2):
            result = await collect(bot.answer("What are your pricing plans?"))
            assert not result.fallback
            assert result.mode == "llm"
            assert "Starter" in result.answer
        assert bot.breaker.state == "closed"
        assert bot.breaker.failures == 0
        choices = [r.get("tool_choice") for r in fake.requests if r.get("tools")]
        assert choices == ["required", NAMED, "auto"]  # the second question asked no router
        snap = MEMORY.snapshot()[bot.model.endpoint]  # type: ignore[union-attr]
        assert snap["refused"] == ["auto", "named", "required"]
        assert snap["tool_choice"] is None


async def test_a_dead_server_is_a_provider_failure_not_a_capability(make_settings: Any) -> None:
    fake = fo.FakeOpenAI().start()
    bot = make_bot(make_settings, fake)
    fake.stop()  # connections refused from now on
    result = await collect(bot.answer("What are your pricing plans?"))
    assert result.fallback
    assert result.fallback_reason == "LLM_UNAVAILABLE"
    assert bot.breaker.failures == 1
    assert bot.model.endpoint not in MEMORY.snapshot()  # type: ignore[union-attr]


async def test_a_stream_torn_after_output_is_no_refusal(make_settings: Any) -> None:
    with fo.running() as fake:
        bot = make_bot(make_settings, fake)
        fake.script(fo.torn("We route this", after=2))
        result = await collect(bot.answer("What are your pricing plans?"))
        assert result.fallback
        assert result.fallback_reason == "LLM_UNAVAILABLE"
        assert [r.get("tool_choice") for r in fake.requests] == ["required"]


def test_refusals_are_forgotten_after_the_recheck_time() -> None:
    now = [0.0]
    memory = CapabilityMemory(recheck_s=60, clock=lambda: now[0])
    assert memory.learn("e", ["required"], "named") == ["required"]
    assert memory.learn("e", ["required"], "named") == []  # logged once
    assert memory.forms("e") == ["named", "auto"]
    now[0] = 59.0
    assert memory.forms("e") == ["named", "auto"]
    now[0] = 61.0
    assert memory.forms("e") == ["required", "named", "auto"]
    memory.learn("x", ["required", "named", "auto"], None)
    assert memory.forms("x") == []


async def test_a_400_naming_tool_choice_is_a_refusal_any_other_400_is_not(
    make_settings: Any,
) -> None:
    vllm = '"tool_choice" must either be a named tool, "auto", or "none".'  # vLLM < 0.8.3
    with fo.running() as fake:
        bot = make_bot(make_settings, fake)
        fake.script(fo.error(400, message=vllm))
        result = await collect(bot.answer("What are your pricing plans?"))
        assert not result.fallback
        assert [r.get("tool_choice") for r in fake.requests][:2] == ["required", NAMED]
    with fo.running() as fake:
        bot = make_bot(make_settings, fake)
        fake.script(fo.error(400, message="This model's maximum context length is 128000 tokens"))
        result = await collect(bot.answer("What are your pricing plans?"))
        assert result.fallback  # a provider error, as before: no other form is tried
        assert [r.get("tool_choice") for r in fake.requests] == ["required"]
        assert bot.model.endpoint not in MEMORY.snapshot()  # type: ignore[union-attr]
