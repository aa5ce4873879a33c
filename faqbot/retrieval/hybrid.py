"""Hybrid ranking: lexical BM25 and semantic similarity fused, with one calibrated confidence.

Per entry, with z-scores taken over the whole FAQ:
    dense = z(best cosine with its question or an alternate) + z(cosine with question+answer)
            + 0.6 z(cosine with the answer)
    fused = dense + 0.15 z(lexical BM25 fusion)
Chosen by measurement on three labelled sets (bench/RESULTS.md): z-fusion beat reciprocal-rank
fusion (CovidFAQ P@1 .81 vs .76) because RRF throws away how far the top entry stands above the
rest, which is most of the signal in a small FAQ; the question+answer and answer vectors carry
paraphrases that name a fact of the answer; more lexical weight helps CovidFAQ's keyword queries
a little and hurts low-overlap paraphrases more. A question that shares no word with the FAQ
(another language) gets a flat lexical z of 0 everywhere, so the dense side alone decides.

Without a dense index (no embedder, or vectors still encoding) it is the lexical retriever.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace

import numpy as np
from cachetools import LRUCache

from faqbot.domain import FaqEntry
from faqbot.errors import EmbeddingError
from faqbot.logs import get_logger
from faqbot.retrieval.confidence import LEXICAL_ZONES, Calibrator, Features, Zones
from faqbot.retrieval.embedders import Embedder
from faqbot.retrieval.frames import frame_share, topic_words
from faqbot.retrieval.lexical import Hit, Retriever, SearchResult, Tokenizer, zscore
from faqbot.retrieval.vectors import QA, DenseIndex

log = get_logger("faqbot.hybrid")

QA_WEIGHT = 1.0
RELATED = 3  # related questions offered under an answer
ANSWER_WEIGHT = 0.6
LEXICAL_WEIGHT = 0.15
# An answer to a question that is mostly frame (at least TOPIC_FRAME_SHARE of its words, so its
# vector is mostly the frame's) none of whose topic words is in the entry (lexical coverage at
# most TOPIC_COVERAGE) needs the topic words alone to point at the entry by meaning: the entry's
# dense score (summed z-scores, scale-free) for them at least TOPIC_SUPPORT, else the confidence
# is held in the "Did you mean" zone. Chosen on tune parts (bench/RESULTS.md, "Topic words").
# Held only when the topic words are also foreign to the FAQ: their vector is no nearer to any
# FAQ question than to the generic off-topic bank by more than TOPIC_DOMAIN_GAP (cosine). Topic
# words in the FAQ's own domain ("where is the coronavirus from?" in a COVID FAQ: "coronavirus"
# is in a quarter of its entries, not in the one that answers) say nothing against the entry.
TOPIC_COVERAGE = 0.0
TOPIC_FRAME_SHARE = 0.6
TOPIC_SUPPORT = 5.0
TOPIC_DOMAIN_GAP = 0.0


class QueryEncoder:
    """Embeds questions with an LRU cache (repeated questions cost nothing); thread-safe.

    After a failure the embedder is left alone for `cooldown` seconds: a dead endpoint costs
    one timeout, not one per question, and never blocks the event loop again meanwhile.
    """

    def __init__(
        self,
        embedder: Embedder,
        size: int = 2048,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.embedder = embedder
        self.cooldown = cooldown
        self.clock = clock  # a test's clock steps over the cooldown without waiting for it
        self._cache: LRUCache[str, np.ndarray] = LRUCache(maxsize=size)
        self._lock = threading.Lock()
        self._down_until = 0.0
        # texts being encoded now, per event loop: a burst of the same question (a popular
        # question, a campaign link) waits for one encoding instead of queueing one per asker
        # (measured: 50 simultaneous askers of 3 questions delayed every answer by ~0.3 s)
        self._inflight: dict[tuple[int, str], asyncio.Future[None]] = {}

    def cached(self, text: str) -> np.ndarray | None:
        with self._lock:
            return self._cache.get(text)

    def remember(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Cache query vectors encoded elsewhere: an entry's question row of the dense index is
        its query vector (the same query-side encoding), so checking a phrasing against the
        FAQ's own questions (faqbot.answering.learning_check) encodes none of them again."""
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                self._cache[text] = vector

    def down(self) -> bool:
        return self.clock() < self._down_until

    def encode(self, text: str) -> np.ndarray:
        """The query vector; raises EmbeddingError (at once while cooling down)."""
        vector = self.cached(text)
        if vector is not None:
            return vector
        if self.down():
            raise EmbeddingError("query embedding is cooling down after a failure")
        try:
            fresh: np.ndarray = self.embedder.embed([text], kind="query")[0]
        except EmbeddingError:
            self._down_until = self.clock() + self.cooldown
            raise
        with self._lock:
            self._cache[text] = fresh
        return fresh

    async def prepare(self, texts: Sequence[str]) -> None:
        """Encode in a worker thread so the event loop never waits on the model; texts new
        together are encoded as one batch (a follow-up and its reading with the previous
        question: one model call, not two competing for the same cores).

        Concurrent callers asking for the same text share one encoding (single flight).
        """
        loop = asyncio.get_running_loop()
        todo = [t for t in dict.fromkeys(texts) if self.cached(t) is None]
        jobs = {self._inflight[k] for t in todo if (k := (id(loop), t)) in self._inflight}
        fresh = [t for t in todo if (id(loop), t) not in self._inflight]
        if fresh:
            job = loop.run_in_executor(None, self._encode_quietly, fresh)
            keys = [(id(loop), t) for t in fresh]
            for key in keys:
                self._inflight[key] = job
            job.add_done_callback(lambda _: [self._inflight.pop(k, None) for k in keys])
            jobs.add(job)
        if jobs:
            await asyncio.gather(*jobs)

    def blend(self, text: str, parts: Sequence[str]) -> None:
        """Cache for `text` the normalised sum of its parts' cached vectors (a follow-up read
        with the previous question, without another model call); nothing if one is missing."""
        with self._lock:
            if text in self._cache:
                return
            vectors = [self._cache.get(p) for p in parts]
            if any(v is None for v in vectors):
                return
            total = np.sum(np.stack(vectors), axis=0)  # type: ignore[arg-type]
            norm = float(np.linalg.norm(total))
            self._cache[text] = (total / norm if norm else total).astype(np.float32)

    def _encode_quietly(self, texts: list[str]) -> None:
        """Encode and cache; on failure, search() meets it again and falls back to lexical."""
        if len(texts) == 1:
            with contextlib.suppress(EmbeddingError):
                self.encode(texts[0])
            return
        if self.down():
            return
        try:
            vectors = self.embedder.embed(texts, kind="query")
        except EmbeddingError:
            self._down_until = self.clock() + self.cooldown
            return
        with self._lock:
            for text, vector in zip(texts, vectors, strict=True):
                self._cache[text] = vector


