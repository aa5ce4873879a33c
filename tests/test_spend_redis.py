"""Token budgets in Redis (issue 14): replicas share the spend, and a Redis that stops degrades
to counting per process (no error reaches anyone) and comes back by itself.

Sharing runs on the machine's Redis at 127.0.0.1:6379 under a namespace of its own (removed
afterwards); the outage runs a throwaway `redis-server` on another port, which it kills.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from faqbot.answering.bot import FaqBot, collect
from faqbot.answering.factory import build_model
from faqbot.knowledge import load_knowledge_base
from faqbot.spend import Spender, TokenBudgets
from faqbot.state.conversations import ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.web.app import create_api
from tests import fake_openai as fo
from tests.redis_support import REDIS_SERVER, SHARED_REDIS_URL, ThrowawayRedis, shared_redis_up

pytestmark = [pytest.mark.services, pytest.mark.llm]
QUESTION = "Do you offer discounts for annual subscriptions?"
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
TURN_TOKENS = 330  # router 100 + 10, answer 200 + 20 (scripted usage)


@pytest.fixture
def namespace() -> Iterator[str]:
    """A namespace of this test's own in the shared Redis, deleted afterwards."""
    name = f"faqbot-test-{uuid.uuid4().hex}"
    yield name
    if shared_redis_up():
        client = redis.Redis.from_url(SHARED_REDIS_URL, socket_timeout=1)
        keys = list(client.scan_iter(match=f"*{name}*"))
        if keys:
            client.delete(*keys)


@pytest.fixture
def make_bot(make_settings: Any, fake_openai: Any) -> Any:
    def make(spend: TokenBudgets) -> FaqBot:
        settings = make_settings(
            openai_api_key="test-key",
            openai_base_url=fake_openai.base_url,
            openai_max_retries=0,
            openai_timeout=3.0,
            answer_cache_size=0,
        )
        kb = load_knowledge_base(settings.faq_dir)
        return FaqBot(kb, settings, model=build_model(settings), spend=spend)

    return make


async def ask(bot: FaqBot, fake: Any, who: Spender) -> Any:
    fake.reset()
    fake.script(
        fo.tool("faq_sales", usage=(100, 10), question=QUESTION),
        fo.text(DISCOUNT, usage=(200, 20)),
    )
    return await collect(bot.answer(QUESTION, spender=who))


@pytest.mark.skipif(not shared_redis_up(), reason="no Redis answers at 127.0.0.1:6379")
async def test_two_bots_on_one_redis_share_the_spend(
    make_bot: Any, fake_openai: Any, namespace: str
) -> None:
    def budgets() -> TokenBudgets:
        return TokenBudgets(
            client_daily_tokens=TURN_TOKENS, redis_url=SHARED_REDIS_URL, namespace=namespace
        )

    replica_a, replica_b = make_bot(budgets()), make_bot(budgets())
    alice = Spender("ip:10.0.0.1", "c1")
    first = await ask(replica_a, fake_openai, alice)
    assert first.mode == "llm"
    assert len(fake_openai.requests) == 2
    # the other replica sees what Alice spent on the first one
    second = await ask(replica_b, fake_openai, Spender("ip:10.0.0.1", "c2"))
    assert second.fallback_reason == "budget_client"
    assert second.answer == DISCOUNT
    assert fake_openai.requests == []
    bob = await ask(replica_b, fake_openai, Spender("ip:10.0.0.2", "c3"))
    assert bob.mode == "llm"
    for replica in (replica_a, replica_b):
        status = await replica.spend.status()
        assert status["backend"] == "redis"
        assert status["shared"] is True
        assert status["deployment_tokens_today"] == 2 * TURN_TOKENS
    client = redis.Redis.from_url(SHARED_REDIS_URL, socket_timeout=1)
    keys = {k.decode() for k in client.scan_iter(match=f"*{namespace}*")}
    day = replica_a.spend.day()
    assert any(k.endswith(f"{namespace}/spend/deployment/{day}") for k in keys), keys
    assert any(k.endswith(f"/client/{day}/ip:10.0.0.1") for k in keys), keys


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server binary is not installed")
async def test_a_stopped_redis_degrades_to_counting_per_process_and_recovers(
    make_bot: Any, fake_openai: Any, throwaway_redis: ThrowawayRedis
) -> None:
    server = throwaway_redis
    spend = TokenBudgets(conversation_tokens=2 * TURN_TOKENS, redis_url=server.url)
    spend.counters.retry_seconds = 0.2  # try Redis again quickly in this test
    bot = make_bot(spend)
    settings = bot.settings
    api = create_api(lambda: bot, RateLimiter(1000, 60), settings, ConversationStore())
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    who = Spender("ip:10.0.0.1", "c1")
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await ask(bot, fake_openai, who)).mode == "llm"
        assert server.client().keys("*"), "the spend is counted in Redis while it is up"
        assert (await http.get("/health")).json()["spend"]["shared"] is True

        server.kill()
        # answers go on, no error; the conversation is now counted in this process from 0
        for _ in range(2):
            result = await ask(bot, fake_openai, who)
            assert result.mode == "llm", result
            assert not result.fallback
        over = await ask(bot, fake_openai, who)
        assert over.fallback_reason == "budget_conversation"  # the per-process count
        assert fake_openai.requests == []
        resp = await http.post("/chat", json={"question": QUESTION})
        assert resp.status_code == 200, resp.text
        health = (await http.get("/health")).json()
        assert health["status"] == "degraded"
        assert health["spend"]["shared"] is False
        assert "spend store (Redis) unreachable" in health["spend"]["degraded"]
        assert health["spend"]["deployment_tokens_today"] >= 2 * TURN_TOKENS

        server.start()  # same port, empty (no persistence)
        await asyncio.sleep(0.25)  # past the retry interval
        assert (await ask(bot, fake_openai, who)).mode == "llm"  # Redis counts afresh
        assert server.client().keys("*"), "the spend is counted in Redis again"
        health = (await http.get("/health")).json()
        assert health["status"] == "ok"
        assert health["spend"]["shared"] is True
        assert "degraded" not in health["spend"]
