"""Answer cache: TTL + LRU (cachetools) in process, plus Redis shared by replicas when configured.

Keys hold the KB version, the category and the normalised question, so a reload (a new FAQ
version) can never serve a stale answer, on any replica. With `REDIS_URL` set, a hit on one
replica serves every replica (the local tier still answers repeated questions without a round
trip). Redis that fails (down, slow) must never reach the visitor: the cache then works per
process, says so in `status()` for /api/health, and tries Redis again after `retry_seconds`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from cachetools import TTLCache

from faqbot.domain import Source
from faqbot.knowledge.ids import question_key
from faqbot.state.redis import Command, SharedRedis

PREFIX = "faqbot:answer:"
CacheKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    answer: str
    sources: tuple[Source, ...]
    confidence: float
    refused: bool

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> CachedAnswer:
        data = json.loads(raw)
        return cls(
            answer=str(data["answer"]),
            sources=tuple(Source(**s) for s in data["sources"]),
            confidence=float(data["confidence"]),
            refused=bool(data["refused"]),
        )


class AnswerCache:
    """Grounded answers by (KB version, category, question); Redis-shared when configured."""

    def __init__(self, maxsize: int, ttl: float, redis_url: str | None = None) -> None:
        enabled = maxsize > 0 and ttl > 0
        self._cache: TTLCache[CacheKey, CachedAnswer] | None = (
            TTLCache(maxsize=maxsize, ttl=ttl) if enabled else None
        )
        self._ttl = ttl
        self.shared = (
            SharedRedis(redis_url, "answer cache store") if enabled and redis_url else None
        )
        self.backend = "redis" if self.shared is not None else "memory"
        self.hits = 0
        self.shared_hits = 0
        self.misses = 0

    @staticmethod
    def key(kb_version: str, category: str, question: str) -> CacheKey:
        return (kb_version, category, question_key(question))

    async def get(self, key: CacheKey) -> CachedAnswer | None:
        """The local tier first, then the shared one (a shared hit is kept locally too)."""
        found = self._cache.get(key) if self._cache is not None else None
        if found is None and self._cache is not None:
            raw = await self._shared(lambda r: r.get(_redis_key(key)))
            if raw is not None:
                found = _decode(raw)
                if found is not None:
                    self.shared_hits += 1
                    self._cache[key] = found
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    async def put(self, key: CacheKey, value: CachedAnswer) -> None:
        if self._cache is None:
            return
        self._cache[key] = value
        ttl_ms = max(1, int(self._ttl * 1000))
        await self._shared(lambda r: r.set(_redis_key(key), value.to_json(), px=ttl_ms))

    async def _shared(self, command: Command) -> Any:
        return None if self.shared is None else await self.shared.run(command)

    async def check(self) -> str | None:
        """For readiness and health: why the shared tier is down now, or None."""
        return None if self.shared is None else await self.shared.check()

    def status(self) -> dict[str, Any]:
        """For /api/health: where answers are cached, and why not shared right now."""
        down = self.shared.down if self.shared is not None else None
        return {"backend": self.backend, "shared": down is None, "reason": down}

    def stats(self) -> dict[str, int]:
        return {
            "hits": self.hits,
            "shared_hits": self.shared_hits,
            "misses": self.misses,
            "size": len(self._cache or {}),
        }

    async def close(self) -> None:
        if self.shared is not None:
            await self.shared.close()


def _redis_key(key: CacheKey) -> str:
    """The KB version stays readable (to inspect or flush one version); the rest is hashed."""
    version, category, question = key
    digest = hashlib.sha256(f"{category}\x00{question}".encode()).hexdigest()[:32]
    return f"{PREFIX}{version}:{digest}"


def _decode(raw: str | bytes) -> CachedAnswer | None:
    """A damaged or foreign value is a miss, never an error."""
    try:
        return CachedAnswer.from_json(raw)
    except (ValueError, KeyError, TypeError):
        return None
