"""EMBEDDINGS=openai against the loopback fake server: hybrid when it works, lexical when not.

The endpoint can fail before the vectors exist (the bot keeps serving lexical answers and health
says why) or after (each question falls back to lexical ranking); neither may raise, nor turn an
API answer into a 500.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from faqbot.answering.bot import FaqBot, collect
from faqbot.answering.factory import build_bot
from faqbot.retrieval.confidence import GENERIC
from faqbot.retrieval.indexer import background_questions
from faqbot.retrieval.openai_embedder import OpenAIEmbedder
from faqbot.state.conversations import ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.web.app import create_api
from tests import fake_openai as fo

pytestmark = pytest.mark.llm

KEY = "sk-embeddings-test-0815"
REFUND = "What is your refund policy?"
DISCOUNT_Q = "Do you offer discounts for annual subscriptions?"
N_ENTRY_TEXTS = 28  # the small FAQ: 9 questions, 1 alternate, 9 question+answer, 9 answers


@pytest.fixture
def make_bot(make_settings: Any, fake_openai: fo.FakeOpenAI) -> Iterator[Callable[..., FaqBot]]:
    """build_bot with EMBEDDINGS=openai pointed at the fake server; closes the embedders."""
    bots: list[FaqBot] = []

    def build(**overrides: Any) -> FaqBot:
        overrides.setdefault("embeddings", "openai")
        overrides.setdefault("embeddings_base_url", fake_openai.base_url)
        overrides.setdefault("embeddings_api_key", KEY)
        overrides.setdefault("embeddings_timeout", 2.0)
        bot = build_bot(make_settings(**overrides))
        bots.append(bot)
        return bot

    yield build
    for bot in bots:
        if bot.semantic is not None:
            bot.semantic.wait(10)  # let its encoder thread finish before the fake is reset
            embedder = bot.semantic.embedder
            assert isinstance(embedder, OpenAIEmbedder)
            embedder.close()


def api_client(bot: FaqBot) -> httpx.AsyncClient:
    api = create_api(
        lambda: bot, RateLimiter(1000, 60), bot.settings, ConversationStore(), prefix="/api"
    )
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def sent_texts(fake: fo.FakeOpenAI) -> list[str]:
    texts: list[str] = []
    for body in fake.embedding_requests:
        texts += [body["input"]] if isinstance(body["input"], str) else body["input"]
    return texts


# --- the endpoint works ---------------------------------------------------------------------


async def test_openai_embeddings_make_ranking_hybrid(
    make_bot: Callable[..., FaqBot], fake_openai: fo.FakeOpenAI
) -> None:
    bot = make_bot()
    assert bot.wait_for_vectors(20)
    assert bot.retriever.mode == "hybrid"
    assert bot.semantic is not None
    assert bot.semantic.calibrator is GENERIC
    status = bot.retrieval_status()
    assert status["ranking"] == "hybrid"
    encoder = status["embeddings"]
    assert isinstance(encoder, dict)
    assert encoder["state"] == "ready"
    assert encoder["model"] == f"openai:127.0.0.1:{fake_openai.port}/v1:text-embedding-3-small"
    assert encoder["encoded"] == encoder["to_encode"] == N_ENTRY_TEXTS
    assert "degraded" not in status
    assert KEY not in str(status)

    sent = sent_texts(fake_openai)
    assert len(sent) == len(set(sent)) == N_ENTRY_TEXTS + len(set(background_questions()))
    assert REFUND in sent
    assert all(h["authorization"] == f"Bearer {KEY}" for h in fake_openai.embedding_headers)
    assert {b["model"] for b in fake_openai.embedding_requests} == {"text-embedding-3-small"}

    before = len(fake_openai.embedding_requests)
    result = await collect(bot.answer(DISCOUNT_Q))
    assert result.outcome == "answered"
    assert result.sources[0].question == DISCOUNT_Q
    assert "20% discount" in result.answer
    assert sent_texts(fake_openai)[-1] == DISCOUNT_Q  # the question was embedded...
    assert len(fake_openai.embedding_requests) == before + 1  # ...once
    found = bot.retriever.search(REFUND)
    assert found.features is not None  # ranked by the hybrid retriever
    assert found.top is not None
    assert found.top.entry.question == REFUND


async def test_a_restart_reuses_the_cached_vectors(
    make_bot: Callable[..., FaqBot], fake_openai: fo.FakeOpenAI
) -> None:
    assert make_bot().wait_for_vectors(20)
    fake_openai.reset()
    restarted = make_bot()
    assert restarted.wait_for_vectors(20)
    assert restarted.retriever.mode == "hybrid"
    assert fake_openai.embedding_requests == []  # nothing re-encoded


# --- the endpoint fails before the vectors are ready ----------------------------------------

START_FAILURES = [
    pytest.param(fo.server_error, "HTTP 500", id="http500"),
    pytest.param(lambda: fo.error(401, message=f"Incorrect API key: {KEY}"), "HTTP 401", id="401"),
    pytest.param(lambda: fo.hang(seconds=10), "timed out after 0.5 s", id="hang"),
    pytest.param(lambda: fo.bad_embeddings("count"), "embeddings for", id="bad-body"),
]


@pytest.mark.parametrize(("reply", "reason"), START_FAILURES)
async def test_endpoint_failing_at_start_leaves_lexical_serving(
    make_bot: Callable[..., FaqBot],
    fake_openai: fo.FakeOpenAI,
    reply: Callable[[], fo.Reply],
    reason: str,
) -> None:
    fake_openai.script_embeddings(*(reply() for _ in range(3)))  # covers the SDK's one retry
    started = time.monotonic()
    bot = make_bot(embeddings_timeout=0.5)
    assert time.monotonic() - started < 1.0  # start-up never waits on the endpoint
    assert bot.wait_for_vectors(15) is False
    assert time.monotonic() - started < 8.0
    assert bot.retriever.mode == "lexical"

    status = bot.retrieval_status()
    assert status["ranking"] == "lexical"
    encoder = status["embeddings"]
    assert isinstance(encoder, dict)
    assert encoder["state"] == "error"
    assert reason in encoder["error"]
    degraded = status["degraded"]
    assert isinstance(degraded, str)
    assert degraded.startswith("embeddings failed, serving lexical")
    assert reason in degraded
    assert KEY not in str(status)

    requests = len(fake_openai.embedding_requests)
    result = await collect(bot.answer(REFUND))
    assert result.outcome == "answered"
    assert result.sources[0].question == REFUND
    assert len(fake_openai.embedding_requests) == requests  # lexical: no query embedding

    async with api_client(bot) as client:
        health = await client.get("/health")
        chat = await client.post("/chat", json={"question": DISCOUNT_Q})
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["retrieval"]["ranking"] == "lexical"
    assert reason in health.json()["retrieval"]["degraded"]
    assert KEY not in health.text
    assert chat.status_code == 200
    assert chat.json()["outcome"] == "answered"
    assert chat.json()["sources"][0]["question"] == DISCOUNT_Q


async def test_a_reload_after_the_endpoint_recovers_goes_hybrid(
    make_bot: Callable[..., FaqBot], fake_openai: fo.FakeOpenAI
) -> None:
    fake_openai.script_embeddings(fo.error(401), fo.error(401))
    bot = make_bot()
    assert bot.wait_for_vectors(10) is False
    assert "degraded" in bot.retrieval_status()
    fake_openai.reset()  # the operator fixed the key
    bot.reload(bot.kb)
    assert bot.wait_for_vectors(20)
    assert bot.retriever.mode == "hybrid"
    status = bot.retrieval_status()
    assert "degraded" not in status
    assert status["embeddings"]["state"] == "ready"  # type: ignore[index]


# --- the endpoint fails after the vectors are ready -----------------------------------------

QUERY_FAILURES = [
    pytest.param(fo.server_error, id="http500"),
    pytest.param(lambda: fo.error(401), id="401"),
    pytest.param(lambda: fo.hang(seconds=5), id="hang"),
    pytest.param(lambda: fo.torn("", after=0), id="torn"),
    pytest.param(lambda: fo.bad_embeddings("nan"), id="nan"),
]


@pytest.mark.parametrize("reply", QUERY_FAILURES)
async def test_endpoint_failing_at_query_time_falls_back_to_lexical(
    make_bot: Callable[..., FaqBot],
    fake_openai: fo.FakeOpenAI,
    reply: Callable[[], fo.Reply],
) -> None:
    bot = make_bot(embeddings_timeout=0.3)
    assert bot.wait_for_vectors(20)
    assert bot.retriever.mode == "hybrid"
    assert bot.semantic is not None
    now = [time.monotonic()]  # the encoder's clock: it moves only when the test moves it
    bot.semantic.queries.clock = lambda: now[0]
    fake_openai.script_embeddings(*(reply() for _ in range(40)))  # down from now on

    result = await collect(bot.answer(REFUND))
    calls_after_failure = len(fake_openai.embedding_requests)
    assert result.outcome == "answered"
    assert result.sources[0].question == REFUND
    assert not result.fallback  # not an LLM fallback: the turn itself went fine
    found = bot.retriever.search(DISCOUNT_Q)
    assert found.features is None  # lexical ranking (the hybrid ranker sets features)
    assert found.top is not None
    assert found.top.entry.question == DISCOUNT_Q

    async with api_client(bot) as client:
        chat = await client.post("/chat", json={"question": "Which payment methods?"})
        stream = await client.post("/chat/stream", json={"question": "refund?"})
        health = await client.get("/health")
    assert chat.status_code == 200
    assert chat.json()["outcome"] == "answered"
    assert chat.json()["sources"][0]["question"] == "Which payment methods do you accept?"
    assert stream.status_code == 200
    assert "event: error" not in stream.text
    assert "event: done" in stream.text
    assert health.status_code == 200
    retrieval = health.json()["retrieval"]
    assert retrieval["ranking"] in ("hybrid", "lexical")
    assert retrieval["embeddings"]["state"] in ("ready", "error")
    if health.json()["status"] == "ok":
        assert "degraded" not in retrieval

    # While cooling down the dead endpoint is not called again (one timeout, not one per turn)
    assert len(fake_openai.embedding_requests) == calls_after_failure
    assert "query_embedding" in retrieval["embeddings"]

    fake_openai.reset()  # the endpoint is back: hybrid ranking again after the cooldown
    now[0] += bot.semantic.queries.cooldown + 0.1
    found = bot.retriever.search("Which currencies can I pay in?")
    assert found.features is not None


async def test_a_hanging_endpoint_never_blocks_the_event_loop(
    make_bot: Callable[..., FaqBot], fake_openai: fo.FakeOpenAI
) -> None:
    bot = make_bot(embeddings_timeout=0.5)
    assert bot.wait_for_vectors(20)
    fake_openai.script_embeddings(*(fo.hang(seconds=5) for _ in range(8)))

    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    try:
        result = await collect(bot.answer(REFUND))
    finally:
        stop.set()
        await task
    assert result.outcome == "answered"
    assert max(gaps) < 0.25, f"the event loop stalled for {max(gaps):.2f} s"
