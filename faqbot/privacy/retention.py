"""Deleting stored conversations: everything older than RETENTION_DAYS, or one user's data.

A thread goes as a whole, with its steps, elements, feedback and faqbot turn rows, in one
transaction per batch of threads (child rows first, so it works with or without foreign keys).
A thread's age is its last activity: its newest step (or, without steps, its creation), so a
conversation someone continued yesterday is kept whole. Elements stored in an external file
store (S3, Azure) are not reached here; faqbot configures none.

Retention also deletes feedback that belongs to nothing: its `forId` names no stored step and
no turn row, or its thread is gone (anyone could `PUT /feedback` on an unknown id: a 50 MB
comment stayed forever). Feedback rows carry no timestamp, so this cannot wait for an age.

Deleted rows free pages, not disk: a SQLite file never shrinks by itself. After deleting,
`reclaim_space` hands the free pages back to the file system (`faqbot.store.space`).
PostgreSQL reuses the space of deleted rows itself (autovacuum); its files shrink only with
`VACUUM FULL`, which locks the tables and is left to the operator.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Delete, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from faqbot.analytics.queries import iso
from faqbot.logs import get_logger
from faqbot.store.feedback import rating_id
from faqbot.store.schema import elements, feedbacks, learn_evidence, steps, threads, turns, users
from faqbot.store.space import reclaim_space

log = get_logger("faqbot.privacy")
BATCH = 500
RETENTION_INTERVAL_S = 3600.0  # how often the app applies RETENTION_DAYS while it runs
TABLES = (
    "threads",
    "steps",
    "elements",
    "feedbacks",
    "faqbot_turns",
    "faqbot_learn_evidence",
    "users",
)


def cutoff_for(days: int, now: datetime | None = None) -> datetime:
    """The moment before which conversations are deleted (naive UTC)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    return moment - timedelta(days=days)


async def _expired_threads(conn: AsyncConnection, cutoff: datetime) -> list[str]:
    newest_step = (
        select(func.max(steps.c.createdAt))
        .where(steps.c.threadId == threads.c.id)
        .scalar_subquery()
    )
    activity = func.coalesce(newest_step, threads.c.createdAt)
    query = select(threads.c.id).where(activity < iso(cutoff))
    return [str(row[0]) for row in (await conn.execute(query)).all()]


def _thread_deletes(ids: Sequence[str]) -> list[tuple[str, Delete]]:
    """The statements that remove `ids` and everything hanging from them, children first."""
    step_ids = select(steps.c.id).where(steps.c.threadId.in_(ids))
    return [
        ("feedbacks", delete(feedbacks).where(
            or_(feedbacks.c.threadId.in_(ids), feedbacks.c.forId.in_(step_ids)))),
        ("elements", delete(elements).where(elements.c.threadId.in_(ids))),
        ("faqbot_turns", delete(turns).where(turns.c.thread_id.in_(ids))),
        # a visitor's "Did you mean" choice (issue 22) goes with their conversation
        ("faqbot_learn_evidence",
         delete(learn_evidence).where(learn_evidence.c.thread_id.in_(ids))),
        ("steps", delete(steps).where(steps.c.threadId.in_(ids))),
        ("threads", delete(threads).where(threads.c.id.in_(ids))),
    ]  # fmt: skip


async def delete_threads(engine: AsyncEngine, ids: Sequence[str]) -> Counter[str]:
    """Delete these threads and all their rows; the rows deleted per table."""
    counts: Counter[str] = Counter()
    for start in range(0, len(ids), BATCH):
        chunk = list(ids[start : start + BATCH])
        async with engine.begin() as conn:
            for name, statement in _thread_deletes(chunk):
                counts[name] += (await conn.execute(statement)).rowcount or 0
    return counts


