"""Offline answering: pick the best FAQ entry by retrieval and quote it.

This is the embedded default (no API key) and the fallback when the LLM fails. The category comes
from the retrieved entry; below the confidence threshold the answer is the refusal text.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from faqbot.answering.events import Event, Source, Sources, Token
from faqbot.domain import ChatTurn, FaqEntry
from faqbot.retrieval import SearchResult
from faqbot.retrieval.confidence import Zone, Zones
from faqbot.retrieval.hybrid import HybridRetriever

FOLLOW_UP_MAX_WORDS = 8
MAX_SUGGESTIONS = 3
SUGGEST_TEXT = "I'm not sure I understood. Did you mean:"
_FOLLOW_UP = re.compile(
    r"^\s*(and|but|also|so|then|what about|how about)\b"
    r"|\b(that|it|this|those|these|them|they|ones?)\b",
    re.IGNORECASE,
)
_PIECE = re.compile(r"\S+\s*|\s+")


def split_tokens(text: str) -> list[str]:
    """Split text into word-sized pieces that concatenate back to the exact text."""
    return _PIECE.findall(text)


@dataclass(frozen=True, slots=True)
class OfflineDecision:
    """What retrieval concluded for one question."""

    query: str
    result: SearchResult
    zone: Zone

    @property
    def answerable(self) -> bool:
        return self.zone == "answer" and self.result.top is not None

    @property
    def entry(self) -> FaqEntry | None:
        top = self.result.top
        return top.entry if top and self.answerable else None

    @property
    def suggestions(self) -> tuple[FaqEntry, ...]:
        """The entries offered as "Did you mean" choices (only in the suggest zone)."""
        if self.zone != "suggest":
            return ()
        return tuple(h.entry for h in self.result.hits[:MAX_SUGGESTIONS])

    @property
    def category(self) -> str | None:
        top = self.result.top
        return top.entry.category if top and self.zone != "refuse" else None


class OfflineEngine:
    """Retrieval-only answering with a confidence gate."""

    def __init__(
        self,
        retriever: HybridRetriever,
        *,
        zones: Zones,
        top_k: int,
        token_delay: float = 0.0,
    ) -> None:
        self.retriever = retriever
        self.zones = zones
        self.top_k = top_k
        self.token_delay = token_delay

    async def decide(
        self, question: str, history: Sequence[ChatTurn] = (), category: str | None = None
    ) -> OfflineDecision:
        """Retrieve for the question; a follow-up is read together with the last user turn.

        A follow-up is short, refers back ("and ...", "what about ...", "that", "it") and uses no
        word the FAQ has never seen: "and for annual plans?" qualifies, while "what's the weather
        in Paris?" after a pricing question does not.
        """
        previous = next((t.content for t in reversed(history) if t.role == "user"), None)
        follow_up = previous is not None and self.is_follow_up(question)
        joined_query = f"{previous} {question}"
        await self.retriever.prepare([question, joined_query] if follow_up else [question])
        alone = self._decide(question, category)
        if follow_up:
            joined = self._decide(joined_query, category)
            if joined.answerable or joined.result.confidence > alone.result.confidence:
                return joined
        return alone

    def is_follow_up(self, question: str) -> bool:
        """Short, refers back, and uses no word the FAQ has never seen."""
        words = self.retriever.tokenizer.tokens(question)
        return (
            len(words) <= FOLLOW_UP_MAX_WORDS
            and _FOLLOW_UP.search(question) is not None
            and not self.retriever.unknown_words(question)
        )

    def _decide(self, query: str, category: str | None) -> OfflineDecision:
        result = self.retriever.search(query, k=max(self.top_k, MAX_SUGGESTIONS), category=category)
        return OfflineDecision(query, result, self.zones.zone(result.confidence))

    async def stream(self, text: str) -> AsyncIterator[Event]:
        """Stream text in word-sized Token events."""
        for piece in split_tokens(text):
            yield Token(piece)
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            else:
                await asyncio.sleep(0)


def source_of(entry: FaqEntry, score: float) -> Source:
    return Source(id=entry.id, category=entry.category, question=entry.question, score=score)


def sources_event(entries: Sequence[tuple[FaqEntry, float]]) -> Sources:
    return Sources(tuple(source_of(e, s) for e, s in entries))


def suggestion_text(entries: Sequence[FaqEntry]) -> str:
    """The plain-text form of a suggestion turn (faces may render the entries as buttons)."""
    return SUGGEST_TEXT + "\n" + "\n".join(f"- {e.question}" for e in entries)
