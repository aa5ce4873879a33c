"""Per-client rate limiting shared by the chat UI and the HTTP API (the `limits` library).

Moving window of RATE_LIMIT_REQUESTS per RATE_LIMIT_WINDOW seconds; in memory by default, in
Redis when REDIS_URL is set so that several replicas share one budget per client.

A shared store that fails (down, unreachable, too slow) must never turn into an error for the
visitor: the limiter then counts in process memory (the same limit, per replica), says so in
`status()` for /api/health, and tries Redis again every `retry_seconds` until it answers.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import StorageTypes, storage_from_string

from faqbot.errors import RateLimitedError
from faqbot.logs import get_logger

log = get_logger("faqbot.ratelimit")

STORE_TIMEOUT_S = 1.0  # a slow store must not hold up answers longer than this
STORE_ERRORS = (StorageError, TimeoutError, OSError)
NAMESPACE = "faqbot"


class RateLimiter:
    """One moving-window budget per client; Redis-shared when configured, memory as a fallback."""

    def __init__(
        self,
        requests: int,
        window_s: int,
        redis_url: str | None = None,
        *,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._item = RateLimitItemPerSecond(requests, window_s)
        self._local = MovingWindowRateLimiter(storage_from_string("async+memory://"))
        self._shared: MovingWindowRateLimiter | None = None
        self.backend = "memory"
        if redis_url:
            self._shared = MovingWindowRateLimiter(redis_storage(redis_url))
            self.backend = "redis"
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._down: str | None = None  # why the shared store is bypassed, while it is
        self._retry_at = 0.0

    async def check(self, client_key: str) -> None:
        """Count one request for `client_key`; raise RateLimitedError with a retry-after."""
        allowed, reset_time = await self._count(client_key)
        if allowed:
            return
        retry_after = max(1, math.ceil(reset_time - time.time()))
        log.info("ratelimit.exceeded", client=client_key, retry_after=retry_after)
        raise RateLimitedError(retry_after)

    async def peek(self, client_key: str) -> None:
        """Raise RateLimitedError when `client_key` has nothing left, without counting a
        request (for budgets spent only by failures, such as wrong passwords)."""
        limiter = self._shared if self._shared is not None and self._down is None else self._local
        try:
            allowed = await asyncio.wait_for(
                limiter.test(self._item, NAMESPACE, client_key), STORE_TIMEOUT_S
            )
            if allowed:
                return
            stats = await asyncio.wait_for(
                limiter.get_window_stats(self._item, NAMESPACE, client_key), STORE_TIMEOUT_S
            )
        except STORE_ERRORS as exc:  # fail open, as `check` does
            self._mark_down(exc)
            return
        raise RateLimitedError(max(1, math.ceil(stats.reset_time - time.time())))

    async def _count(self, client_key: str) -> tuple[bool, float]:
        """Hit the shared store when it is usable, else (or when it fails now) process memory."""
        if self._shared is not None and self._shared_due():
            try:
                result = await _hit(self._shared, self._item, client_key)
            except STORE_ERRORS as exc:
                self._mark_down(exc)
            else:
                self._mark_up()
                return result
        try:  # process memory needs no time bound: it never waits on the network
            return await _hit(self._local, self._item, client_key, bound_s=None)
        except Exception:  # a limiter fault must never become the visitor's error: fail open
            log.exception("ratelimit.local_failed", client=client_key)
            return True, 0.0

    async def reset(self, client_key: str) -> None:
        """Forget `client_key`'s requests in both stores (a store that is down is skipped)."""
        await self._local.clear(self._item, NAMESPACE, client_key)
        if self._shared is not None and self._down is None:
            try:
                await asyncio.wait_for(
                    self._shared.clear(self._item, NAMESPACE, client_key), STORE_TIMEOUT_S
                )
            except STORE_ERRORS as exc:
                self._mark_down(exc)

    async def status(self) -> dict[str, object]:
        """For /api/health: the backend, whether the shared store counts now, and why not.

        Pings the shared store each call, so health notices an outage (and the recovery)
        even when no visitor is asking.
        """
        if self._shared is None:
            return {"backend": self.backend, "shared": False}
        try:
            await asyncio.wait_for(
                self._shared.get_window_stats(self._item, NAMESPACE, "health"), STORE_TIMEOUT_S
            )
        except STORE_ERRORS as exc:
            self._mark_down(exc)
        else:
            self._mark_up()
        if self._down is None:
            return {"backend": self.backend, "shared": True}
        return {"backend": self.backend, "shared": False, "degraded": self._down}

    def _shared_due(self) -> bool:
        """Use the shared store unless it is down and not yet due for another try."""
        return self._down is None or self._clock() >= self._retry_at

    def _mark_down(self, exc: Exception) -> None:
        """Switch to the per-process count; health gets the error's kind, the log its detail."""
        cause = exc.storage_error if isinstance(exc, StorageError) else exc
        kind = "timeout" if isinstance(cause, TimeoutError) else type(cause).__name__
        if self._down is None:
            log.warning("ratelimit.store_down", error=str(cause) or kind, fallback="per process")
        self._down = f"rate-limit store (Redis) unavailable ({kind}); limiting per process"
        self._retry_at = self._clock() + self.retry_seconds

    def _mark_up(self) -> None:
        if self._down is not None:
            log.info("ratelimit.store_recovered", backend=self.backend)
        self._down = None


async def _hit(
    limiter: MovingWindowRateLimiter,
    item: RateLimitItem,
    client_key: str,
    bound_s: float | None = STORE_TIMEOUT_S,
) -> tuple[bool, float]:
    """One counted request: (allowed, when the window frees a slot), bounded in time."""
    if await asyncio.wait_for(limiter.hit(item, NAMESPACE, client_key), bound_s):
        return True, 0.0
    stats = await asyncio.wait_for(limiter.get_window_stats(item, NAMESPACE, client_key), bound_s)
    return False, stats.reset_time


def redis_storage(redis_url: str) -> StorageTypes:
    """limits' async Redis storage with errors wrapped (StorageError) and short socket timeouts."""
    uri = redis_url if redis_url.startswith("async+") else "async+" + redis_url
    return storage_from_string(
        uri,
        implementation="redispy",
        wrap_exceptions=True,
        socket_connect_timeout=STORE_TIMEOUT_S / 2,
        socket_timeout=STORE_TIMEOUT_S / 2,
    )
