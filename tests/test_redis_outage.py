"""A shared rate-limit store that goes down must degrade, not break answers (issue 14).

Runs a throwaway real `redis-server` on a free loopback port (never the machine's shared 6379),
kills it during traffic, and checks: `/api/chat` still answers (a per-process limit applies),
`/api/health` says "degraded" and names the rate-limit store, and once Redis is back on the same
port the shared limit is used again and health returns to "ok", without a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from faqbot.answering.factory import build_bot
from faqbot.state.conversations import ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.web.app import create_api
from tests.redis_support import REDIS_SERVER, ThrowawayRedis

LIMIT = 4
pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server binary is not installed"),
]


@pytest.fixture
async def api(
    make_settings: Any, throwaway_redis: ThrowawayRedis
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(redis_url=throwaway_redis.url)
    limiter = RateLimiter(LIMIT, 60, throwaway_redis.url)
    limiter.retry_seconds = 0.2  # retry the store quickly in this test (default a few seconds)
    bot = build_bot(settings)
    app = create_api(lambda: bot, limiter, settings, ConversationStore())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _ask(api: httpx.AsyncClient) -> httpx.Response:
    return await api.post("/chat", json={"question": "Do you offer annual discounts?"})


def _shared_keys(server: ThrowawayRedis) -> list[bytes]:
    keys: list[bytes] = server.client().keys("*")
    return keys


async def test_redis_outage_degrades_to_a_per_process_limit_and_recovers(
    api: httpx.AsyncClient, throwaway_redis: ThrowawayRedis
) -> None:
    assert (await _ask(api)).status_code == 200
    assert _shared_keys(throwaway_redis), "the limit is counted in Redis while it is up"
    health = (await api.get("/health")).json()
    assert health["status"] == "ok"

    throwaway_redis.kill()
    for _ in range(LIMIT):  # answers go on, counted by a per-process limit
        resp = await _ask(api)
        assert resp.status_code == 200, resp.text
        assert resp.json()["answer"]
    over = await _ask(api)
    assert over.status_code == 429  # the per-process limit still applies
    assert "Error 111" not in over.text
    stream = await api.post("/chat/stream", json={"question": "annual discounts?"})
    assert stream.status_code == 429
    health = (await api.get("/health")).json()
    assert health["status"] == "degraded"
    reason = health["rate_limit"]["degraded"]
    assert "rate-limit store" in reason
    assert health["rate_limit"]["shared"] is False

    throwaway_redis.start()  # same port, empty (no persistence)
    await asyncio.sleep(0.25)  # past the limiter's retry interval
    resp = await _ask(api)  # the per-process count is spent, so a 200 means Redis counts again
    assert resp.status_code == 200, resp.text
    assert _shared_keys(throwaway_redis), "the shared limit is used again"
    health = (await api.get("/health")).json()
    assert health["status"] == "ok"
    assert health["rate_limit"] == {"backend": "redis", "shared": True}


async def test_health_notices_the_store_is_down_and_back_without_traffic(
    api: httpx.AsyncClient, throwaway_redis: ThrowawayRedis
) -> None:
    throwaway_redis.kill()
    health = (await api.get("/health")).json()
    assert health["status"] == "degraded"
    assert "rate-limit store" in health["rate_limit"]["degraded"]
    throwaway_redis.start()
    health = (await api.get("/health")).json()
    assert health["status"] == "ok"
    assert (await _ask(api)).status_code == 200
    assert _shared_keys(throwaway_redis)