async def apply_retention(
    engine: AsyncEngine, days: int, now: datetime | None = None
) -> Counter[str]:
    """Delete every thread whose last activity is more than `days` days old (0: keep all).

    Also removes turn rows older than that whose thread is gone (written without one), and
    feedback that belongs to nothing; then gives the freed space back (SQLite).
    """
    if days <= 0:
        return Counter()
    cutoff = cutoff_for(days, now)
    async with engine.connect() as conn:
        expired = await _expired_threads(conn, cutoff)
    counts = await delete_threads(engine, expired)
    orphans = delete(turns).where(
        turns.c.created_at < iso(cutoff), turns.c.thread_id.not_in(select(threads.c.id))
    )
    old_choices = delete(learn_evidence).where(learn_evidence.c.created_at < iso(cutoff))
    async with engine.begin() as conn:
        counts["faqbot_turns"] += (await conn.execute(orphans)).rowcount or 0
        counts["feedbacks"] += (await conn.execute(_orphan_feedback())).rowcount or 0
        counts["faqbot_learn_evidence"] += (await conn.execute(old_choices)).rowcount or 0
    if sum(counts.values()):
        log.info("privacy.retention_applied", days=days, cutoff=iso(cutoff), **dict(counts))
    await reclaim_space(engine)
    return counts


def _orphan_feedback() -> Delete:
    """Feedback for no stored answer (no step, no turn row with its `forId`), or whose thread
    is gone: nothing would ever delete it with a thread."""
    rated_step = exists().where(steps.c.id == feedbacks.c.forId)
    rated_turn = exists().where(turns.c.id == feedbacks.c.forId)
    thread_gone = (feedbacks.c.threadId.is_not(None)) & ~exists().where(
        threads.c.id == feedbacks.c.threadId
    )
    return delete(feedbacks).where(or_(~rated_step & ~rated_turn, thread_gone))


async def delete_ratings(engine: AsyncEngine, client: str, batch: int = 5000) -> int:
    """Delete the ratings one client gave anywhere (API or anonymous conversations included,
    which carry no user column): a rating's id is derived from its answer and its client
    (faqbot.store.feedback.rating_id), so each row is checked against it."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(feedbacks.c.id, feedbacks.c.forId))).all()
    mine = [str(i) for i, for_id in rows if str(i) == rating_id(str(for_id), client)]
    deleted = 0
    for start in range(0, len(mine), batch):
        async with engine.begin() as conn:
            chunk = mine[start : start + batch]
            result = await conn.execute(delete(feedbacks).where(feedbacks.c.id.in_(chunk)))
            deleted += result.rowcount or 0
    return deleted


async def delete_user(engine: AsyncEngine, identifier: str) -> Counter[str]:
    """Delete one user's threads (with everything in them), turn rows and user record."""
    async with engine.connect() as conn:
        user_ids = [
            str(r[0])
            for r in (
                await conn.execute(select(users.c.id).where(users.c.identifier == identifier))
            )
        ]
        owned = or_(threads.c.userIdentifier == identifier, threads.c.userId.in_(user_ids))
        thread_ids = [str(r[0]) for r in (await conn.execute(select(threads.c.id).where(owned)))]
    counts = await delete_threads(engine, thread_ids)
    counts["feedbacks"] += await delete_ratings(engine, f"user:{identifier}")
    async with engine.begin() as conn:
        gone = delete(turns).where(turns.c.user_identifier == identifier)
        counts["faqbot_turns"] += (await conn.execute(gone)).rowcount or 0
        gone_user = delete(users).where(users.c.identifier == identifier)
        counts["users"] += (await conn.execute(gone_user)).rowcount or 0
    log.info("privacy.user_deleted", **dict(counts))  # never the identifier itself
    await reclaim_space(engine)  # the pages the erased rows held go back to the file system
    return counts


async def retention_loop(
    engine: AsyncEngine,
    days: int,
    interval: float = RETENTION_INTERVAL_S,
    *,
    first_delay: float = 0.0,
) -> None:
    """Apply the retention after `first_delay` seconds (the app's start-up creates the schema
    meanwhile), then every `interval` seconds, for as long as the app runs.

    A failure (database down, schema not there yet) is logged and retried at the next round.
    """
    await asyncio.sleep(first_delay)
    while True:
        try:
            await apply_retention(engine, days)
        except Exception as exc:  # keep the loop alive; the next round retries
            log.warning("privacy.retention_failed", error=f"{type(exc).__name__}: {exc}"[:300])
        await asyncio.sleep(interval)
