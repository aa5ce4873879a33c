"""Before an owner attaches a phrasing (issue 22): would it make other questions answer wrongly?

A phrasing attached to entry X becomes one more question vector and more BM25 words of X. That
can pull questions that belong to other entries over to X. `conflicts` ranks probe questions
(by default every other entry's own question and alternates; the owner's labelled questions when
given) with the FAQ as served and with the candidate applied, and returns those whose top entry
was the right one and becomes X. Only probes the candidate can move are re-ranked: those it
raises X's best question cosine for, or that share a content word with it (elsewhere X's
question cosine stays and its BM25 score can only fall, its text being longer; a shared stop
word is ignored). The candidate's vector joins a copy of the served dense index, and the probes'
vectors are the index's own rows, so the candidate is encoded (and, once, the topic words of
the few probes whose answer needs them, issue 21); bench/RESULTS.md, "The FAQ learns from its
users", has timings. Raises EmbeddingError if the embedder fails.

An out-of-scope mark conflicts when the FAQ itself has that exact question: it would refuse it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from faqbot.answering.bot import FaqBot
from faqbot.domain import FaqEntry, KnowledgeBase
from faqbot.knowledge.learned import LearnedPhrasing, clean_phrasing, phrasing_key
from faqbot.retrieval.hybrid import HybridRetriever
from faqbot.retrieval.lexical import Retriever
from faqbot.retrieval.vectors import ALTERNATE, DenseIndex

Reason = Literal["duplicate", "steals", "covered"]
Probe = tuple[str, str]  # (question, the id of the entry that should answer it)
# a probe's cosine with the candidate may fall this much short of X's best question cosine and
# still be re-ranked (the z-scores over the FAQ shift a little when any entry changes)
SLACK = 0.02


@dataclass(frozen=True, slots=True)
class Conflict:
    """A probe question the candidate would take from its entry (`reason` "steals": ranked
    first before, the candidate's entry first after; `answered`: with confidence, not just
    offered), that already is another entry's question ("duplicate"), or an entry's own
    question that an out-of-scope mark would refuse ("covered")."""

    question: str
    expected_entry_id: str
    now_entry_id: str
    reason: Reason
    answered: bool = True


def default_probes(kb: KnowledgeBase, except_entry: str = "") -> list[Probe]:
    """Every entry's own question and alternates (learned ones included when `kb` has them
    applied), but those of `except_entry`."""
    return [
        (text, e.id)
        for e in kb.entries
        if e.id != except_entry
        for text in (e.question, *e.alternate_questions)
    ]


def conflicts(
    bot_or_retriever: FaqBot | HybridRetriever,
    kb: KnowledgeBase,
    candidate: LearnedPhrasing,
    probes: Sequence[Probe] | None = None,
) -> list[Conflict]:
    """The probes (default: `default_probes`) the candidate would answer wrongly; [] when it
    is safe. `kb` is the knowledge base the bot serves (learned phrasings applied); raises
    PhrasingError for text that is no valid phrasing, KeyError for an unknown entry."""
    if isinstance(bot_or_retriever, FaqBot):
        retriever, zones = bot_or_retriever.retriever, bot_or_retriever.offline.zones
    else:
        retriever, zones = bot_or_retriever, bot_or_retriever.zones
    if tuple(e.id for e in retriever.entries) != tuple(e.id for e in kb.entries):
        raise ValueError("the retriever does not serve this knowledge base")
    text = clean_phrasing(candidate.text)
    key = phrasing_key(text)
    if candidate.kind == "out_of_scope":
        return [
            Conflict(q, e.id, "", "covered", answered=False)
            for e in kb.entries
            for q in (e.question, *e.alternate_questions)
            if phrasing_key(q) == key
        ]
    target = kb.entry(candidate.entry_id)  # KeyError: no such entry
    same = [
        Conflict(q, e.id, target.id, "duplicate")
        for e in kb.entries
        if e.id != target.id
        for q in (e.question, *e.alternate_questions)
        if phrasing_key(q) == key
    ]
    if same:
        return same
    if probes is None:
        probes = default_probes(kb, target.id)
    probes = [p for p in probes if p[1] != target.id and p[1] in kb.by_id]
    after = _with_candidate(retriever, target, text)
    near = _near(retriever, after, target, text, probes)
    found = []
    for question, expected in near:
        before = retriever.search(question, k=1)
        if before.top is None or before.top.entry.id != expected:
            continue  # already wrong: the candidate takes nothing from it
        now = after.search(question, k=1)
        if now.top is not None and now.top.entry.id == target.id:
            answered = zones.zone(now.confidence) == "answer"
            found.append(Conflict(question, expected, target.id, "steals", answered))
    return found


def _with_candidate(retriever: HybridRetriever, target: FaqEntry, text: str) -> HybridRetriever:
    """The served retriever with `text` as one more alternate of `target`: BM25 rebuilt (a
    few milliseconds for a small FAQ), the dense index copied with one row added."""
    entries = tuple(
        dataclasses.replace(e, alternate_questions=(*e.alternate_questions, text))
        if e.id == target.id
        else e
        for e in retriever.entries
    )
    dense = retriever.dense
    if dense is not None and retriever.queries is not None:
        position = retriever.lexical.entry_position(target.id)
        assert position is not None  # `target` is an entry of the served knowledge base
        vector = retriever.queries.encode(text)  # the query side, as alternates are encoded
        dense = DenseIndex(
            model_id=dense.model_id,
            matrix=np.vstack([dense.matrix, vector[None, :].astype(np.float32)]),
            owner=np.append(dense.owner, np.int64(position)),
            field=np.append(dense.field, np.int8(ALTERNATE)),
            n_entries=dense.n_entries,
        )
    return HybridRetriever(
        Retriever(entries, retriever.tokenizer),
        dense,
        retriever.queries,
        retriever.calibrator,
        background=retriever.background,
    )


def _near(
    before: HybridRetriever,
    after: HybridRetriever,
    target: FaqEntry,
    text: str,
    probes: Sequence[Probe],
) -> list[Probe]:
    """The probes whose score for `target` the candidate can raise: sharing a word with it,
    or (with vectors) closer to it than to any question of `target` so far."""
    words = set(before.tokenizer.content(before.tokenizer.tokens(text)))
    if after.dense is None or after.queries is None:
        tokens = before.tokenizer
        return [p for p in probes if words & set(tokens.content(tokens.tokens(p[0])))]
    queries = after.queries
    candidate = queries.encode(text)
    position = before.lexical.entry_position(target.id)
    dense = after.dense
    own = dense.matrix[(dense.owner == position) & (dense.field <= ALTERNATE)][:-1]
    vectors = _vectors(before, [q for q, _ in probes])
    to_candidate = vectors @ candidate
    to_target = (vectors @ own.T).max(axis=1) if own.size else np.full(len(probes), -1.0)
    near = []
    for i, probe in enumerate(probes):
        shares = words & set(before.tokenizer.content(before.tokenizer.tokens(probe[0])))
        if shares or to_candidate[i] >= to_target[i] - SLACK:
            near.append(probe)
    return near


def _vectors(retriever: HybridRetriever, texts: Sequence[str]) -> np.ndarray:
    """Query vectors of the probe texts, left in the query cache for the searches that follow:
    an entry's question or alternate is a row of the dense index already (the same query-side
    encoding); the others are encoded in one batch, not one model call each."""
    assert retriever.dense is not None
    assert retriever.queries is not None
    dense, queries = retriever.dense, retriever.queries
    known: dict[str, np.ndarray] = {}
    seen: dict[int, int] = {}  # an entry's rows: its question, then its alternates, in order
    for i, (owner, field) in enumerate(
        zip(dense.owner.tolist(), dense.field.tolist(), strict=True)
    ):
        if field > ALTERNATE:
            continue
        entry = retriever.entries[owner]
        n = seen[owner] = seen.get(owner, -1) + 1
        texts_of = (entry.question, *entry.alternate_questions)
        if n < len(texts_of):
            known.setdefault(texts_of[n], dense.matrix[i])
    for text in dict.fromkeys(texts):
        if text not in known and (vector := queries.cached(text)) is not None:
            known[text] = vector
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    if missing:
        known.update(zip(missing, queries.embedder.embed(missing, kind="query"), strict=True))
    wanted = list(dict.fromkeys(texts))
    queries.remember(wanted, np.stack([known[t] for t in wanted]))
    return np.stack([known[t] for t in texts]).astype(np.float32)
