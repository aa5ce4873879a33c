"""Group the questions faqbot could not answer by similarity: one group per missing FAQ entry.

With an embedder (the bundled model) two questions join when their vectors' cosine is very high
(0.95), or high (0.90) and they share a content word: measured on the bundled model, "How do I
delete my account?" / "How can I remove my account?" score 0.98 and "... / I want to close my
account" 0.91, but "... / How do I reset my password?" 0.92 too, which the shared-word rule
keeps apart. Without an embedder, questions join when their word sets overlap enough (Jaccard
over normalised, lightly stemmed content words). Exact repeats (same normalised text) are
counted first, so each distinct text is compared once. Groups are built greedily from the most
asked question down: each joins the first group whose representative it resembles, else starts
one.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from faqbot.errors import EmbeddingError
from faqbot.logs import get_logger
from faqbot.retrieval.embedders import Embedder

log = get_logger("faqbot.analytics")

COSINE_SURE = 0.95  # bundled e5: the same question in other words
COSINE_WITH_WORDS = 0.90  # ... when the two also share a content word
JACCARD_THRESHOLD = 0.5
MAX_DISTINCT = 500  # distinct texts grouped per report, most asked first
CHUNK = 16  # texts per embedder call: a live bot's questions get the model in between
_CACHE_SIZE = 5000
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = frozenset(
    "a an the is are was were be do does did i you we my your our to of in on for and or it "
    "can how what when where why which who me us this that with at by from".split()
)


@dataclass
class QuestionGroup:
    """Similar questions: the most asked one names the group; `count` sums every member."""

    question: str
    count: int = 0
    examples: list[str] = field(default_factory=list)  # other phrasings, most asked first
    outcomes: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    last_asked: str = ""


@dataclass(frozen=True)
class Asked:
    """One asked question (as stored) and how its turn ended."""

    question: str
    outcome: str
    category: str
    created_at: str


def normalise(text: str) -> str:
    """Lower-case words of `text` (NFKC), joined by single spaces: repeats compare equal."""
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def token_set(text: str) -> frozenset[str]:
    """The content words of `text`, stemmed; all words if it has only stop words."""
    words = normalise(text).split()
    content = [w for w in words if w not in _STOP] or words
    return frozenset(_stem(w) for w in content)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _distinct(asked: Sequence[Asked]) -> list[tuple[str, list[Asked]]]:
    """Asked questions by normalised text, most asked first (ties: most recently asked first)."""
    by_text: dict[str, list[Asked]] = {}
    for a in asked:
        key = normalise(a.question)
        if key:
            by_text.setdefault(key, []).append(a)
    items = sorted(by_text.items(), key=lambda kv: max(a.created_at for a in kv[1]), reverse=True)
    items.sort(key=lambda kv: len(kv[1]), reverse=True)  # stable: recency breaks count ties
    return items


_cache: dict[tuple[str, str], np.ndarray] = {}  # (model id, text) -> vector, across reports


def _vectors(texts: list[str], embedder: Embedder | None) -> np.ndarray | None:
    """One unit vector per text (cached), or None to group by words instead."""
    if embedder is None or not texts:
        return None
    missing = [t for t in dict.fromkeys(texts) if (embedder.model_id, t) not in _cache]
    try:
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start : start + CHUNK]
            for text, row in zip(chunk, embedder.embed(chunk, kind="query"), strict=True):
                if len(_cache) >= _CACHE_SIZE:
                    _cache.pop(next(iter(_cache)))
                _cache[(embedder.model_id, text)] = row
    except EmbeddingError as exc:
        log.warning("analytics.embedding_failed", error=str(exc), fallback="word overlap")
        return None
    return np.stack([_cache[(embedder.model_id, t)] for t in texts])


def group_questions(
    asked: Sequence[Asked], embedder: Embedder | None = None, threshold: float | None = None
) -> list[QuestionGroup]:
    """Similar questions grouped, largest group first, each with its count and phrasings.

    `threshold` replaces the bundled model's rule by a plain cosine bar (for other embedders).
    """
    distinct = _distinct(asked)[:MAX_DISTINCT]
    texts = [items[0].question.strip() for _, items in distinct]
    vectors = _vectors(texts, embedder)
    words = [token_set(t) for t in texts]

    def similar(i: int, j: int) -> bool:
        if vectors is None:
            return jaccard(words[i], words[j]) >= JACCARD_THRESHOLD
        cosine = float(vectors[i] @ vectors[j])
        if threshold is not None:
            return cosine >= threshold
        return cosine >= COSINE_SURE or (cosine >= COSINE_WITH_WORDS and bool(words[i] & words[j]))

    leaders: list[int] = []  # index of each group's representative
    groups: list[QuestionGroup] = []
    for i, (_, items) in enumerate(distinct):
        target = None
        for g, leader in enumerate(leaders):
            if similar(i, leader):
                target = g
                break
        if target is None:
            leaders.append(i)
            groups.append(QuestionGroup(question=texts[i]))
            target = len(groups) - 1
        group = groups[target]
        if texts[i] != group.question:
            group.examples.append(texts[i])
        group.count += len(items)
        group.outcomes.update(a.outcome for a in items)
        group.categories.update(a.category for a in items if a.category)
        group.last_asked = max(group.last_asked, *(a.created_at for a in items))
    groups.sort(key=lambda g: (-g.count, g.question))
    return groups
