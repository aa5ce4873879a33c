"""Answerability: one confidence in [0, 1] that the top entry answers the question, and zones.

    confidence >= answer threshold   -> answer with the top entry
    suggest threshold <= c < answer  -> "Did you mean:" the 2-3 best entries (two-stage fallback)
    below                            -> refuse

A small bi-encoder cannot tell a near-domain out-of-scope question from a paraphrase with
certainty, so the middle zone keeps the bot honest without refusing real questions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Zone = Literal["answer", "suggest", "refuse"]


@dataclass(frozen=True, slots=True)
class Zones:
    """Thresholds on the confidence; `suggest` <= `answer`."""

    answer: float
    suggest: float

    def zone(self, confidence: float) -> Zone:
        if confidence >= self.answer:
            return "answer"
        if confidence >= self.suggest:
            return "suggest"
        return "refuse"


# Lexical-only engine (BM25 coverage x margin, see lexical.py); measured in bench/RESULTS.md.
LEXICAL_ZONES = Zones(answer=0.25, suggest=0.12)
