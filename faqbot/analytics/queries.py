"""The analytics reads: a few SQL queries, the same statements on SQLite and PostgreSQL.

They read `faqbot_turns` (one flat row per finished turn) and Chainlit's `feedbacks` (thumbs on
an answer; `forId` is the turn's id). Counts are aggregated by the database, per day and
category; latencies, the questions faqbot did not answer confidently and the rated answers come
back as rows (few in any report window) and are finished in Python: percentiles, grouping by
similarity, counts per FAQ entry. A click on a "Did you mean" button is stored as a turn
(`routed_by = 'suggestion'`): it is counted as `chosen`, not as a new question.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from faqbot.store.schema import feedbacks, turns

MAX_QUESTION_ROWS = 5000  # the most recent unanswered/low-confidence turns a report reads
MAX_LATENCY_ROWS = 200_000
CHOSEN = "suggestion"  # routed_by of a turn that answers a clicked suggestion


@dataclass(frozen=True)
class Cell:
    """Counts and sums for one day and one category ("" = not routed to any)."""

    day: str
    category: str
    questions: int
    answered: int
    suggested: int
    refused: int
    fallback: int
    chosen: int
    tokens: int
    cost: float


@dataclass(frozen=True)
class QuestionRow:
    """A turn that was refused, only suggested, or answered below the confidence bar."""

    question: str
    outcome: str
    category: str
    confidence: float | None
    created_at: str


@dataclass(frozen=True)
class RatingRow:
    """One thumbs up (1) or down (0) on an answer, with the FAQ entries that answer used."""

    value: int
    entry_ids: tuple[str, ...]
    category: str
    comment: str | None


def iso(moment: datetime) -> str:
    """A naive UTC moment as stored timestamps begin (`2026-11-30T01:02:03`), compared as text."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _count_if(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


_day = func.substr(turns.c.created_at, 1, 10)
_category = func.coalesce(turns.c.category, literal(""))
_asked = func.coalesce(turns.c.routed_by, literal("")) != CHOSEN


async def cells(conn: AsyncConnection, since: datetime) -> list[Cell]:
    """Per day and category: questions, outcomes, fallbacks, chosen suggestions, tokens, cost."""
    day, category = _day.label("day"), _category.label("category")
    query = (
        select(
            day,
            category,
            _count_if(_asked).label("questions"),
            _count_if(and_(_asked, turns.c.outcome == "answered")).label("answered"),
            _count_if(and_(_asked, turns.c.outcome == "suggested")).label("suggested"),
            _count_if(and_(_asked, turns.c.outcome == "refused")).label("refused"),
            _count_if(and_(_asked, turns.c.fallback)).label("fallback"),
            _count_if(~_asked).label("chosen"),
            func.sum(
                func.coalesce(turns.c.prompt_tokens, 0)
                + func.coalesce(turns.c.completion_tokens, 0)
            ).label("tokens"),
            func.sum(func.coalesce(turns.c.cost_usd, 0.0)).label("cost"),
        )
        .where(turns.c.created_at >= iso(since))
        .group_by(day, category)
        .order_by(day, category)
    )
    return [
        Cell(
            day=str(r.day),
            category=str(r.category),
            questions=int(r.questions or 0),
            answered=int(r.answered or 0),
            suggested=int(r.suggested or 0),
            refused=int(r.refused or 0),
            fallback=int(r.fallback or 0),
            chosen=int(r.chosen or 0),
            tokens=int(r.tokens or 0),
            cost=float(r.cost or 0.0),
        )
        for r in (await conn.execute(query)).all()
    ]


async def latencies(conn: AsyncConnection, since: datetime) -> list[tuple[str, str, float]]:
    """(day, category, latency in ms) of every asked question in the window."""
    query = (
        select(_day, _category, turns.c.latency_ms)
        .where(turns.c.created_at >= iso(since), _asked, turns.c.latency_ms.is_not(None))
        .limit(MAX_LATENCY_ROWS)
    )
    return [(str(d), str(c), float(v)) for d, c, v in (await conn.execute(query)).all()]


async def weak_questions(
    conn: AsyncConnection, since: datetime, low_confidence: float
) -> list[QuestionRow]:
    """The turns to write new FAQ entries from: refused, suggested, or answered unsure.

    The text is the router's standalone rewrite when there is one ("and for annual plans?"
    means nothing alone), else the question as asked (masked when MASK_PII is on).
    """
    weak = or_(
        turns.c.outcome.in_(("refused", "suggested")),
        and_(turns.c.outcome == "answered", turns.c.confidence < low_confidence),
    )
    query = (
        select(
            func.coalesce(turns.c.standalone_question, turns.c.question).label("question"),
            turns.c.outcome,
            _category.label("category"),
            turns.c.confidence,
            turns.c.created_at,
        )
        .where(turns.c.created_at >= iso(since), _asked, weak)
        .order_by(turns.c.created_at.desc())
        .limit(MAX_QUESTION_ROWS)
    )
    return [
        QuestionRow(
            question=str(r.question),
            outcome=str(r.outcome),
            category=str(r.category),
            confidence=None if r.confidence is None else float(r.confidence),
            created_at=str(r.created_at),
        )
        for r in (await conn.execute(query)).all()
        if r.question and str(r.question).strip()
    ]


async def ratings(conn: AsyncConnection, since: datetime) -> list[RatingRow]:
    """Every thumbs up/down given to an answer of the window, with the answer's entry ids."""
    query = (
        select(feedbacks.c.value, feedbacks.c.comment, turns.c.entry_ids, _category.label("cat"))
        .select_from(feedbacks.join(turns, turns.c.id == feedbacks.c.forId))
        .where(turns.c.created_at >= iso(since))
    )
    return [
        RatingRow(value=int(r.value), entry_ids=_ids(r.entry_ids), category=str(r.cat),
                  comment=r.comment or None)
        for r in (await conn.execute(query)).all()
    ]  # fmt: skip


def _ids(raw: Any) -> tuple[str, ...]:
    """Entry ids from the stored JSON list (anything else: none)."""
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return ()
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value if isinstance(v, str))
