"""The FAQ owners' report on a seeded database: SQLite, and the real PostgreSQL (issue 12)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from faqbot.analytics.grouping import Asked, group_questions
from faqbot.analytics.report import build_report, parse_since, percentile
from faqbot.analytics.text import format_report
from faqbot.errors import ConfigError
from faqbot.retrieval.embedders import HashEmbedder
from tests.analytics_support import (
    INSTRUMENTS,
    REFUND,
    SEED_NOW,
    open_backend,
    seed,
    standard_conversations,
)

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)]


@pytest.fixture(params=BACKENDS)
async def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine, cleanup = await open_backend(request.param, tmp_path)
    try:
        await seed(engine, standard_conversations())
        yield engine
    finally:
        await cleanup()


async def test_report_counts_rates_latency_tokens_and_cost(seeded: AsyncEngine) -> None:
    report = await build_report(seeded, "7d", now=SEED_NOW)
    t = report.totals
    assert (t.questions, t.answered, t.suggested, t.refused, t.fallback, t.chosen) == (
        11, 5, 2, 4, 1, 1,
    )  # fmt: skip
    assert t.to_dict()["refused_rate"] == round(4 / 11, 4)
    assert (t.p50_ms, t.p95_ms) == (70.0, 115.0)
    assert t.tokens == 230
    assert t.cost_usd == pytest.approx(0.00015)
    cats = {c.key: c for c in report.by_category}
    assert set(cats) == {"", "sales", "labs", "reports"}
    assert (cats[""].questions, cats[""].refused) == (4, 4)
    assert (cats["sales"].questions, cats["sales"].answered, cats["sales"].suggested) == (4, 2, 2)
    assert cats["sales"].chosen == 1
    days = {d.key: d.questions for d in report.by_day}
    assert days == {"2026-11-25": 1, "2026-11-27": 2, "2026-11-28": 2, "2026-11-29": 3,
                    "2026-11-30": 3}  # fmt: skip
    assert sum(days.values()) == t.questions


async def test_unanswered_questions_are_grouped_with_counts(seeded: AsyncEngine) -> None:
    report = await build_report(seeded, "7d", now=SEED_NOW)
    groups = [(g.question, g.count) for g in report.unanswered]
    assert groups[0] == ("How do I delete my account?", 3)
    assert groups[1] == ("Do you ship to Canada?", 2)  # the follow-up counted by its rewrite
    assert sorted(groups[2:]) == [
        ("Can I pay with PayPal?", 1),
        ("Which instruments can I connect?", 1),  # answered, but at confidence 0.4
    ]
    delete = report.unanswered[0]
    assert delete.examples == ["How can I delete my account?"]
    assert dict(delete.outcomes) == {"refused": 3}
    assert "An old question about invoices?" not in {g.question for g in report.unanswered}
    stricter = await build_report(seeded, "7d", now=SEED_NOW, low_confidence=0.3)
    assert "Which instruments can I connect?" not in {g.question for g in stricter.unanswered}


async def test_most_disliked_entries(seeded: AsyncEngine) -> None:
    report = await build_report(seeded, "7d", now=SEED_NOW)
    disliked = [(e.entry_id, e.down, e.up) for e in report.disliked]
    assert disliked == [(REFUND, 2, 0), (INSTRUMENTS, 1, 0)]  # the PDF entry only got a thumb up
    assert sorted(report.disliked[0].comments) == ["too vague", "wrong plan"]


async def test_a_longer_period_includes_the_old_conversation(seeded: AsyncEngine) -> None:
    report = await build_report(seeded, "8w", now=SEED_NOW)
    assert report.totals.questions == 12
    assert report.totals.p95_ms is not None
    assert report.totals.p95_ms > 120
    assert "An old question about invoices?" in {g.question for g in report.unanswered}


async def test_empty_database_gives_an_empty_report(tmp_path: Path) -> None:
    engine, cleanup = await open_backend("sqlite", tmp_path)
    try:
        report = await build_report(engine, "7d", now=SEED_NOW)
    finally:
        await cleanup()
    assert report.totals.questions == 0
    assert report.totals.p50_ms is None
    assert report.unanswered == []
    assert report.disliked == []
    assert "(none: every question" in format_report(report)
    json.dumps(report.to_dict())


async def test_report_json_shape(seeded: AsyncEngine) -> None:
    data: dict[str, Any] = (await build_report(seeded, "7d", now=SEED_NOW)).to_dict()
    assert data["since"] == "2026-11-23T12:00:00Z"
    assert data["until"] == "2026-11-30T12:00:00Z"
    assert data["unanswered"][0]["count"] == 3
    assert data["totals"]["answered_rate"] == round(5 / 11, 4)
    assert data["disliked_entries"][0]["entry_id"] == REFUND
    cells = {(c["day"], c["category"]): c for c in data["by_day_and_category"]}
    assert cells[("2026-11-30", "")]["refused"] == 2  # alice's two delete-account questions
    assert cells[("2026-11-30", "sales")]["answered"] == 1
    assert sum(c["questions"] for c in cells.values()) == 11
    json.dumps(data)


def test_text_report_lists_unanswered_questions_first() -> None:
    import asyncio

    from tests.analytics_support import open_backend as _open

    async def make(tmp: Path) -> str:
        engine, cleanup = await _open("sqlite", tmp)
        try:
            await seed(engine, standard_conversations())
            return format_report(await build_report(engine, "7d", now=SEED_NOW))
        finally:
            await cleanup()

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        text = asyncio.run(make(Path(tmp)))
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if "delete my account" in line)
    assert first < next(i for i, line in enumerate(lines) if line.startswith("Totals:"))
    assert lines[first].split()[:2] == ["3", "3"]  # count 3, all refused
    assert "~ How can I delete my account?" in text


def test_parse_since() -> None:
    assert parse_since("7d").days == 7
    assert parse_since("24h").total_seconds() == 86400
    assert parse_since("2W").days == 14
    for bad in ("", "7", "0d", "7x", "-1d", "1y"):
        with pytest.raises(ConfigError):
            parse_since(bad)


def test_percentile_interpolates_like_postgresql() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([10.0, 20.0], 0.95) == pytest.approx(19.5)


def _asked(*texts: str) -> list[Asked]:
    return [Asked(t, "refused", "", f"2026-11-30T00:00:{i:02d}Z") for i, t in enumerate(texts)]


def test_grouping_by_words_and_by_vectors() -> None:
    asked = _asked(
        "Do you ship to Canada?", "do you ship to canada", "Shipping to Canada possible?",
        "How do I cancel my subscription?", "cancel my subscription",
        "What is the weather today?",
    )  # fmt: skip
    by_words = {g.question: (g.count, g.examples) for g in group_questions(asked)}
    assert by_words["Do you ship to Canada?"] == (2, [])  # the same words: one text
    # equal counts: the most recently asked phrasing names the group
    assert by_words["cancel my subscription"] == (2, ["How do I cancel my subscription?"])
    assert by_words["Shipping to Canada possible?"] == (1, [])  # too few words in common
    synonyms = {"shipping": "ship", "possible": "you"}
    by_vectors = group_questions(asked, HashEmbedder(synonyms=synonyms), threshold=0.6)
    counts = {g.question: g.count for g in by_vectors}
    assert counts == {
        "Do you ship to Canada?": 3,
        "cancel my subscription": 2,
        "What is the weather today?": 1,
    }
