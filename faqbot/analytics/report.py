"""The FAQ owners' report: what was asked, how it ended, what is missing, what users disliked.

`build_report` reads the database (faqbot.analytics.queries) and assembles a `Report`; the CLI
prints it with `format_report`, the API returns `Report.to_dict()`, the admin page draws it.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from faqbot.analytics import queries
from faqbot.analytics.grouping import Asked, QuestionGroup, group_questions
from faqbot.errors import ConfigError
from faqbot.retrieval.embedders import Embedder

LOW_CONFIDENCE = 0.5  # answered below this confidence: listed with the unanswered questions
TOP_GROUPS = 50
TOP_ENTRIES = 10
_SINCE = re.compile(r"^\s*(\d{1,5})\s*([hdw])\s*$", re.IGNORECASE)
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str) -> timedelta:
    """`7d`, `24h`, `2w` -> a timedelta; anything else is a ConfigError naming the format."""
    match = _SINCE.match(text or "")
    if not match or int(match.group(1)) == 0:
        raise ConfigError(f"invalid period {text!r}: use a number and h, d or w (e.g. 7d, 24h)")
    return timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (as PostgreSQL's percentile_cont, numpy)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Summary:
    """Questions and how they ended, for the whole window, one day or one category."""

    key: str
    questions: int = 0
    answered: int = 0
    suggested: int = 0
    refused: int = 0
    fallback: int = 0
    chosen: int = 0  # "Did you mean" suggestions clicked (not counted as questions)
    tokens: int = 0
    cost_usd: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None

    def add(self, cell: queries.Cell) -> None:
        self.questions += cell.questions
        self.answered += cell.answered
        self.suggested += cell.suggested
        self.refused += cell.refused
        self.fallback += cell.fallback
        self.chosen += cell.chosen
        self.tokens += cell.tokens
        self.cost_usd += cell.cost

    def rate(self, count: int) -> float:
        return round(count / self.questions, 4) if self.questions else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cost_usd"] = round(self.cost_usd, 6)
        for name in ("answered", "suggested", "refused", "fallback"):
            out[f"{name}_rate"] = self.rate(getattr(self, name))
        return out


@dataclass
class EntryRating:
    """Thumbs on the answers that used one FAQ entry."""

    entry_id: str
    down: int = 0
    up: int = 0
    comments: list[str] = field(default_factory=list)


@dataclass
class Report:
    since: str
    until: str
    period: str
    low_confidence: float
    grouping: str  # "embeddings (<model id>)" or "word overlap"
    totals: Summary
    by_day: list[Summary]
    by_category: list[Summary]
    unanswered: list[QuestionGroup]
    disliked: list[EntryRating]
    cells: list[queries.Cell] = field(default_factory=list)  # per day x category

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "period": self.period,
            "low_confidence": self.low_confidence,
            "grouping": self.grouping,
            "totals": self.totals.to_dict(),
            "by_day": [s.to_dict() for s in self.by_day],
            "by_category": [s.to_dict() for s in self.by_category],
            "unanswered": [_group_dict(g) for g in self.unanswered],
            "disliked_entries": [asdict(e) for e in self.disliked],
            "by_day_and_category": [asdict(c) for c in self.cells],
        }


def _group_dict(g: QuestionGroup) -> dict[str, Any]:
    return {
        "question": g.question,
        "count": g.count,
        "examples": g.examples[:5],
        "outcomes": dict(g.outcomes),
        "categories": dict(g.categories),
        "last_asked": g.last_asked,
    }


def _summaries(
    cells: Iterable[queries.Cell], key: str, latency: dict[str, list[float]]
) -> list[Summary]:
    by: dict[str, Summary] = {}
    for cell in cells:
        name = getattr(cell, key)
        by.setdefault(name, Summary(name)).add(cell)
    for name, summary in by.items():
        summary.p50_ms = _round(percentile(latency.get(name, []), 0.5))
        summary.p95_ms = _round(percentile(latency.get(name, []), 0.95))
    return sorted(by.values(), key=lambda s: s.key)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _disliked(rows: Iterable[queries.RatingRow]) -> list[EntryRating]:
    by: dict[str, EntryRating] = {}
    for row in rows:
        for entry_id in dict.fromkeys(row.entry_ids):
            rating = by.setdefault(entry_id, EntryRating(entry_id))
            if row.value:
                rating.up += 1
            else:
                rating.down += 1
                if row.comment and len(rating.comments) < 3:
                    rating.comments.append(row.comment)
    ranked = [r for r in by.values() if r.down]
    ranked.sort(key=lambda r: (-r.down, r.up, r.entry_id))
    return ranked[:TOP_ENTRIES]


async def build_report(
    engine: AsyncEngine,
    period: str = "7d",
    *,
    low_confidence: float = LOW_CONFIDENCE,
    embedder: Embedder | None = None,
    now: datetime | None = None,
) -> Report:
    """The report over the last `period` (e.g. "7d"), from the database behind `engine`."""
    until = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    since = until - parse_since(period)
    async with engine.connect() as conn:
        cells = await queries.cells(conn, since)
        latencies = await queries.latencies(conn, since)
        weak = await queries.weak_questions(conn, since, low_confidence)
        rated = await queries.ratings(conn, since)
    by_day: dict[str, list[float]] = defaultdict(list)
    by_category: dict[str, list[float]] = defaultdict(list)
    for day, category, ms in latencies:
        by_day[day].append(ms)
        by_category[category].append(ms)
    totals = Summary("all")
    for cell in cells:
        totals.add(cell)
    every = [ms for _, _, ms in latencies]
    totals.p50_ms, totals.p95_ms = _round(percentile(every, 0.5)), _round(percentile(every, 0.95))
    asked = [Asked(r.question, _weak_outcome(r), r.category, r.created_at) for r in weak]
    groups = await asyncio.to_thread(group_questions, asked, embedder)
    return Report(
        since=queries.iso(since) + "Z",
        until=queries.iso(until) + "Z",
        period=period,
        low_confidence=low_confidence,
        grouping=f"embeddings ({embedder.model_id})" if embedder else "word overlap",
        totals=totals,
        by_day=_summaries(cells, "day", by_day),
        by_category=_summaries(cells, "category", by_category),
        unanswered=groups[:TOP_GROUPS],
        disliked=_disliked(rated),
        cells=cells,
    )


def _weak_outcome(row: queries.QuestionRow) -> str:
    """refused / suggested as stored; an answer under the confidence bar is `low_confidence`."""
    return "low_confidence" if row.outcome == "answered" else row.outcome
