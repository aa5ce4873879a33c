"""Per-client rate limiting with the `limits` library: in memory, and in real Redis."""

from __future__ import annotations

import socket
import uuid

import pytest

from faqbot.errors import RateLimitedError
from faqbot.ratelimit import RateLimiter

REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


async def _exercise(limiter: RateLimiter) -> None:
    key = f"client-{uuid.uuid4().hex}"
    other = f"client-{uuid.uuid4().hex}"
    for _ in range(3):
        await limiter.check(key)
    with pytest.raises(RateLimitedError) as info:
        await limiter.check(key)
    assert 1 <= info.value.retry_after <= 60
    assert f"try again in {info.value.retry_after} s" in info.value.user_message
    await limiter.check(other)  # clients are independent
    await limiter.reset(key)
    await limiter.check(key)


async def test_memory_backend_limits_each_client() -> None:
    limiter = RateLimiter(3, 60)
    assert limiter.backend == "memory"
    await _exercise(limiter)


@pytest.mark.services
@pytest.mark.skipif(not _redis_up(), reason="Redis is not running on 127.0.0.1:6379")
async def test_redis_backend_limits_each_client_and_is_shared() -> None:
    first = RateLimiter(3, 60, REDIS_URL)
    second = RateLimiter(3, 60, REDIS_URL)  # another replica, same Redis
    assert first.backend == "redis"
    await _exercise(first)
    key = f"shared-{uuid.uuid4().hex}"
    for _ in range(2):
        await first.check(key)
    await second.check(key)
    with pytest.raises(RateLimitedError):
        await second.check(key)
