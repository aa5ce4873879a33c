"""Live vs ready: a load balancer drains a replica that lost a shared store or has no FAQ."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from faqbot.answering.bot import FaqBot
from faqbot.answering.factory import build_bot
from faqbot.state.conversations import ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.web.app import create_api
from faqbot.web.readiness import ReadinessCheck
from tests.redis_support import REDIS_SERVER, ThrowawayRedis

Client = Callable[..., Any]


@pytest.fixture
async def client(make_settings: Any) -> AsyncIterator[Client]:
    clients: list[httpx.AsyncClient] = []

    def make(
        bot: FaqBot | None,
        *,
        redis_url: str | None = None,
        checks: tuple[ReadinessCheck, ...] = (),
    ) -> httpx.AsyncClient:
        settings = make_settings(redis_url=redis_url)
        limiter = RateLimiter(100, 60, redis_url)
        api = create_api(lambda: bot, limiter, settings, ConversationStore(), ready_checks=checks)
        transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
        c = httpx.AsyncClient(transport=transport, base_url="http://t")
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.aclose()


async def test_live_and_ready_answer_get_and_head(make_settings: Any, client: Client) -> None:
    api = client(build_bot(make_settings()))
    for path in ("/health/live", "/health/ready"):
        assert (await api.get(path)).status_code == 200
        head = await api.head(path)
        assert head.status_code == 200
        assert head.content == b""
    assert (await api.get("/health/ready")).json() == {"ready": True, "reasons": []}
    health = (await api.get("/health")).json()
    assert health["ready"] is True
    assert health["not_ready"] == []


async def test_without_a_loaded_faq_it_is_live_but_not_ready(client: Client) -> None:
    api = client(None)
    assert (await api.get("/health/live")).status_code == 200
    resp = await api.get("/health/ready")
    assert resp.status_code == 503
    assert resp.json() == {"ready": False, "reasons": ["FAQ not loaded"]}
    assert (await api.head("/health/ready")).status_code == 503


async def test_registered_checks_decide_readiness_and_a_broken_check_is_not_a_500(
    make_settings: Any, client: Client
) -> None:
    async def database_down() -> str | None:
        return "database unreachable"

    async def broken() -> str | None:
        raise RuntimeError("boom")

    async def fine() -> str | None:
        return None

    bot = build_bot(make_settings())
    assert (await client(bot, checks=(fine,)).get("/health/ready")).status_code == 200
    resp = await client(bot, checks=(fine, database_down, broken)).get("/health/ready")
    assert resp.status_code == 503
    assert resp.json()["reasons"] == [
        "database unreachable",
        "readiness check failed (RuntimeError)",
    ]


@pytest.mark.services
@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server binary is not installed")
async def test_losing_redis_makes_the_replica_unready_until_it_returns(
    make_settings: Any, client: Client, throwaway_redis: ThrowawayRedis
) -> None:
    bot = build_bot(make_settings(redis_url=throwaway_redis.url))
    api = client(bot, redis_url=throwaway_redis.url)
    assert (await api.get("/health/ready")).status_code == 200
    throwaway_redis.kill()
    resp = await api.get("/health/ready")
    assert resp.status_code == 503
    reasons = " | ".join(resp.json()["reasons"])
    assert "rate-limit store" in reasons
    assert "answer cache store" in reasons
    assert (await api.get("/health/live")).status_code == 200  # alive: do not restart it
    asked = await api.post("/chat", json={"question": "Do you offer annual discounts?"})
    assert asked.status_code == 200  # still answers while drained
    throwaway_redis.start()
    resp = await api.get("/health/ready")
    assert resp.status_code == 200, resp.text
