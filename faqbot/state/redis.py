"""A Redis connection for a component that must degrade, not fail, when Redis does.

Used by the answer cache and the API conversation store (the rate limiter has its own, through
the `limits` library). A command that fails or takes longer than `timeout_s` returns None, the
component carries on with its per-process copy, `down` says why for /api/health, and Redis is
tried again after `retry_seconds` (or at once by `check()`, which health calls).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from faqbot.logs import get_logger

log = get_logger("faqbot.shared")

Command = Callable[[aioredis.Redis], Awaitable[Any]]


class SharedRedis:
    """Runs commands against Redis with a time bound; remembers an outage instead of raising."""

    def __init__(
        self,
        url: str,
        what: str,
        *,
        timeout_s: float = 0.5,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self.what = what
        self.timeout_s = timeout_s
        self.retry_seconds = retry_seconds
        self._clock = clock
        self.down: str | None = None  # why Redis is bypassed, while it is
        self._retry_at = 0.0

    async def run(self, command: Command) -> Any:
        """The command's result, or None when Redis is down or not yet due for another try."""
        if self.down is not None and self._clock() < self._retry_at:
            return None
        try:
            result = await asyncio.wait_for(command(self._redis), self.timeout_s)
        except (RedisError, OSError, TimeoutError) as exc:
            if self.down is None:
                log.warning("shared.down", store=self.what, error=type(exc).__name__)
            kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            self.down = f"{self.what} (Redis) unreachable ({kind}); per process meanwhile"
            self._retry_at = self._clock() + self.retry_seconds
            return None
        if self.down is not None:
            log.info("shared.recovered", store=self.what)
            self.down = None
        return result

    async def check(self) -> str | None:
        """Ping now, whatever the retry schedule: why Redis is down, or None."""
        self._retry_at = 0.0
        await self.run(lambda r: r.ping())
        return self.down

    async def close(self) -> None:
        await self._redis.aclose()
