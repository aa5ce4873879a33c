"""Answer cache: TTL + LRU (cachetools), keyed by KB version, category and normalised question."""

from __future__ import annotations

from dataclasses import dataclass

from cachetools import TTLCache

from faqbot.events import Source
from faqbot.knowledge.ids import normalise_question


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    answer: str
    sources: tuple[Source, ...]
    confidence: float
    refused: bool


class AnswerCache:
    """In-process cache of grounded answers; a reload changes the KB version, so no stale hits."""

    def __init__(self, maxsize: int, ttl: float) -> None:
        self._cache: TTLCache[tuple[str, str, str], CachedAnswer] | None = (
            TTLCache(maxsize=maxsize, ttl=ttl) if maxsize > 0 and ttl > 0 else None
        )
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(kb_version: str, category: str, question: str) -> tuple[str, str, str]:
        return (kb_version, category, normalise_question(question))

    def get(self, key: tuple[str, str, str]) -> CachedAnswer | None:
        found = self._cache.get(key) if self._cache is not None else None
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key: tuple[str, str, str], value: CachedAnswer) -> None:
        if self._cache is not None:
            self._cache[key] = value

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "size": len(self._cache or {})}
