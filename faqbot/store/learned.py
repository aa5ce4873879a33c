"""What owners taught the bot (issue 22): phrasings attached to entries, out-of-scope marks.

The FAQ folder may be read-only and in git, so what an owner accepts from `/admin` or
`python -m faqbot learn` lives here, in `faqbot_learned`, and every replica applies it over the
files (faqbot/ops/learning.py). One live decision per question: the normalised text
(`question_key`) is unique among live rows, so the same question cannot be attached twice, to
two entries, or both attached and marked out of scope. Removing a row keeps it (who, when) and
frees its question.

`version` is a counter in `faqbot_meta` bumped in the same transaction as every change
(an atomic UPDATE, so two owners' changes on two replicas always give two versions): replicas
poll it, a one-row read, and re-read the rows only when it moved.

Evidence (`faqbot_learn_evidence`): a visitor who typed a question and then chose an entry under
"Did you mean" proposes that question as a phrasing of that entry (faqbot/analytics/learning.py
turns it into suggestions for the owner).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, Select, Text, cast, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from faqbot.knowledge.learned import (
    KINDS,
    Kind,
    LearnedPhrasing,
    PhrasingError,
    clean_phrasing,
    phrasing_key,
)
from faqbot.store.database import Database
from faqbot.store.schema import learn_evidence, learned, meta
from faqbot.store.turns import utc_iso

VERSION_KEY = "learned_version"
MAX_WHO_CHARS = 200
MAX_EVIDENCE_ROWS = 5000


class LearnError(ValueError):
    """A change the owner asked for that cannot be made; the message says why, fit to show."""


def question_key(question: str) -> str:
    """What makes two questions one (faqbot.knowledge.learned.phrasing_key: case, accents and
    punctuation aside); the bot refuses an out-of-scope question by the same key."""
    return phrasing_key(question)


@dataclass(frozen=True)
class LearnedRow:
    """One live phrasing or out-of-scope mark."""

    id: str
    kind: Kind
    entry_id: str
    text: str
    created_by: str
    created_at: str

    def phrasing(self) -> LearnedPhrasing:
        return LearnedPhrasing(
            self.entry_id, self.text, self.kind, self.id, self.created_by, self.created_at
        )


@dataclass(frozen=True)
class Choice:
    """A visitor asked `question`, then chose `entry_id` under "Did you mean"."""

    question: str
    entry_id: str
    created_at: str


def _row(r: object) -> LearnedRow:
    kind = str(r.kind)  # type: ignore[attr-defined]
    return LearnedRow(
        id=str(r.id),  # type: ignore[attr-defined]
        kind="out_of_scope" if kind == "out_of_scope" else "phrasing",
        entry_id=str(r.entry_id or ""),  # type: ignore[attr-defined]
        text=str(r.text),  # type: ignore[attr-defined]
        created_by=str(r.created_by or ""),  # type: ignore[attr-defined]
        created_at=str(r.created_at),  # type: ignore[attr-defined]
    )


def _next_value() -> Any:
    return cast(cast(meta.c.value, Integer) + 1, Text)


def _bump_version(conn: Connection) -> None:
    """+1 on the shared counter, in the caller's transaction (row-locked on PostgreSQL)."""
    bumped = conn.execute(update(meta).where(meta.c.key == VERSION_KEY).values(value=_next_value()))
    if bumped.rowcount == 0:
        insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(meta)
        conn.execute(
            insert.values(key=VERSION_KEY, value="1").on_conflict_do_update(
                index_elements=["key"],
                set_={"value": _next_value()},
            )
        )


def _clean_who(who: str) -> str:
    return " ".join(who.split())[:MAX_WHO_CHARS]


async def add(
    engine: AsyncEngine,
    question: str,
    *,
    entry_id: str = "",
    kind: Kind = "phrasing",
    created_by: str = "",
    now: datetime | None = None,
) -> LearnedRow:
    """Attach `question` to `entry_id` (kind "phrasing") or mark it out of scope.

    Raises PhrasingError (not valid FAQ text) or LearnError (a duplicate, a bad kind, no entry).
    Whether `entry_id` exists is the caller's check (the store does not know the FAQ).
    """
    if kind not in KINDS:
        raise LearnError(f"unknown kind {kind!r} (phrasing or out_of_scope)")
    cleaned = clean_phrasing(question)
    key = question_key(cleaned)
    if not key:
        raise PhrasingError("the question has no words")
    entry = entry_id.strip() if kind == "phrasing" else ""
    if kind == "phrasing" and not entry:
        raise LearnError("choose the entry to attach the question to")
    row = LearnedRow(str(uuid.uuid4()), kind, entry, cleaned, _clean_who(created_by),
                     utc_iso(now))  # fmt: skip

    def write(conn: Connection) -> None:
        conn.execute(
            learned.insert().values(
                id=row.id,
                kind=row.kind,
                entry_id=row.entry_id,
                text=row.text,
                question_key=key,
                created_by=row.created_by,
                created_at=row.created_at,
            )
        )
        _bump_version(conn)

    try:
        async with engine.begin() as conn:
            await conn.run_sync(write)
    except IntegrityError:
        existing = await _live_by_key(engine, key)
        raise LearnError(_taken(existing)) from None
    return row