@dataclass(frozen=True)
class _Scores:
    """One query's scores over every entry (read-only arrays, shared between searches)."""

    vector: np.ndarray
    tokens: list[str]
    lexical: np.ndarray
    best_q: np.ndarray
    qa: np.ndarray
    answer: np.ndarray
    dense: np.ndarray
    fused: np.ndarray


class HybridRetriever:
    """Lexical + dense retrieval over one knowledge base; `dense=None` means lexical only.

    One answer searches the same question up to three times (local routing over all entries,
    then the chosen category's grounding and confidence): the per-entry scores of the last few
    questions are kept, so only the first search computes them (profiled: retrieval was a
    tenth of a zero-latency answer, three quarters of it repeated work).
    """

    def __init__(
        self,
        lexical: Retriever,
        dense: DenseIndex | None = None,
        queries: QueryEncoder | None = None,
        calibrator: Calibrator | None = None,
        zones: Zones | None = None,
        background: np.ndarray | None = None,
    ) -> None:
        self.lexical = lexical
        self.dense = dense if queries is not None else None
        self.queries = queries
        self.calibrator = calibrator
        self.background = background
        self._zones = zones
        self._recent: LRUCache[str, _Scores] = LRUCache(maxsize=64)
        self._related: dict[str, tuple[FaqEntry, ...]] = {}
        self._recent_lock = threading.Lock()
        self.check_topics = True  # bench/calibrate.py turns it off to report the old behaviour

    # --- the lexical retriever's surface (router, answerer, offline engine use it) ---
    @property
    def entries(self) -> tuple[FaqEntry, ...]:
        return self.lexical.entries

    @property
    def tokenizer(self) -> Tokenizer:
        return self.lexical.tokenizer

    def unknown_words(self, query: str) -> list[str]:
        return self.lexical.unknown_words(query)

    def entry_coverage(self, query: str, entry_id: str) -> float:
        return self.lexical.entry_coverage(query, entry_id)

    def related(self, entry_id: str) -> tuple[FaqEntry, ...]:
        """The questions to offer after this entry's answer: its author's `related:` list, else
        the nearest entries (by meaning with the dense index, else by words); kept per entry."""
        known = self._related.get(entry_id)
        if known is not None:
            return known
        position = self.lexical.entry_position(entry_id)
        if position is None:
            return ()
        entry = self.entries[position]
        if entry.related:
            found = [self.lexical.entry_position(i) for i in entry.related]
            near = tuple(self.entries[p] for p in found if p is not None)[:RELATED]
        else:
            near = self._nearest(position)
        self._related[entry_id] = near
        return near

    def _nearest(self, position: int) -> tuple[FaqEntry, ...]:
        entry = self.entries[position]
        row = None
        if self.dense is not None:
            rows = np.flatnonzero((self.dense.owner == position) & (self.dense.field == QA))
            row = self.dense.matrix[rows[0]] if rows.size else None
        if row is None:
            hits = self.lexical.search(entry.question, k=RELATED, exclude=(entry.id,)).hits
            return tuple(h.entry for h in hits)
        assert self.dense is not None
        best_q, qa, answer = self.dense.entry_scores(row)
        dense = zscore(best_q) + QA_WEIGHT * zscore(qa) + ANSWER_WEIGHT * zscore(answer)
        dense[position] = -np.inf
        order = [int(i) for i in np.argsort(-dense, kind="stable") if int(i) != position]
        return tuple(self.entries[i] for i in order[:RELATED])

    @property
    def mode(self) -> str:
        return "hybrid" if self.dense is not None else "lexical"

    @property
    def zones(self) -> Zones:
        if self.dense is None or self.calibrator is None:
            return LEXICAL_ZONES
        return self._zones or self.calibrator.zones

    async def prepare(self, texts: Sequence[str]) -> None:
        """Encode the texts off the event loop, then the topic words of those whose answer
        will need them (few questions: an answer without every topic word in its entry)."""
        if self.dense is None or self.queries is None:
            return
        await self.queries.prepare(texts)
        topics = [t for t in (self._topic_to_check(x) for x in texts) if t]
        if topics:
            await self.queries.prepare(topics)

    def _topic_to_check(self, query: str) -> str:
        """The topic words whose vector search() will want for `query` ("" if none)."""
        if not self.check_topics or self.calibrator is None or not query.strip():
            return ""
        topic = topic_words(query)
        if not topic or self.queries is None or self.queries.cached(topic) is not None:
            return ""
        vector = self.queries.cached(query)
        if vector is None:
            return ""
        result = self._ranked(query, vector, self.lexical.candidates(None), 1)
        return topic if result is not None and result[1] else ""

    def blend(self, text: str, parts: Sequence[str]) -> None:
        """Let `text` be searched with the blend of its parts' vectors (QueryEncoder.blend)."""
        if self.dense is not None and self.queries is not None:
            self.queries.blend(text, parts)

    def _query_vector(self, query: str) -> np.ndarray | None:
        if self.dense is None or self.queries is None:
            return None
        try:
            return self.queries.encode(query)
        except EmbeddingError as exc:
            log.warning("retrieval.embedding_failed", error=str(exc), fallback="lexical")
            return None

    def _scores(self, query: str, vector: np.ndarray) -> _Scores:
        with self._recent_lock:
            known = self._recent.get(query)
        if (
            known is not None and known.vector is vector
        ):  # the same encoding (cached by QueryEncoder)
            return known
        assert self.dense is not None
        tokens = self.tokenizer.tokens(query)
        lexical = self.lexical.fused_scores(tokens) if tokens else np.zeros(len(self.entries))
        best_q, qa, answer = self.dense.entry_scores(vector)
        dense = zscore(best_q) + QA_WEIGHT * zscore(qa) + ANSWER_WEIGHT * zscore(answer)
        fused = dense + LEXICAL_WEIGHT * zscore(lexical)
        scores = _Scores(vector, tokens, lexical, best_q, qa, answer, dense, fused)
        with self._recent_lock:
            self._recent[query] = scores
        return scores

    def search(
        self,
        query: str,
        *,
        k: int = 5,
        category: str | None = None,
        exclude: Collection[str] = (),
        check_topic: bool = True,
    ) -> SearchResult:
        """Rank entries (optionally of one category, without the `exclude` entry ids); lexical
        alone if the embedder fails. `check_topic=False`: the question's topic is in the
        conversation (a follow-up that refers back), so its own topic words are not checked."""
        vector = self._query_vector(query) if query.strip() else None
        if vector is None or self.dense is None or self.calibrator is None:
            return self.lexical.search(query, k=k, category=category, exclude=exclude)
        candidates = self.lexical.candidates(category, exclude)
        if candidates.size == 0:
            return SearchResult((), 0.0, 0.0, 0.0)
        ranked = self._ranked(query, vector, candidates, k)
        assert ranked is not None
        result, unsure_topic = ranked
        top = result.top
        check = unsure_topic and check_topic and top is not None
        support = self.topic_support(query, top.entry.id) if check and top else None
        if support is not None and support < TOPIC_SUPPORT and not self._topic_in_domain(query):
            confidence = min(result.confidence, self._held_confidence())
            result = replace(result, confidence=round(confidence, 4))
        return result

    def _held_confidence(self) -> float:
        """A confidence in the middle of the "Did you mean" zone."""
        zones = self.zones
        return (zones.answer + zones.suggest) / 2

    def topic_support(self, query: str, entry_id: str) -> float | None:
        """How strongly the question's topic words alone point at the entry by meaning: its
        dense score (z-scores over the FAQ, summed as in ranking) for their vector; None
        without topic words or a vector."""
        position = self.lexical.entry_position(entry_id)
        vector = self._topic_vector(query)
        if vector is None or position is None or self.dense is None:
            return None
        best_q, qa, answer = self.dense.entry_scores(vector)
        dense = zscore(best_q) + QA_WEIGHT * zscore(qa) + ANSWER_WEIGHT * zscore(answer)
        return float(dense[position])

    def topic_domain_gap(self, query: str) -> float | None:
        """How much nearer the question's topic words alone are to the FAQ than to the generic
        off-topic bank: the best cosine of their vector with any FAQ question (or alternate)
        less its best cosine with the bank; None without topic words, a vector or the bank.

        Why: support (`topic_support`) asks whether the topic words point at one entry. Words
        that are the FAQ's own subject ("coronavirus" in a COVID FAQ) point at the FAQ as a
        whole, so they give a right answer low support although nothing in them is off topic;
        words the question brings from outside ("office", "Büro", "order") sit nearer to
        generic questions than to any entry. Measured in bench/RESULTS.md ("Topic words")."""
        vector = self._topic_vector(query)
        if vector is None or self.dense is None or self.background is None:
            return None
        best_q, _, _ = self.dense.entry_scores(vector)
        return float(best_q.max()) - float((self.background @ vector).max())

    def _topic_in_domain(self, query: str) -> bool:
        """Whether the topic words belong to the FAQ's domain (then an answer is not held back:
        the frame and the FAQ's subject together chose it). Unknown without the bank: False,
        the support alone decides, as before the bank was consulted."""
        gap = self.topic_domain_gap(query)
        return gap is not None and gap > TOPIC_DOMAIN_GAP

    def _topic_vector(self, query: str) -> np.ndarray | None:
        """The vector of the question's topic words (cached by the query encoder: `prepare`
        encodes it off the event loop); None without topic words or if the embedder fails."""
        topic = topic_words(query)
        if not topic or self.dense is None or self.queries is None:
            return None
        try:
            return self.queries.encode(topic)
        except EmbeddingError:
            return None  # no evidence either way: the calibrated confidence stands

    def _ranked(
        self, query: str, vector: np.ndarray, candidates: np.ndarray, k: int
    ) -> tuple[SearchResult, bool] | None:
        """The calibrated result over `candidates`, and whether it is an answer that lacks
        lexical evidence for some topic word (then the topic words alone are checked)."""
        assert self.calibrator is not None
        if candidates.size == 0:
            return None
        scores = self._scores(query, vector)
        tokens, lexical, dense, fused = scores.tokens, scores.lexical, scores.dense, scores.fused
        best_q, qa, answer = scores.best_q, scores.qa, scores.answer
        sub = fused[candidates]
        order = np.argsort(-sub, kind="stable")
        idx = candidates[order]
        top = int(idx[0])
        runner = float(sub[order[1]]) if sub.size > 1 else float(sub[order[0]]) - 1.0
        margin = max(0.0, float(sub[order[0]]) - runner)
        coverage = self.lexical.coverage(tokens, top) if tokens else 0.0
        content = self.tokenizer.content(tokens)
        unknown = len(self.lexical.unknown_words(query)) / len(content) if content else 0.0
        off_topic = float((self.background @ vector).max()) if self.background is not None else 0.0
        features = Features(
            question_cos=float(best_q[top]),
            qa_cos=float(qa[top]),
            answer_cos=float(answer[top]),
            dense_z=float(zscore(dense)[top]),
            margin=margin,
            coverage=coverage,
            lexical_agrees=float(tokens != [] and int(np.argmax(lexical)) == top),
            dense_agrees=float(int(np.argmax(dense)) == top),
            unknown_share=unknown,
            background_gap=off_topic - float(best_q[top]),
        )
        confidence = self.calibrator.confidence(features)
        hits = tuple(Hit(self.entries[i], float(fused[i])) for i in idx[:k])
        found = SearchResult(hits, round(confidence, 4), coverage, margin, features)
        unsure_topic = (
            self.check_topics
            and coverage <= TOPIC_COVERAGE
            and frame_share(query) >= TOPIC_FRAME_SHARE
            and confidence >= self.zones.answer
            and bool(topic_words(query))
        )
        return found, unsure_topic
