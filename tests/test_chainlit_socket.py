"""The Chainlit app over its real socket.io protocol, against `chainlit run --headless`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import fake_openai as fo
from tests.e2e_support import ChatClient, chainlit_server

pytestmark = pytest.mark.chainlit
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
REFUSAL = "I don't have that information in my FAQ database"


@pytest.fixture(scope="module")
def offline_url() -> Iterator[str]:
    with chainlit_server({"RATE_LIMIT_REQUESTS": "1000"}) as url:
        yield url


@pytest.fixture(scope="module")
def llm_url(fake_openai_server: Any) -> Iterator[str]:
    env = {
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": fake_openai_server.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_TIMEOUT": "3",
        "LLM_BUDGET_SECONDS": "5",
        "RATE_LIMIT_REQUESTS": "1000",
    }
    with chainlit_server(env) as url:
        yield url


async def test_router_step_tokens_and_sources(offline_url: str) -> None:
    async with ChatClient(offline_url) as chat:
        turn = await chat.ask("Do you offer discounts for annual subscriptions?")
    router = turn.router
    assert router is not None
    assert "Category: **sales**" in router["output"]
    assert "confidence" in router["output"]
    assert len(turn.tokens) >= 5
    assert "".join(turn.tokens) == DISCOUNT
    assert turn.reply.startswith(DISCOUNT)
    assert "**Sources:**" in turn.reply
    assert "sales-do-you-offer-discounts-for-annual-subscriptions" in turn.reply
    assert "offline: quoted from the FAQ" in turn.reply


async def test_out_of_scope_is_refused(offline_url: str) -> None:
    async with ChatClient(offline_url) as chat:
        turn = await chat.ask("What's the weather in Paris?")
    assert REFUSAL in turn.reply
    assert turn.router is not None
    assert "Category: **none**" in turn.router["output"]


async def test_offline_follow_up_in_the_same_session(offline_url: str) -> None:
    async with ChatClient(offline_url) as chat:
        first = await chat.ask("Which payment methods do you accept?")
        follow = await chat.ask("and what about for annual ones?")
    assert "Visa" in first.reply
    assert follow.router is not None
    assert "Which payment methods do you accept?" in follow.router["output"]
    assert "sales" in follow.reply


@pytest.mark.parametrize(
    ("message", "expected"),
    [("x" * 1001, "too long"), ("   ", "empty"), ("\u200b\u200b", "empty")],
)
async def test_bad_input_gets_a_clear_reply_and_the_session_survives(
    offline_url: str, message: str, expected: str
) -> None:
    async with ChatClient(offline_url) as chat:
        bad = await chat.ask(message)
        good = await chat.ask("What is your refund policy?")
    assert expected in bad.reply
    assert bad.router is None
    assert "30-day money-back guarantee" in good.reply


async def test_llm_follow_up_is_routed_with_history(llm_url: str, fake_openai: Any) -> None:
    standalone = "Do you offer discounts for annual subscriptions?"
    fake_openai.script(
        fo.tool("faq_sales", question="Do you offer discounts?"),
        fo.text("Yes, we offer a 20% discount for annual subscriptions on all plans."),
        fo.tool("faq_sales", question=standalone),
        fo.text(DISCOUNT),
    )
    async with ChatClient(llm_url) as chat:
        first = await chat.ask("Do you offer discounts?")
        follow = await chat.ask("and for annual plans?")
    assert "20% discount" in first.reply
    assert follow.router is not None
    assert standalone in follow.router["output"]
    assert "Routed by: llm" in follow.router["output"]
    second_router = fake_openai.requests[2]["messages"]
    contents = [m["content"] for m in second_router]
    assert "Do you offer discounts?" in contents
    assert contents[-1] == "and for annual plans?"
    assert len(follow.tokens) >= 5


async def test_llm_fault_becomes_a_fallback_answer(llm_url: str, fake_openai: Any) -> None:
    fake_openai.script(fo.server_error())
    async with ChatClient(llm_url) as chat:
        turn = await chat.ask("Do you offer discounts for annual subscriptions?")
    assert turn.reply.startswith(DISCOUNT)
    assert "quoted directly from the FAQ" in turn.reply
    assert "fallback" in turn.reply


async def test_rate_limit_is_reported() -> None:
    with chainlit_server({"RATE_LIMIT_REQUESTS": "3", "RATE_LIMIT_WINDOW": "60"}) as url:
        async with ChatClient(url) as chat:
            for _ in range(3):
                ok = await chat.ask("What is your refund policy?")
                assert "money-back" in ok.reply
            limited = await chat.ask("What is your refund policy?")
    assert "slow down" in limited.reply
    assert "try again in" in limited.reply
    assert limited.router is None
