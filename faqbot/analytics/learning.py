"""What owners could teach the bot (issue 22): visitors' questions, grouped, with a proposal.

Three sources, over the report window:
- "Did you mean" choices (faqbot.store.learned evidence): the visitor's own question and the
  entry they chose; proposed: attach the question to that entry (the most chosen one).
- refused, "did you mean" and low-confidence questions (`queries.weak_questions`, as the
  owners' report lists them): no proposal unless a visitor chose an entry for the same words.
- thumbs down with a comment (the rated turn's question and the comment): the answer given was
  not the right one, so it is not proposed.
Questions with the same words (faqbot.knowledge.learned.phrasing_key) are one suggestion;
questions already attached or marked out of scope, and those that are an entry's own question
or phrasing already (`known`), are left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from faqbot.analytics import queries
from faqbot.analytics.report import LOW_CONFIDENCE, parse_since
from faqbot.knowledge.learned import phrasing_key
from faqbot.store import learned as learned_store
from faqbot.store.schema import feedbacks, turns

MAX_SUGGESTIONS = 100
MAX_COMMENTS = 3


@dataclass
class Suggestion:
    """One question (and its repeats) an owner may attach to an entry or mark out of scope."""

    question: str  # as a visitor last typed it
    key: str
    count: int = 0
    last_asked: str = ""
    why: Counter[str] = field(default_factory=Counter)  # chosen | refused | suggested | ...
    chosen: Counter[str] = field(default_factory=Counter)  # entry id -> times chosen
    comments: list[str] = field(default_factory=list)

    @property
    def proposed_entry(self) -> str | None:
        """The entry visitors chose for these words most often, if any did."""
        return self.chosen.most_common(1)[0][0] if self.chosen else None

    def add(self, question: str, why: str, at: str) -> None:
        self.count += 1
        self.why[why] += 1
        if at >= self.last_asked:
            self.last_asked, self.question = at, question


@dataclass(frozen=True)
class Rejected:
    """A thumbs down with a comment on the answer to `question`."""

    question: str
    comment: str
    created_at: str


async def thumbs_down(conn: AsyncConnection, since: datetime) -> list[Rejected]:
    """Thumbs down with a comment on answers of the window, with the question asked."""
    query = (
        select(
            func.coalesce(turns.c.standalone_question, turns.c.question).label("question"),
            feedbacks.c.comment,
            turns.c.created_at,
        )
        .select_from(feedbacks.join(turns, turns.c.id == feedbacks.c.forId))
        .where(
            and_(
                turns.c.created_at >= queries.iso(since),
                feedbacks.c.value == 0,
                feedbacks.c.comment.is_not(None),
                feedbacks.c.comment != "",
            )
        )
        .order_by(turns.c.created_at.desc())
        .limit(queries.MAX_QUESTION_ROWS)
    )
    return [
        Rejected(str(q), str(c), str(at)) for q, c, at in (await conn.execute(query)).all() if q
    ]


async def suggestions(
    engine: AsyncEngine,
    period: str = "30d",
    *,
    known: Collection[str] = (),
    low_confidence: float = LOW_CONFIDENCE,
    now: datetime | None = None,
    limit: int = MAX_SUGGESTIONS,
) -> list[Suggestion]:
    """The suggestion list, most asked first (then most recent); `known` = phrasing keys the
    FAQ already has (its entries' questions and phrasings)."""
    until = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    since = until - parse_since(period)
    async with engine.connect() as conn:
        chosen = await learned_store.choices(conn, queries.iso(since))
        weak = await queries.weak_questions(conn, since, low_confidence)
        rejected = await thumbs_down(conn, since)
        decided = await learned_store.live_keys(conn)
    by_key: dict[str, Suggestion] = {}

    def entry(question: str) -> Suggestion | None:
        key = phrasing_key(question)
        if not key or key in decided or key in known:
            return None
        return by_key.setdefault(key, Suggestion(question, key))

    for c in chosen:
        if (s := entry(c.question)) is not None:
            s.add(c.question, "chosen", c.created_at)
            s.chosen[c.entry_id] += 1
    for w in weak:
        if (s := entry(w.question)) is not None:
            why = "low confidence" if w.outcome == "answered" else w.outcome
            s.add(w.question, why, w.created_at)
    for r in rejected:
        if (s := entry(r.question)) is not None:
            s.add(r.question, "thumbs down", r.created_at)
            if len(s.comments) < MAX_COMMENTS:
                s.comments.append(r.comment)
    ranked = sorted(by_key.values(), key=lambda s: s.last_asked, reverse=True)
    ranked.sort(key=lambda s: (s.proposed_entry is None, -s.count))  # stable: recency
    return ranked[:limit]
