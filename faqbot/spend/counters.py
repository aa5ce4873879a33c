"""Counters with an expiry, in Redis when configured (replicas share them), else in memory.

The `limits` library's storages do the counting (INCRBY with an expiry on Redis, a Counter in
memory), so the spend ledger is the same code in both places. A Redis that fails (down,
unreachable, slower than STORE_TIMEOUT_S) never becomes the visitor's error: the counters then
live in process memory (each replica counts its own share), `status()` says so for
/api/health, and Redis is tried again every `retry_seconds`, as `faqbot.ratelimit` does.
Counts made in memory during an outage are not copied to Redis when it returns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from limits.aio.storage import Storage
from limits.errors import StorageError
from limits.storage import storage_from_string

from faqbot.logs import get_logger
from faqbot.ratelimit import STORE_ERRORS, STORE_TIMEOUT_S, redis_storage

log = get_logger("faqbot.spend")
T = TypeVar("T")


class FailoverCounters:
    """`get` / `incr` on the shared store while it answers, on process memory otherwise."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._local: Storage = _async(storage_from_string("async+memory://"))
        self._shared: Storage | None = _async(redis_storage(redis_url)) if redis_url else None
        self.backend = "redis" if redis_url else "memory"
        self.retry_seconds = retry_seconds
        self._clock = clock
        self._down: str | None = None  # why the shared store is bypassed, while it is
        self._retry_at = 0.0

    @property
    def shared(self) -> bool:
        """Do the counts made now reach the shared store?"""
        return self._shared is not None and self._down is None

    @property
    def degraded(self) -> str | None:
        """Why the shared store is bypassed (None: it is not, or there is none)."""
        return self._down

    async def get(self, key: str) -> int:
        return await self._run(lambda store: store.get(key))

    async def incr(self, key: str, amount: int, expiry_s: int) -> int:
        """Add `amount`; a new key expires `expiry_s` seconds after its first increment."""
        return await self._run(lambda store: store.incr(key, expiry_s, amount))

    async def ping(self) -> None:
        """Try the shared store now (health asks even when no visitor does)."""
        if self._shared is None:
            return
        try:
            await asyncio.wait_for(self._shared.get("faqbot/spend/ping"), STORE_TIMEOUT_S)
        except STORE_ERRORS as exc:
            self._mark_down(exc)
        else:
            self._mark_up()

    async def _run(self, op: Callable[[Storage], Awaitable[T]]) -> T:
        if self._shared is not None and (self._down is None or self._clock() >= self._retry_at):
            try:
                result = await asyncio.wait_for(op(self._shared), STORE_TIMEOUT_S)
            except STORE_ERRORS as exc:
                self._mark_down(exc)
            else:
                self._mark_up()
                return result
        return await op(self._local)

    def _mark_down(self, exc: Exception) -> None:
        cause = exc.storage_error if isinstance(exc, StorageError) else exc
        kind = "timeout" if isinstance(cause, TimeoutError) else type(cause).__name__
        if self._down is None:
            log.warning("spend.store_down", error=str(cause) or kind, fallback="per process")
        self._down = f"spend store (Redis) unavailable ({kind}); counting per process"
        self._retry_at = self._clock() + self.retry_seconds

    def _mark_up(self) -> None:
        if self._down is not None:
            log.info("spend.store_recovered", backend=self.backend)
        self._down = None


def _async(storage: object) -> Storage:
    """The async storage `storage_from_string` built for an `async+` URI."""
    assert isinstance(storage, Storage)
    return storage
