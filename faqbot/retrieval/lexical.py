"""Lexical retrieval over FAQ entries with bm25s, plus a calibrated answerability confidence.

Ranking (tuned by measurement on CovidFAQ and our labelled set, see bench/RESULTS.md), each BM25
score z-normalised over the whole knowledge base, then summed:
  1.0 x BM25(question field: question, alternate questions, keywords), stopwords kept
  0.3 x BM25(all text: question field + answer), stopwords kept
  0.2 x BM25(all text, content words only): lets a rare word found only in an answer ("mzML") win
        over function-word matches in questions ("does it ...")
  + 1.0 x coverage (below) for the 30 best candidates.
Stemmed (PyStemmer). Long stopword lists hurt the question field; the short list is used only for
the content-word index and the coverage gate.

Confidence (is the top entry really an answer to this question?) combines two gates, because a
relative margin alone accepts out-of-domain questions:
  coverage: IDF-weighted share of the query's content words found in the top entry; words the FAQ
            never uses weigh the most, so "weather in Paris" scores near 0;
  margin:   how far the top fused score stands above the runner-up.
  confidence = coverage * (MARGIN_FLOOR + (1 - MARGIN_FLOOR) * min(1, margin / MARGIN_SCALE))
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import bm25s
import numpy as np
import Stemmer

from faqbot.domain import FaqEntry

if TYPE_CHECKING:
    from faqbot.retrieval.confidence import Features

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG

ANSWER_FIELD_WEIGHT = 0.3
CONTENT_FIELD_WEIGHT = 0.2
COVERAGE_WEIGHT = 1.0
RERANK_DEPTH = 30
MARGIN_FLOOR = 0.7
MARGIN_SCALE = 1.0

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Function words ignored by the coverage gate only (ranking keeps them).
STOPWORDS = frozenset(
    """a about above after again all am an and any are as at be been before being below between
    both but by can could did do does doing down during each few for from further get got had has
    have having he her here hers him his how i if in into is it its itself just let me might more
    most my no nor not now of off on once only or other our ours out over own please same she should
    so some such than that the their theirs them then there these they this those through to too
    under until up very want was we were what when where which while who whom why will with would
    you your yours yourself tell know need much many way also one ones s t m d ll re ve""".split()
)


def fold(text: str) -> str:
    """Lower-case without accents ("Büro" -> "buro")."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


class Tokenizer:
    """Lower-case, accent-fold, split on non-letters, Snowball-stem (English)."""

    def __init__(self) -> None:
        self._stemmer = Stemmer.Stemmer("english")
        self._stop = frozenset(self._stemmer.stemWords(sorted(STOPWORDS)))

    def tokens(self, text: str) -> list[str]:
        words: list[str] = _WORD.findall(fold(text))
        stems: list[str] = self._stemmer.stemWords(words)
        return stems

    def content(self, tokens: Sequence[str]) -> list[str]:
        return [t for t in tokens if t not in self._stop]


