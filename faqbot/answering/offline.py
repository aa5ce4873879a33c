"""Offline answering: pick the best FAQ entry by retrieval and quote it.

This is the embedded default (no API key) and the fallback when the LLM fails. The category comes
from the retrieved entry; below the confidence threshold the answer is the refusal text.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from faqbot.answering.events import Event, Source, Sources, Token
from faqbot.domain import ChatTurn, FaqEntry
from faqbot.knowledge.ids import question_key
from faqbot.retrieval import SearchResult
from faqbot.retrieval.confidence import Zone, Zones
from faqbot.retrieval.hybrid import HybridRetriever
from faqbot.retrieval.lexical import Hit

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
        self._exact: dict[str, FaqEntry] = {}  # question_key of each question and alternate
        for e in retriever.entries:
            for text in (e.question, *e.alternate_questions):
                self._exact.setdefault(question_key(text), e)

    async def decide(
        self, question: str, history: Sequence[ChatTurn] = (), category: str | None = None
    ) -> OfflineDecision:
        """Retrieve for the question, read on its own first; the conversation only narrows.

        As a person would: the new words decide when they are clear on their own (an explicit
        topic switch is answered as asked, and the entry just given is repeated only when the
        new words alone point at it). A short follow-up that refers back ("and for
        universities?", "what happens if one of them fails?") and uses no word the FAQ has never
        seen is also read with the previous question, the entry just given left out: the
        entry that continues it. The confidence is always that of the entry given for *this*
        question, and the "Did you mean" zone applies as for any question.
        """
        asked = next((t.content for t in reversed(history) if t.role == "user"), None)
        follow_up = asked is not None and self.is_follow_up(question)
        joined_query = f"{asked} {question}"
        await self.retriever.prepare([question, asked] if asked and follow_up else [question])
        if asked and follow_up:  # its vector from the two (already encoded): no model call
            self.retriever.blend(joined_query, (asked, question))
        # a follow-up that refers back has its topic in the conversation: its own few words
        # ("where is it kept?") are not held to the topic-word check (hybrid.py)
        own = not follow_up
        alone = self._decide(question, category, check_topic=own)
        if asked is None:
            return alone
        previous = previous_entry(history, self.retriever.entries) or self._given(history, asked)
        skip = (previous.id,) if previous and not self._names(question, previous) else ()
        if skip and _top_id(alone) == skip[0] and not alone.answerable:
            # the entry just given, and the new words alone are not sure of it: not a repeat
            alone = self._decide(question, category, exclude=skip, check_topic=own)
        if not follow_up:
            return alone
        readings = [self._decide(joined_query, category, exclude=skip, check_topic=False)]
        if previous is not None and category is None:  # the new words, in the same category
            readings.append(
                self._decide(question, previous.category, exclude=skip, check_topic=False)
            )
        return self._resolve(alone, readings, previous if not skip else None)

    def _resolve(
        self,
        alone: OfflineDecision,
        readings: Sequence[OfflineDecision],
        named: FaqEntry | None,
    ) -> OfflineDecision:
        """Choose between the new words alone and their readings in the conversation
        (`named`: the entry just given, when the new words all appear in it)."""
        if not alone.answerable:
            return max([alone, *readings], key=lambda d: d.result.confidence)
        # the conversation may only choose among the entries the new words rank high (or name),
        # and only when it is fairly sure itself (above the middle of the "Did you mean" zone)
        nearby = {h.entry.id for h in alone.result.hits[1:MAX_SUGGESTIONS]}
        nearby |= {named.id} if named is not None else set()
        floor = (self.zones.answer + self.zones.suggest) / 2
        fits = [d for d in readings if _top_id(d) in nearby and d.result.confidence >= floor]
        if not fits:
            return alone
        best = max(fits, key=lambda d: d.result.confidence)
        return best if best.answerable else self._unsure(alone, best)

    def _given(self, history: Sequence[ChatTurn], asked: str) -> FaqEntry | None:
        """The entry behind an answer in an LLM's own words: the one the previous question
        finds on its own with confidence (none after a refusal or a "Did you mean" turn)."""
        said = next((t.content for t in reversed(history) if t.role == "assistant"), "")
        if not said or said.startswith(SUGGEST_TEXT):
            return None
        found = self._decide(asked, None)
        return found.entry

    def _names(self, question: str, entry: FaqEntry) -> bool:
        """Every content word of the question is found in the entry: the new words alone may
        point at the entry just given ("and how do I revoke one?" after creating API keys)."""
        return self.retriever.entry_coverage(question, entry.id) >= 1.0

    def is_follow_up(self, question: str) -> bool:
        """Short, refers back, and uses no word the FAQ has never seen."""
        words = self.retriever.tokenizer.tokens(question)
        return (
            len(words) <= FOLLOW_UP_MAX_WORDS
            and _FOLLOW_UP.search(question) is not None
            and not self.retriever.unknown_words(question)
        )

    def _unsure(self, alone: OfflineDecision, context: OfflineDecision) -> OfflineDecision:
        """The new words favour one entry, the conversation another they also rank high: ask
        ("Did you mean"), the conversation's entry first, at the conversation's confidence."""
        first = context.result.hits[:1]
        rest = tuple(h for h in alone.result.hits if h.entry.id != _top_id(context))
        result = replace(context.result, hits=first + rest)
        return OfflineDecision(context.query, result, "suggest")

    def _decide(
        self,
        query: str,
        category: str | None,
        exclude: Sequence[str] = (),
        *,
        check_topic: bool = True,
    ) -> OfflineDecision:
        k = max(self.top_k, MAX_SUGGESTIONS)
        result = self.retriever.search(
            query, k=k, category=category, exclude=exclude, check_topic=check_topic
        )
        exact = self._exact.get(question_key(query))
        if exact is not None and category in (None, exact.category) and exact.id not in exclude:
            return self._exactly(query, result, exact)
        return OfflineDecision(query, result, self.zones.zone(result.confidence))

    def _exactly(self, query: str, result: SearchResult, entry: FaqEntry) -> OfflineDecision:
        """A question that is exactly (case, accents, punctuation aside) an entry's question or
        alternate is answered with that entry, whatever the ranking thinks: the FAQ's author, or
        an owner who attached a visitor's question to it (issue 22), said so. Measured: without
        this, 5 to 15 of 115 phrasings attached in the CovidFAQ replay were only offered or
        answered wrongly when asked again (bench/RESULTS.md, "The FAQ learns from its users")."""
        found = next((h for h in result.hits if h.entry.id == entry.id), None)
        if found is None:
            found = Hit(entry, result.hits[0].score if result.hits else 0.0)
        hits = (found, *(h for h in result.hits if h.entry.id != entry.id))
        confidence = max(result.confidence, self.zones.answer)
        return OfflineDecision(query, replace(result, hits=hits, confidence=confidence), "answer")

    async def stream(self, text: str) -> AsyncIterator[Event]:
        """Stream text in word-sized Token events."""
        for piece in split_tokens(text):
            yield Token(piece)
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            else:
                await asyncio.sleep(0)


def previous_entry(history: Sequence[ChatTurn], entries: Sequence[FaqEntry]) -> FaqEntry | None:
    """The entry the last answer quoted (offline answers and picked suggestions quote it
    whole), or None: a refusal, a "Did you mean" turn, an LLM's own words."""
    said = next((t.content.strip() for t in reversed(history) if t.role == "assistant"), None)
    if not said:
        return None
    return next((e for e in entries if e.answer.strip() == said), None)


def _top_id(decision: OfflineDecision) -> str | None:
    top = decision.result.top
    return top.entry.id if top else None


def source_of(entry: FaqEntry, score: float) -> Source:
    return Source(id=entry.id, category=entry.category, question=entry.question, score=score)


def sources_event(entries: Sequence[tuple[FaqEntry, float]]) -> Sources:
    return Sources(tuple(source_of(e, s) for e, s in entries))


def suggestion_text(entries: Sequence[FaqEntry]) -> str:
    """The plain-text form of a suggestion turn (faces may render the entries as buttons)."""
    return SUGGEST_TEXT + "\n" + "\n".join(f"- {e.question}" for e in entries)
