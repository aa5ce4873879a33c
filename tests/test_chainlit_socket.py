"""The Chainlit app over its real socket.io protocol, against `chainlit run --headless`.

Three servers per module run: offline, LLM (pointed at the loopback fake OpenAI server) and one
with a tight rate limit. Each test opens its own Chainlit session(s).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests import fake_openai as fo
from tests.e2e_support import ChatClient, chainlit_server, server_logs_on_failure

pytestmark = pytest.mark.chainlit
QUESTION = "Do you offer discounts for annual subscriptions?"
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
DISCOUNT_ID = "sales-do-you-offer-discounts-for-annual-subscriptions"
REFUSAL = "I don't have that information in my FAQ database"
REFUND = "30-day money-back guarantee"
BUDGET_S = 5.0


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


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
        "LLM_BUDGET_SECONDS": str(BUDGET_S),
        "RATE_LIMIT_REQUESTS": "1000",
        # Each test scripts its own LLM replies: no answer cache, and the fault tests must not
        # open the circuit breaker for the tests after them.
        "ANSWER_CACHE_TTL": "0",
        "CIRCUIT_FAILURE_THRESHOLD": "100",
        "UI_TOKEN_INTERVAL_MS": "0",  # one socket.io message per token (counted below)
    }
    with chainlit_server(env) as url:
        yield url


@pytest.fixture(scope="module")
def limited_url() -> Iterator[str]:
    with chainlit_server({"RATE_LIMIT_REQUESTS": "3", "RATE_LIMIT_WINDOW": "60"}) as url:
        yield url


def router_calls(fake: Any) -> list[dict[str, Any]]:
    """Request bodies of router calls (the ones offering tools), in order."""
    return [body for body in fake.requests if body.get("tools")]


def answer_calls(fake: Any) -> list[dict[str, Any]]:
    return [body for body in fake.requests if not body.get("tools")]


def contents(body: dict[str, Any]) -> list[str]:
    return [str(m.get("content")) for m in body["messages"]]


# --- offline server ----------------------------------------------------------------------------


async def test_router_step_tokens_and_sources(offline_url: str) -> None:
    async with ChatClient(offline_url) as chat:
        turn = await chat.ask(QUESTION)
    router = turn.router
    assert router is not None, turn.events
    assert router["type"] == "tool"
    assert re.search(r"Topic: \*\*sales\*\* · confidence \d+%", router["output"])
    assert f"Looked up: {QUESTION}" in router["output"]
    assert "Found by: FAQ search" in router["output"]
    assert turn.events.index("stream_start") > turn.events.index("new_message")  # step first
    assert turn.text == DISCOUNT
    # The first word at once, the rest joined (UI_TOKEN_INTERVAL_MS, default 40 ms): fewer
    # socket.io messages than words (the LLM server below sends one per token).
    assert turn.tokens[0] == "Yes, "
    assert 1 < len(turn.tokens) < len(DISCOUNT.split())
    assert turn.reply.startswith(DISCOUNT)
    assert f"**Sources:** [{QUESTION}](/api/faq/{DISCOUNT_ID})" in turn.reply
    assert re.search(
        r"_sales · confidence \d+% · [\d.]+ s · offline: quoted from the FAQ_$", turn.reply
    )
    assert turn.errors == []


async def test_out_of_scope_is_refused(offline_url: str) -> None:
    async with ChatClient(offline_url) as chat:
        turn = await chat.ask("What's the weather in Paris?")
    assert REFUSAL in turn.reply
    assert "**Sources:**" not in turn.reply
    assert turn.router is not None
    assert "Topic: **none**" in turn.router["output"]
    assert "not covered" in turn.reply
    # Nothing was quoted: the meta line says what happened, and where to turn instead.
    assert "quoted from the FAQ" not in turn.reply
    assert "offline: no FAQ entry matches" in turn.reply
    assert "Support: support@lablens.example" in turn.reply
    assert turn.reply.lower().count("contact support") == 1  # asked once, not twice


async def test_offline_follow_up_in_the_same_session(offline_url: str) -> None:
    async with ChatClient(offline_url) as chat:
        first = await chat.ask("What is your refund policy?")
        follow = await chat.ask("and is that for new subscriptions only?")
        third = await chat.ask("Which payment methods do you accept?")
    assert REFUND in first.reply
    assert follow.errors == []
    assert follow.router is not None
    # Offline, the follow-up is searched together with the previous question.
    combined = "What is your refund policy? and is that for new subscriptions only?"
    assert combined in follow.router["output"]
    assert "Topic: **sales**" in follow.router["output"]
    assert REFUND in follow.reply
    assert "**Sources:**" in follow.reply
    assert "Visa" in third.reply


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("x" * 1001, "Your message is too long (1,001 characters)"),
        ("   ", "Please type a question - your message was empty."),
        ("\u200b\u200b", "Please type a question - your message was empty."),
    ],
    ids=["too-long", "blank", "zero-width"],
)
async def test_bad_input_gets_a_clear_reply_and_the_session_survives(
    offline_url: str, message: str, expected: str
) -> None:
    async with ChatClient(offline_url) as chat:
        bad = await chat.ask(message)
        good = await chat.ask("What is your refund policy?")
    assert expected in bad.reply
    assert bad.router is None
    assert bad.tokens == []
    assert bad.errors == []
    assert REFUND in good.reply


async def test_exactly_the_limit_is_accepted(offline_url: str) -> None:
    async with ChatClient(offline_url) as chat:
        turn = await chat.ask(QUESTION + " " * (1000 - len(QUESTION)))
    assert turn.reply.startswith(DISCOUNT)


async def test_copilot_session_links_sources_and_folds_the_step(offline_url: str) -> None:
    async with ChatClient(offline_url, client_type="copilot") as widget:
        turn = await widget.ask(QUESTION)
    assert turn.router is not None
    assert turn.router["defaultOpen"] is False
    assert f"[{QUESTION}]({offline_url}/api/faq/{DISCOUNT_ID})" in turn.reply


# --- LLM server (fake OpenAI) ------------------------------------------------------------------


async def test_llm_follow_up_is_routed_with_history(llm_url: str, fake_openai: Any) -> None:
    fake_openai.script(
        fo.tool("faq_sales", question="Do you offer discounts?"),
        fo.text(DISCOUNT),
        fo.tool("faq_sales", question=QUESTION),  # the standalone rewrite of the follow-up
        fo.text(DISCOUNT),
    )
    async with ChatClient(llm_url) as chat:
        first = await chat.ask("Do you offer discounts?")
        follow = await chat.ask("and is that for new subscriptions only?")
    assert first.router is not None
    assert "Found by: AI assistant" in first.router["output"]
    assert first.reply.startswith(DISCOUNT)
    assert "quoted from the FAQ" not in first.reply
    assert f"**Sources:** [{QUESTION}](/api/faq/{DISCOUNT_ID})" in first.reply

    routers = router_calls(fake_openai)
    assert len(routers) == 2
    # The second router call sees the first exchange, and asks about the follow-up last.
    assert "Do you offer discounts?" in contents(routers[1])
    assert contents(routers[1])[-1] == "and is that for new subscriptions only?"
    assert "Do you offer discounts?" not in contents(routers[0])[:-1]
    # The answer call is grounded on the FAQ entry of the rewritten question.
    assert any(DISCOUNT in c for c in contents(answer_calls(fake_openai)[1]))

    assert follow.router is not None
    assert f"Understood as: {QUESTION}" in follow.router["output"]
    assert "Topic: **sales**" in follow.router["output"]
    assert "Found by: AI assistant" in follow.router["output"]
    assert len(follow.tokens) >= 5
    assert follow.text == DISCOUNT
    assert follow.reply.startswith(DISCOUNT)


async def test_llm_fault_becomes_a_fallback_answer(llm_url: str, fake_openai: Any) -> None:
    fake_openai.script(fo.server_error())
    async with ChatClient(llm_url) as chat:
        turn = await chat.ask(QUESTION)
        after = await chat.ask("What is your refund policy?")  # auto-responder: LLM is back
    assert len(fake_openai.requests) >= 1
    assert turn.reply.startswith(DISCOUNT)
    assert "quoted directly from the FAQ" in turn.reply
    assert "fallback: quoted from the FAQ" in turn.reply
    assert turn.router is not None
    assert "Found by: FAQ search" in turn.router["output"]
    assert turn.errors == []
    assert REFUND in after.reply
    assert "fallback" not in after.reply


async def test_torn_llm_stream_is_replaced_by_the_faq_answer(
    llm_url: str, fake_openai: Any
) -> None:
    fake_openai.script(
        fo.tool("faq_sales", question=QUESTION), fo.torn("Partial words never finished", after=3)
    )
    async with ChatClient(llm_url) as chat:
        turn = await chat.ask(QUESTION)
    assert "Partial" in turn.tokens[0]  # the LLM answer had started streaming...
    cleared = [m for m in turn.replies if m.get("output") == ""]
    assert cleared, "the partial answer was not cleared"  # ...was blanked...
    assert turn.reply.startswith(DISCOUNT)  # ...and the final message is the FAQ's own answer
    assert "Partial" not in turn.reply
    assert "fallback: quoted from the FAQ" in turn.reply
    assert {m["id"] for m in turn.replies} == {cleared[0]["id"]}  # one message, not two


async def test_hanging_llm_falls_back_within_the_budget(llm_url: str, fake_openai: Any) -> None:
    fake_openai.script(fo.hang(6))
    async with ChatClient(llm_url) as chat:
        turn = await chat.ask(QUESTION)
    assert turn.elapsed_s < BUDGET_S + 1.5
    assert turn.reply.startswith(DISCOUNT)
    assert "fallback: quoted from the FAQ" in turn.reply


# --- rate-limited server -----------------------------------------------------------------------


async def test_rate_limit_is_reported_and_the_session_stays_open(limited_url: str) -> None:
    async with ChatClient(limited_url) as chat:
        for _ in range(3):
            ok = await chat.ask("What is your refund policy?")
            assert REFUND in ok.reply
        limited = await chat.ask("What is your refund policy?")
        assert chat.sio.connected
    assert re.search(r"slow down.*try again in \d+ s", limited.reply, re.I | re.S), limited.reply
    assert limited.router is None
    assert limited.tokens == []
    assert limited.errors == []