def _taken(existing: LearnedRow | None) -> str:
    if existing is None:
        return "that question was just taken by another change; reload and try again"
    if existing.kind == "out_of_scope":
        return f"that question is already marked out of scope ({existing.text!r})"
    return f"that question is already attached to entry {existing.entry_id} ({existing.text!r})"


async def _live_by_key(engine: AsyncEngine, key: str) -> LearnedRow | None:
    async with engine.connect() as conn:
        r = (await conn.execute(_live().where(learned.c.question_key == key))).first()
    return _row(r) if r is not None else None


def _live() -> Select[Any]:
    return select(
        learned.c.id, learned.c.kind, learned.c.entry_id, learned.c.text,
        learned.c.created_by, learned.c.created_at,
    ).where(learned.c.removed_at.is_(None))  # fmt: skip


async def live(engine: AsyncEngine) -> list[LearnedRow]:
    """Every live phrasing and mark, oldest first."""
    async with engine.connect() as conn:
        rows = await conn.execute(_live().order_by(learned.c.created_at, learned.c.id))
        return [_row(r) for r in rows]


async def live_keys(conn: AsyncConnection) -> set[str]:
    """The normalised questions already decided (attached or out of scope)."""
    rows = await conn.execute(
        select(learned.c.question_key).where(learned.c.question_key.is_not(None))
    )
    return {str(k) for (k,) in rows}


async def remove(
    engine: AsyncEngine, row_id: str, *, removed_by: str = "", now: datetime | None = None
) -> LearnedRow:
    """Take a phrasing or mark back (the row stays, marked removed); LearnError if none live."""
    found: list[LearnedRow] = []

    def write(conn: Connection) -> None:
        r = conn.execute(_live().where(learned.c.id == row_id)).first()
        if r is None:
            return
        found.append(_row(r))
        conn.execute(
            update(learned)
            .where(learned.c.id == row_id, learned.c.removed_at.is_(None))
            .values(question_key=None, removed_at=utc_iso(now), removed_by=_clean_who(removed_by))
        )
        _bump_version(conn)

    async with engine.begin() as conn:
        await conn.run_sync(write)
    if not found:
        raise LearnError(f"no attached phrasing or mark with id {row_id!r}")
    return found[0]


async def version(engine: AsyncEngine) -> str:
    """The change counter replicas poll ("0" before the first change)."""
    async with engine.connect() as conn:
        value = (
            await conn.execute(select(meta.c.value).where(meta.c.key == VERSION_KEY))
        ).scalar_one_or_none()
    return str(value) if value is not None else "0"


async def record_choice(
    database: Database, question: str, entry_id: str, thread_id: str | None = None
) -> None:
    """Evidence: a visitor who asked `question` chose `entry_id` under "Did you mean"."""
    text_ = question.strip()
    if not text_ or not entry_id:
        return
    row = {
        "id": str(uuid.uuid4()), "created_at": utc_iso(), "kind": "chosen",
        "question": text_, "entry_id": entry_id, "thread_id": thread_id,
    }  # fmt: skip

    def write(conn: Connection) -> None:
        conn.execute(learn_evidence.insert().values(**row))

    await database.writes.run(write)


async def choices(conn: AsyncConnection, since: str) -> list[Choice]:
    """The "Did you mean" choices recorded since `since` (an ISO text), newest first."""
    rows = await conn.execute(
        select(learn_evidence.c.question, learn_evidence.c.entry_id, learn_evidence.c.created_at)
        .where(learn_evidence.c.kind == "chosen", learn_evidence.c.created_at >= since)
        .order_by(learn_evidence.c.created_at.desc())
        .limit(MAX_EVIDENCE_ROWS)
    )
    return [Choice(str(q), str(e), str(c)) for q, e, c in rows]
