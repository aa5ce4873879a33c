"""The in-process ScriptedChatModel keeps faith with the HTTP fake behind the real adapter:
the same script gives the bot the same answer through both, and each call charges its Meter
as the ChatModel contract says (faqbot/llm/protocol.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from faqbot.answering.events import Token
from faqbot.answering.factory import build_bot, build_model
from faqbot.domain import Usage
from faqbot.errors import LLMRateLimitError, LLMTimeoutError, LLMUnavailableError
from faqbot.llm.capabilities import ToolChoiceRefused
from faqbot.llm.tokens import estimate_prompt
from tests import fake_chat_model as fc
from tests import fake_openai as fo

QUESTION = "Do you offer discounts for annual subscriptions?"
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "hi"}]


class Meter:
    def __init__(self) -> None:
        self.charges: list[int] = []

    async def charge(self, tokens: int) -> None:
        self.charges.append(tokens)


def _summary(events: list[Any]) -> dict[str, Any]:
    result = events[-1].result
    return {
        "events": [type(e).__name__ for e in events],
        "tokens": [e.text for e in events if isinstance(e, Token)],
        "answer": result.answer,
        "category": result.category,
        "standalone": result.standalone_question,
        "sources": result.sources,
        "confidence": result.confidence,
        "usage": result.usage,
        "fallback": result.fallback_reason,
    }


@pytest.mark.llm
@pytest.mark.parametrize(
    ("http", "scripted"),
    [
        (
            lambda: [
                fo.tool("faq_sales", question=QUESTION, usage=(50, 7)),
                fo.text(DISCOUNT, usage=(300, 20)),
            ],
            lambda: [
                fc.tool("faq_sales", question=QUESTION, usage=(50, 7)),
                fc.text(DISCOUNT, usage=(300, 20)),
            ],
        ),
        (lambda: [fo.rate_limited(retry_after=1)], lambda: [fc.rate_limited(retry_after=1)]),
        (
            lambda: [fo.tool("faq_sales", question=QUESTION), fo.torn(DISCOUNT, after=3)],
            lambda: [fc.tool("faq_sales", question=QUESTION), fc.torn(DISCOUNT, after=3)],
        ),
    ],
    ids=["routed", "rate_limited", "torn"],
)
async def test_the_bot_answers_alike_through_both_fakes(
    make_settings: Any, fake_openai: Any, http: Any, scripted: Any
) -> None:
    common = {"openai_api_key": "test-key", "openai_model": "gpt-4o-mini"}
    over_http = build_bot(
        make_settings(**common, openai_base_url=fake_openai.base_url, openai_max_retries=0)
    )
    fake_openai.script(*http())
    via_http = [e async for e in over_http.answer(QUESTION)]
    settings = make_settings(**common)
    model = fc.ScriptedChatModel(*scripted(), prices=settings.llm_price_table)
    in_process = build_bot(settings, model=model)
    via_model = [e async for e in in_process.answer(QUESTION)]
    assert _summary(via_model) == _summary(via_http)
    assert [c.kind for c in model.calls] == [
        "tools" if "tools" in body else "text" for body in fake_openai.requests
    ]
    for call, body in zip(model.calls, fake_openai.requests, strict=True):
        assert call.messages == body["messages"]
        assert call.tools == body.get("tools")
        assert call.tool_choice == body.get("tool_choice")


@pytest.mark.llm
@pytest.mark.parametrize(
    ("http", "scripted"),
    [
        (lambda: fo.text(DISCOUNT, usage=(30, 12)), lambda: fc.text(DISCOUNT, usage=(30, 12))),
        (lambda: fo.torn(DISCOUNT, after=3), lambda: fc.torn(DISCOUNT, after=3)),
        (lambda: fo.rate_limited(retry_after=1), lambda: fc.rate_limited(retry_after=1)),
        (lambda: fo.server_error(), lambda: fc.server_error()),
    ],
    ids=["finished", "torn", "rate_limited", "server_error"],
)
async def test_a_stream_charges_its_meter_as_the_real_adapter_does(
    make_settings: Any, fake_openai: Any, http: Any, scripted: Any
) -> None:
    adapter = build_model(
        make_settings(
            openai_api_key="test-key", openai_base_url=fake_openai.base_url, openai_max_retries=0
        )
    )
    assert adapter is not None
    fake_openai.script(http())
    outcomes = []
    for model in (adapter, fc.ScriptedChatModel(scripted())):
        meter, sink, pieces = Meter(), [], []
        error = None
        try:
            async for piece in model.stream_text(MESSAGES, sink, meter=meter):
                pieces.append(piece)
        except Exception as exc:
            error = type(exc)
        outcomes.append(
            (
                pieces,
                [(u.prompt_tokens, u.completion_tokens) for u in sink],
                sum(meter.charges),
                error,
            )
        )
    assert outcomes[1] == outcomes[0]


async def test_a_finished_call_charges_the_reported_usage() -> None:
    model = fc.ScriptedChatModel(fc.tool("faq_sales", question="q", usage=(40, 5)))
    meter = Meter()
    completion = await model.call_tools(MESSAGES, [], meter=meter)
    assert completion.usage == Usage(40, 5)
    assert meter.charges[0] == estimate_prompt(MESSAGES)  # the prompt, as the call starts
    assert sum(meter.charges) == 45  # then corrected to what the provider reported
    sink: list[Usage] = []
    model.script(fc.text("one two three", usage=(30, 3)))
    meter = Meter()
    assert [p async for p in model.stream_text(MESSAGES, sink, meter=meter)] == [
        "one",
        " two",
        " three",
    ]
    assert sink == [Usage(30, 3)]
    assert sum(meter.charges) == 33


@pytest.mark.parametrize(
    ("step", "error", "charged"),
    [
        (fc.rate_limited, LLMRateLimitError, 0),  # refused: the provider bills nothing
        (fc.refused, ToolChoiceRefused, 0),
        (fc.timeout, LLMTimeoutError, estimate_prompt(MESSAGES)),  # the prompt was read
    ],
)
async def test_a_failed_call_charges_what_the_provider_bills(
    step: Any, error: type[Exception], charged: int
) -> None:
    model = fc.ScriptedChatModel(step())
    meter = Meter()
    with pytest.raises(error):
        await model.call_tools(MESSAGES, [], meter=meter)
    assert sum(meter.charges) == charged


async def test_a_torn_stream_raises_after_its_pieces_and_charges_them() -> None:
    model = fc.ScriptedChatModel(fc.torn("a b c d e", after=2))
    meter, sink, got = Meter(), [], []

    async def read() -> None:
        async for piece in model.stream_text(MESSAGES, sink, meter=meter):
            got.append(piece)

    with pytest.raises(LLMUnavailableError):
        await read()
    assert got == ["a", " b"]
    assert sink == []  # no usage came
    assert sum(meter.charges) == estimate_prompt(MESSAGES) + 2


async def test_a_gate_holds_the_stream_until_set_and_an_abandoned_stream_is_charged() -> None:
    gate = asyncio.Event()
    model = fc.ScriptedChatModel(fc.gated(fc.text("a b c"), gate, after=1))
    meter, sink = Meter(), []
    stream = model.stream_text(MESSAGES, sink, meter=meter)
    assert await anext(stream) == "a"
    second = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not second.done()  # held at the gate
    gate.set()
    assert await second == " b"
    await stream.aclose()  # type: ignore[attr-defined]
    assert sink == []
    assert sum(meter.charges) == estimate_prompt(MESSAGES) + 2  # the prompt and what came


async def test_an_unscripted_call_raises_and_is_counted() -> None:
    model = fc.ScriptedChatModel()
    with pytest.raises(fc.UnscriptedCall):
        await model.call_tools(MESSAGES, [])
    assert model.unscripted == 1
    with pytest.raises(AssertionError):
        model.assert_all_scripted()
