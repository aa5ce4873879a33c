"""With REDIS_URL, the answer cache is shared by replicas, versioned by the FAQ, and degrades.

Two bots stand for two replicas: one real throwaway redis-server, the fake OpenAI server. A
question answered by the LLM on replica A is served on replica B without an answer call; a new
FAQ version never sees the old answer; Redis going down costs no answer and is said in health.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

import tests.fake_openai as fo
from faqbot.answering.bot import FaqBot, collect
from faqbot.answering.events import Source
from faqbot.answering.factory import build_bot
from faqbot.state.cache import AnswerCache, CachedAnswer
from faqbot.state.conversations import ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.web.app import create_api
from tests.redis_support import REDIS_SERVER, ThrowawayRedis
from tests.test_llm_path import DISCOUNT

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server binary is not installed"),
]
QUESTION = "Do you offer discounts for annual subscriptions?"


def _answer_calls(fake: Any) -> int:
    """Requests that asked for an answer (the router's carry tools)."""
    return sum(1 for r in fake.requests if not r.get("tools"))


@pytest.fixture
def replicas(make_settings: Any, fake_openai: Any, throwaway_redis: ThrowawayRedis) -> Any:
    def make() -> FaqBot:
        return build_bot(
            make_settings(
                openai_api_key="sk-test",
                openai_base_url=fake_openai.base_url,
                redis_url=throwaway_redis.url,
                local_routing=False,
            )
        )

    return make


async def test_an_answer_from_replica_a_is_served_by_replica_b_without_an_answer_call(
    replicas: Any, fake_openai: Any, throwaway_redis: ThrowawayRedis
) -> None:
    a, b = replicas(), replicas()
    fake_openai.script(fo.tool("faq_sales", question=QUESTION), fo.text(DISCOUNT))
    first = await collect(a.answer(QUESTION))
    assert not first.cached
    assert DISCOUNT in first.answer
    assert throwaway_redis.client().keys("faqbot:answer:*"), "the answer is stored in Redis"

    fake_openai.script(fo.tool("faq_sales", question=QUESTION))
    answered_before = _answer_calls(fake_openai)
    second = await collect(b.answer(QUESTION))
    assert second.cached
    assert second.answer == first.answer
    assert second.sources == first.sources
    assert _answer_calls(fake_openai) == answered_before  # B made no answer call
    assert b.cache.stats()["shared_hits"] == 1


async def test_a_new_faq_version_never_gets_the_old_answer(
    make_settings: Any, small_faq_dir: Path, throwaway_redis: ThrowawayRedis
) -> None:
    cache = AnswerCache(16, 60, throwaway_redis.url)
    old = AnswerCache.key("v1", "sales", QUESTION)
    await cache.put(
        old, CachedAnswer("old answer", (Source("s1", "sales", QUESTION, 1.0),), 0.9, False)
    )
    other_replica = AnswerCache(16, 60, throwaway_redis.url)
    assert await other_replica.get(AnswerCache.key("v2", "sales", QUESTION)) is None
    hit = await other_replica.get(
        AnswerCache.key("v1", "sales", "  do you offer DISCOUNTS for annual subscriptions ")
    )
    assert hit is not None
    assert hit.answer == "old answer"
    assert hit.sources[0].id == "s1"


async def test_a_damaged_shared_value_is_a_miss(throwaway_redis: ThrowawayRedis) -> None:
    cache = AnswerCache(16, 60, throwaway_redis.url)
    key = AnswerCache.key("v1", "sales", QUESTION)
    await cache.put(key, CachedAnswer("fine", (), 0.5, False))
    for name in throwaway_redis.client().keys("faqbot:answer:*"):
        throwaway_redis.client().set(name, b"{not json")
    assert await AnswerCache(16, 60, throwaway_redis.url).get(key) is None


async def test_redis_down_answers_go_on_health_says_degraded_and_it_recovers(
    make_settings: Any, fake_openai: Any, throwaway_redis: ThrowawayRedis
) -> None:
    settings = make_settings(
        openai_api_key="sk-test",
        openai_base_url=fake_openai.base_url,
        local_routing=False,
        redis_url=throwaway_redis.url,
    )
    bot = build_bot(settings)
    assert bot.cache.shared is not None
    bot.cache.shared.retry_seconds = 0.2
    app = create_api(lambda: bot, RateLimiter(100, 60), settings, ConversationStore())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
        throwaway_redis.kill()
        fake_openai.script(fo.tool("faq_sales", question=QUESTION), fo.text(DISCOUNT))
        resp = await api.post("/chat", json={"question": QUESTION})
        assert resp.status_code == 200, resp.text
        assert DISCOUNT in resp.json()["answer"]
        health = (await api.get("/health")).json()
        assert health["status"] == "degraded"
        assert health["cache"]["shared"] is False
        assert "answer cache store" in health["cache"]["reason"]

        throwaway_redis.start()
        await asyncio.sleep(0.25)  # past the retry interval
        fake_openai.script(
            fo.tool("faq_sales", question="Which payment methods?"), fo.text("Visa.")
        )
        resp = await api.post("/chat", json={"question": "Which payment methods?"})
        assert resp.status_code == 200
        assert throwaway_redis.client().keys("faqbot:answer:*"), "shared again after recovery"
        health = (await api.get("/health")).json()
        assert health["cache"]["shared"] is True
        assert health["status"] == "ok"
