"""Per-client rate limiting with the `limits` library: in memory, and in real Redis."""

from __future__ import annotations

import socket
import uuid

import pytest

from faqbot.errors import RateLimitedError
from faqbot.state.ratelimit import RateLimiter

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


async def test_a_slow_local_count_is_waited_for_not_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The in-memory count has no time bound: on a busy loop, hundreds of sessions queued on one
    key took over a second, and a 1 s bound turned that into an internal error for visitors."""
    import asyncio

    limiter = RateLimiter(10, 60)
    real_hit = limiter._local.hit

    async def slow(*args: object, **kwargs: object) -> bool:
        await asyncio.sleep(1.3)
        return await real_hit(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(limiter._local, "hit", slow)
    await limiter.check("queued-client")  # counted, not a TimeoutError


async def test_a_faulty_local_count_fails_open(monkeypatch: pytest.MonkeyPatch) -> None:
    limiter = RateLimiter(1, 60)

    async def broken(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("limiter bug")

    monkeypatch.setattr(limiter._local, "hit", broken)
    await limiter.check("anyone")  # no exception: the visitor is served
    await limiter.check("anyone")
