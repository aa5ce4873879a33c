"""FaqBot: the one pipeline behind every face. `answer()` yields typed events (faqbot.events)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

from faqbot.config import Settings
from faqbot.domain import ChatTurn, KnowledgeBase
from faqbot.events import Done, Event, Refused, RouteDecided, Source, Sources, Token, TurnResult
from faqbot.logs import get_logger
from faqbot.offline import OfflineEngine, source_of
from faqbot.retrieval import Retriever
from faqbot.validation import clean_question

log = get_logger("faqbot.bot")


class FaqBot:
    """Answers questions from a KnowledgeBase, offline by retrieval (LLM path: see faqbot.llm)."""

    def __init__(self, kb: KnowledgeBase, settings: Settings) -> None:
        self.kb = kb
        self.settings = settings
        self.retriever = Retriever(kb.entries)
        self.offline = OfflineEngine(
            self.retriever,
            threshold=settings.confidence_threshold,
            top_k=settings.retrieval_top_k,
        )

    @property
    def mode(self) -> str:
        return "offline"

    async def answer(self, question: str, history: Sequence[ChatTurn] = ()) -> AsyncIterator[Event]:
        """Answer one question given the recent history; raises InputError before any event."""
        started = time.perf_counter()
        question = clean_question(question, self.settings.max_question_chars)
        decision = self.offline.decide(question, history)
        top = decision.result.top
        confidence = decision.result.confidence
        yield RouteDecided(decision.category, confidence, decision.query, "retrieval")
        entry = decision.entry
        if entry is None or top is None:
            text = self.settings.refusal_text
            async for event in self.offline.stream(text):
                yield event
            yield Sources(())
            yield Refused("not_covered")
            sources: tuple[Source, ...] = ()
        else:
            text = entry.answer
            async for event in self.offline.stream(text):
                yield event
            sources = (source_of(entry, confidence),)
            yield Sources(sources)
        result = TurnResult(
            question=question,
            answer=text,
            category=decision.category,
            confidence=confidence,
            standalone_question=decision.query,
            sources=sources,
            refused=entry is None,
            mode="offline",
            elapsed_s=round(time.perf_counter() - started, 4),
        )
        log.info(
            "turn",
            mode=result.mode,
            category=result.category,
            confidence=result.confidence,
            refused=result.refused,
            elapsed_s=result.elapsed_s,
        )
        yield Done(result)


async def collect(stream: AsyncIterator[Event]) -> TurnResult:
    """Drain an event stream and return its TurnResult (for non-streaming callers)."""
    result: TurnResult | None = None
    async for event in stream:
        if isinstance(event, Done):
            result = event.result
    if result is None:  # pragma: no cover - answer() always ends with Done
        raise RuntimeError("event stream ended without Done")
    return result


__all__ = ["FaqBot", "Token", "collect"]
