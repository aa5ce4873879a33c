"""Token budgets hold against the chat UI's Stop button (issue 20, item 2).

The attack: ask in the chat, press Stop as soon as the first words of the answer arrive (the
socket.io `stop` event: Chainlit cancels the task answering), ask again. Before: a cancelled
turn recorded nothing, so against a 5,000-token client budget the provider billed several times
the budget and faqbot's count stayed near zero. Now the tokens are charged as they are spent
and a cancelled call is charged what it consumed (in the model's `finally`, no UI code), so the
provider's bill stays near the budget.

A real `chainlit run` against the fake OpenAI server, which counts what it bills
(`FakeOpenAI.billed`: the prompt when it reads a request, completion tokens as it sends them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from faqbot.spend import NOTICES
from tests import fake_openai as fo
from tests.e2e_support import ChatClient, chainlit_server, server_logs_on_failure
from tests.test_spend_abandon_api import BUDGET, MAX_TURNS, SLOW_ANSWERS, question, settled
from tests.vector_support import seed_vectors

pytestmark = [pytest.mark.chainlit, pytest.mark.llm]


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


@pytest.fixture(params=["off", "bundled"])
def url(
    request: pytest.FixtureRequest, fake_openai: fo.FakeOpenAI, tmp_path: Path
) -> Iterator[str]:
    """The app, lexical-only or with the bundled embedding model (the shipped default: hybrid
    ranking routes confident questions without the router call; the vectors, encoded once per
    session, are copied into its DATA_DIR)."""
    env = {
        "EMBEDDINGS": request.param,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_TIMEOUT": "10",
        "RATE_LIMIT_REQUESTS": "10000",
        "ANSWER_CACHE_TTL": "0",
        "MAX_STREAMS_PER_CLIENT": "0",
        "SPEND_CONVERSATION_TOKENS": "0",
        "SPEND_CLIENT_DAILY_TOKENS": str(BUDGET),
    }
    if request.param == "bundled":
        shipped = request.getfixturevalue("shipped_vectors")
        env["DATA_DIR"] = str(seed_vectors(shipped, tmp_path / "data"))
    with chainlit_server(env) as server:
        if request.param == "bundled":
            wait_until_hybrid(server)
        yield server


def wait_until_hybrid(url: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        retrieval = httpx.get(f"{url}/api/health", timeout=5).json()["retrieval"]
        if retrieval["ranking"] == "hybrid":
            return
        assert time.monotonic() < deadline, f"never became hybrid: {retrieval}"
        time.sleep(0.5)


async def ask_and_stop(chat: ChatClient, text: str) -> None:
    """Ask; press Stop once the answer's first words arrive (or let an answer with none end)."""
    started = await chat.send(text)
    async with asyncio.timeout(20):
        while "stream_start" not in chat.turn.events and "task_end" not in chat.turn.events:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    if "stream_start" in chat.turn.events:
        await chat.stop()
    await chat.wait_turn(20, f"stopping {text!r}", started)


async def test_pressing_stop_after_the_first_words_is_held_to_the_budget(
    url: str, fake_openai: fo.FakeOpenAI
) -> None:
    fake_openai.profile = SLOW_ANSWERS  # a whole answer would take 4 s
    turns = 0
    async with ChatClient(url) as chat:
        for n in range(MAX_TURNS):
            calls = len(fake_openai.requests)
            await ask_and_stop(chat, question(n))
            turns += 1
            if len(fake_openai.requests) == calls:  # no LLM call: the budget stopped them
                break
        await settled(fake_openai)
        billed = fake_openai.billed_tokens()
        fake_openai.profile = fo.LatencyProfile()
        offline = await chat.ask(question(MAX_TURNS))  # the whole reply, not stopped
    async with httpx.AsyncClient(base_url=url) as http:
        counted = (await http.get("/api/health")).json()["spend"]["deployment_tokens_today"]
    print(f"ui: {turns} turns, billed {billed}, counted {counted}")
    report = f"{turns} turns, provider billed {billed}, faqbot counted {counted}"
    assert turns > 1, report  # the LLM answered while the budget lasted
    assert NOTICES["client"] in offline.reply, report  # then the budget stopped it
    assert billed <= 1.5 * BUDGET, report
    assert counted >= billed, report
