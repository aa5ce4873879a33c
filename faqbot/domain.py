"""Immutable domain values: FAQ entries, categories, the knowledge base and what one turn yields."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal


@dataclass(frozen=True, slots=True)
class FaqEntry:
    """One question/answer pair; `id` is stable across reorderings (derived from the question)."""

    id: str
    category: str
    question: str
    answer: str
    alternate_questions: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    source: str = ""
    line: int = 0
    related: tuple[str, ...] = ()  # ids of the entries its author suggests next (YAML `related:`)


@dataclass(frozen=True, slots=True)
class Category:
    """A category is one FAQ file; its name is the file stem."""

    name: str
    entries: tuple[FaqEntry, ...]
    path: Path
    description: str = ""
    version: str = ""
    last_updated: str = ""
    metadata: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class KnowledgeBase:
    """All categories, frozen. Reload builds a new one; `version` hashes the content."""

    categories: Mapping[str, Category]
    version: str
    entries: tuple[FaqEntry, ...] = ()
    by_id: Mapping[str, FaqEntry] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def build(cls, categories: list[Category]) -> KnowledgeBase:
        """Freeze categories (sorted by name) and compute the content version hash."""
        ordered = sorted(categories, key=lambda c: c.name)
        digest = hashlib.sha256()
        for cat in ordered:
            for e in cat.entries:
                texts = (e.id, e.question, e.answer, *e.alternate_questions, *e.keywords)
                for part in (*texts, *e.related):  # an edit of `related:` alone is a new version
                    digest.update(part.encode())
                    digest.update(b"\x00")
        entries = tuple(e for c in ordered for e in c.entries)
        return cls(
            categories=MappingProxyType({c.name: c for c in ordered}),
            version=digest.hexdigest()[:12],
            entries=entries,
            by_id=MappingProxyType({e.id: e for e in reversed(entries)}),  # first id wins
        )

    def __iter__(self) -> Iterator[FaqEntry]:
        return iter(self.entries)

    def entry(self, entry_id: str) -> FaqEntry:
        return self.by_id[entry_id]

    def counts(self) -> dict[str, int]:
        return {name: len(cat.entries) for name, cat in self.categories.items()}


Role = Literal["user", "assistant"]

# The name of the step that shows how a question was routed (chat UI, stored threads): visitors
# read it as "Used FAQ lookup" above the answer.
ROUTE_STEP_NAME = "FAQ lookup"


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One message of the conversation history fed to the router."""

    role: Role
    content: str


# Values of one answered question: the services (llm, spend, state, store) and metrics use them,
# so they live here, below the pipeline; faqbot.answering.events re-exports them.
Mode = Literal["llm", "offline"]
Via = Literal["llm", "retrieval", "cache"]
Outcome = Literal["answered", "suggested", "refused"]


@dataclass(frozen=True, slots=True)
class Source:
    """An FAQ entry the answer was grounded on."""

    id: str
    category: str
    question: str
    score: float


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage reported by the API (summed over router and answer calls) and its cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            round(self.cost_usd + other.cost_usd, 8),
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Fallback:
    """The LLM failed; the answer that follows comes from offline retrieval."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class TurnResult:
    """Everything about one answered question."""

    question: str
    answer: str
    category: str | None
    confidence: float
    standalone_question: str
    sources: tuple[Source, ...] = ()
    refused: bool = False
    fallback: bool = False
    fallback_reason: str | None = None
    fallback_notice: str | None = None  # the Fallback's message: why the answer is offline
    mode: Mode = "offline"
    cached: bool = False
    usage: Usage = field(default_factory=Usage)
    elapsed_s: float = 0.0
    suggestions: tuple[Source, ...] = ()
    related: tuple[Source, ...] = ()  # questions to offer next, after an answer

    @property
    def outcome(self) -> Outcome:
        if self.suggestions:
            return "suggested"
        return "refused" if self.refused else "answered"