@dataclass(frozen=True, slots=True)
class Hit:
    """A ranked entry; `score` is the fused z-score (comparable within one query only)."""

    entry: FaqEntry
    score: float


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Ranked hits plus the confidence that the first one answers the query."""

    hits: tuple[Hit, ...]
    confidence: float
    coverage: float
    margin: float
    features: Features | None = None  # set by the hybrid ranker

    @property
    def top(self) -> Hit | None:
        return self.hits[0] if self.hits else None


def question_text(entry: FaqEntry) -> str:
    return " ".join((entry.question, *entry.alternate_questions, *entry.keywords))


def zscore(scores: np.ndarray) -> np.ndarray:
    std = float(scores.std())
    if std == 0.0:
        return np.zeros_like(scores)
    result: np.ndarray = (scores - scores.mean()) / std
    return result


class Retriever:
    """An immutable index over a fixed list of entries (rebuild on knowledge reload)."""

    def __init__(self, entries: Sequence[FaqEntry], tokenizer: Tokenizer | None = None) -> None:
        self.entries = tuple(entries)
        self.tokenizer = tokenizer or Tokenizer()
        q_docs = [self.tokenizer.tokens(question_text(e)) for e in self.entries]
        all_docs = [
            q + self.tokenizer.tokens(e.answer) for q, e in zip(q_docs, self.entries, strict=True)
        ]
        self._q_index = self._index(q_docs)
        self._all_index = self._index(all_docs)
        self._content_index = self._index([self.tokenizer.content(d) for d in all_docs])
        self._doc_terms = [frozenset(d) for d in all_docs]
        n = max(1, len(self.entries))
        df: dict[str, int] = {}
        for terms in self._doc_terms:
            for t in terms:
                df[t] = df.get(t, 0) + 1
        self._idf = {t: math.log(1 + n / c) for t, c in df.items()}
        self._unknown_idf = math.log(1 + n)
        self._positions = {e.id: i for i, e in enumerate(self.entries)}
        self._categories = np.array([e.category for e in self.entries], dtype=object)

    @staticmethod
    def _index(docs: list[list[str]]) -> bm25s.BM25:
        model = bm25s.BM25(k1=1.5, b=0.75)
        model.index([d or ["\x00"] for d in docs] or [["\x00"]], show_progress=False)
        return model

    def _scores(self, model: bm25s.BM25, tokens: list[str]) -> np.ndarray:
        known = [t for t in tokens if t in model.vocab_dict]
        if not known:
            return np.zeros(len(self.entries), dtype=np.float32)
        scores: np.ndarray = model.get_scores(known)
        return scores[: len(self.entries)]

    def fused_scores(self, tokens: Sequence[str]) -> np.ndarray:
        """Field-fused BM25 z-scores of every entry for the query's tokens (no coverage)."""
        tokens = list(tokens)
        fused = zscore(self._scores(self._q_index, tokens))
        fused = fused + ANSWER_FIELD_WEIGHT * zscore(self._scores(self._all_index, tokens))
        content = self.tokenizer.content(tokens)
        if content:
            fused = fused + CONTENT_FIELD_WEIGHT * zscore(
                self._scores(self._content_index, content)
            )
        return fused

    def coverage(self, query_tokens: Sequence[str], entry_index: int) -> float:
        """IDF-weighted share of the query's content words present in one entry."""
        content = set(self.tokenizer.content(query_tokens))
        if not content:
            return 0.0
        terms = self._doc_terms[entry_index]
        total = sum(self._idf.get(t, self._unknown_idf) for t in content)
        found = sum(self._idf[t] for t in content if t in terms)
        return found / total if total else 0.0

    def unknown_words(self, query: str) -> list[str]:
        """Content words of `query` that no FAQ entry uses (off-topic signal)."""
        return [
            t for t in self.tokenizer.content(self.tokenizer.tokens(query)) if t not in self._idf
        ]

    def candidates(self, category: str | None, exclude: Collection[str] = ()) -> np.ndarray:
        """Positions of the entries a search may return: one category's (or all), less the
        `exclude` ids (a follow-up never re-offers the entry just given unless asked for)."""
        mask = np.ones(len(self.entries), dtype=bool)
        if category is not None:
            mask &= self._categories == category
        for entry_id in exclude:
            position = self._positions.get(entry_id)
            if position is not None:
                mask[position] = False
        return np.flatnonzero(mask)

    def entry_position(self, entry_id: str) -> int | None:
        return self._positions.get(entry_id)

    def entry_coverage(self, query: str, entry_id: str) -> float:
        """Coverage of `query` by one entry (0 if the id is unknown)."""
        index = self._positions.get(entry_id)
        return 0.0 if index is None else self.coverage(self.tokenizer.tokens(query), index)

    def search(
        self,
        query: str,
        *,
        k: int = 5,
        category: str | None = None,
        exclude: Collection[str] = (),
    ) -> SearchResult:
        """Rank entries (optionally of one category, without the `exclude` entry ids) for
        `query`; never raises on odd input."""
        tokens = self.tokenizer.tokens(query)
        if not self.entries or not tokens:
            return SearchResult((), 0.0, 0.0, 0.0)
        fused = self.fused_scores(tokens)
        candidates = self.candidates(category, exclude)
        if candidates.size == 0:
            return SearchResult((), 0.0, 0.0, 0.0)
        sub = fused[candidates].copy()
        depth = min(RERANK_DEPTH, sub.size)
        shortlist = (
            np.argpartition(-sub, depth - 1)[:depth] if depth < sub.size else np.arange(sub.size)
        )
        for j in shortlist:
            sub[j] += COVERAGE_WEIGHT * self.coverage(tokens, int(candidates[j]))
        take = min(k, sub.size)
        part = np.argpartition(-sub, take - 1)[:take] if take < sub.size else np.arange(sub.size)
        order = part[np.argsort(-sub[part], kind="stable")]
        idx = candidates[order]
        hits = tuple(Hit(self.entries[i], float(sub[j])) for i, j in zip(idx, order, strict=True))
        best = int(idx[0])
        top_score = float(sub[order[0]])
        runner = float(np.partition(sub, -2)[-2]) if sub.size > 1 else top_score - 1.0
        margin = max(0.0, top_score - runner)
        coverage = self.coverage(tokens, best)
        shape = MARGIN_FLOOR + (1 - MARGIN_FLOOR) * min(1.0, margin / MARGIN_SCALE)
        return SearchResult(hits, round(coverage * shape, 4), coverage, margin)
