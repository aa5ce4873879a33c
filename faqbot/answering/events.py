"""Typed events of one answer. Every face (Chainlit, HTTP, CLI) renders this same stream:

    RouteDecided -> [Fallback] -> Token* -> Sources -> [Suggestions] -> [Refused] -> Done

Outcome of a turn: `answered` (an entry, or the LLM's grounded answer), `suggested` (retrieval is
unsure: "Did you mean:" with the 2-3 best entries, no answer given) or `refused` (not covered).

`Done` carries the whole TurnResult, so non-streaming callers can just wait for it.
The values the services also use (Source, Usage, Fallback, TurnResult) live in faqbot.domain
and are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

from faqbot.domain import Fallback, Mode, Outcome, Source, TurnResult, Usage, Via

__all__ = [
    "Done",
    "Event",
    "Fallback",
    "Mode",
    "Outcome",
    "Refused",
    "RouteDecided",
    "Source",
    "Sources",
    "Suggestions",
    "Token",
    "TurnResult",
    "Usage",
    "Via",
]


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
class Done:
    result: TurnResult


Event = RouteDecided | Token | Fallback | Sources | Suggestions | Refused | Done
