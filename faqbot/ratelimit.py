"""Per-client rate limiting shared by the chat UI and the HTTP API (the `limits` library).

Moving window of RATE_LIMIT_REQUESTS per RATE_LIMIT_WINDOW seconds; in memory by default, in
Redis when REDIS_URL is set so that several replicas share one budget per client.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerSecond
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from faqbot.errors import RateLimitedError
from faqbot.logs import get_logger

log = get_logger("faqbot.ratelimit")


class RateLimiter:
    def __init__(self, requests: int, window_s: int, redis_url: str | None = None) -> None:
        if redis_url:
            uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
            storage = storage_from_string(uri, implementation="redispy")
            self.backend = "redis"
        else:
            storage = storage_from_string("async+memory://")
            self.backend = "memory"
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = RateLimitItemPerSecond(requests, window_s)

    async def check(self, client_key: str) -> None:
        """Count one request for `client_key`; raise RateLimitedError with a retry-after."""
        if await self._limiter.hit(self._item, "faqbot", client_key):
            return
        stats = await self._limiter.get_window_stats(self._item, "faqbot", client_key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        log.info("ratelimit.exceeded", client=client_key, retry_after=retry_after)
        raise RateLimitedError(retry_after)

    async def reset(self, client_key: str) -> None:
        await self._limiter.clear(self._item, "faqbot", client_key)
