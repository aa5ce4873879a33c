"""Spend limits in the chat UI (issue 14), over Chainlit's socket.io protocol against a real
`chainlit run`: a client over MAX_STREAMS_PER_CLIENT gets a polite reply and its session goes
on; a conversation whose token budget is spent gets the offline answer with the notice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from faqbot.spend import NOTICES
from tests import fake_openai as fo
from tests.e2e_support import ChatClient, chainlit_server, server_logs_on_failure

pytestmark = [pytest.mark.chainlit, pytest.mark.llm]
QUESTION = "Do you offer discounts for annual subscriptions?"
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
TURN_TOKENS = 330  # router 100 + 10, answer 200 + 20 (scripted usage)


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


@pytest.fixture
def url(fake_openai: Any) -> Iterator[str]:
    env = {
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_TIMEOUT": "5",
        "RATE_LIMIT_REQUESTS": "1000",
        "ANSWER_CACHE_TTL": "0",
        "MAX_STREAMS_PER_CLIENT": "1",
        "SPEND_CONVERSATION_TOKENS": str(TURN_TOKENS),
        "SPEND_CLIENT_DAILY_TOKENS": "0",
    }
    with chainlit_server(env) as server:
        yield server


def script_turn(fake: Any, delay: float = 0.0) -> None:
    """One LLM turn; the router call answers after `delay` seconds."""
    router = fo.Reply(
        "tool_calls",
        tool_calls=[("faq_sales", json.dumps({"question": QUESTION}))],
        usage=(100, 10),
        first_token_delay=delay,
    )
    fake.script(router, fo.text(DISCOUNT, usage=(200, 20)))


async def test_chat_caps_answers_in_progress_and_answers_offline_once_the_budget_is_spent(
    url: str, fake_openai: Any
) -> None:
    async with ChatClient(url) as first, ChatClient(url) as second:  # one client, two tabs
        script_turn(fake_openai, delay=1.5)
        running = asyncio.create_task(first.ask(QUESTION))
        async with asyncio.timeout(10):
            while not fake_openai.requests:  # noqa: ASYNC110 - the fake records in its thread
                await asyncio.sleep(0.02)
        busy = await second.ask(QUESTION)
        assert busy.reply == (
            "You already have 1 answer in progress. "
            "Please wait until one has finished, then ask again."
        )
        assert busy.errors == []
        async with httpx.AsyncClient(base_url=url) as http:  # the API shares the UI's cap
            api = await http.post("/api/chat", json={"question": QUESTION})
        assert api.status_code == 429
        assert api.json()["error_code"] == "TOO_MANY_STREAMS"
        answered = await running
        assert answered.text == DISCOUNT
        assert "fallback" not in answered.reply
        assert len(fake_openai.requests) == 2

        # the refused tab's session goes on: its next question is answered by the LLM
        script_turn(fake_openai)
        later = await second.ask(QUESTION)
        assert later.text == DISCOUNT
        assert later.errors == []
        assert len(fake_openai.requests) == 4

        # the first tab's conversation has spent its budget: offline, said so, no LLM call
        offline = await first.ask(QUESTION)
        assert offline.errors == []
        assert offline.reply.startswith(DISCOUNT)
        assert f"> {NOTICES['conversation']}" in offline.reply
        assert "fallback: quoted from the FAQ" in offline.reply
        assert len(fake_openai.requests) == 4

    async with httpx.AsyncClient(base_url=url) as http:
        spend = (await http.get("/api/health")).json()["spend"]
    assert spend["deployment_tokens_today"] == 2 * TURN_TOKENS
    assert spend["limits"]["conversation_tokens"] == TURN_TOKENS
