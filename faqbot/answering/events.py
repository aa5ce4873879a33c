"""Typed events of one answer. Every face (Chainlit, HTTP, CLI) renders this same stream:

    RouteDecided -> [Fallback] -> Token* -> Sources -> [Suggestions] -> [Refused] -> Done

Outcome of a turn: `answered` (an entry, or the LLM's grounded answer), `suggested` (retrieval is
unsure: "Did you mean:" with the 2-3 best entries, no answer given) or `refused` (not covered).

`Done` carries the whole TurnResult, so non-streaming callers can just wait for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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
class RouteDecided:
    """The router's decision; `category` is None when no category covers the question."""

    category: str | None
    confidence: float
    standalone_question: str
    via: Via


@dataclass(frozen=True, slots=True)
class Token:
    """A piece of the streamed answer."""

    text: str


@dataclass(frozen=True, slots=True)
class Fallback:
    """The LLM failed; the answer that follows comes from offline retrieval."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Sources:
    sources: tuple[Source, ...]


@dataclass(frozen=True, slots=True)
class Suggestions:
    """Retrieval was unsure: the entries the user may have meant (best first); no answer given.

    A face shows them as choices (Chainlit action buttons, `suggestions` in the API); choosing one
    shows that entry's answer.
    """

    sources: tuple[Source, ...]


@dataclass(frozen=True, slots=True)
class Refused:
    """The FAQ does not cover the question; the streamed answer is the refusal text."""

    reason: str


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


@dataclass(frozen=True, slots=True)
class Done:
    result: TurnResult


Event = RouteDecided | Token | Fallback | Sources | Suggestions | Refused | Done
