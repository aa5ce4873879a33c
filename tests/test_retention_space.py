"""Retention removes feedback that belongs to nothing, and the SQLite file shrinks (issue 20, 12).

Found: a 50 MB comment sent with `PUT /feedback` on an unknown answer id survived every
retention run (it belongs to no thread, and retention deleted by thread), and the database
file never shrank after retention deleted rows (SQLite keeps freed pages). Here, on a real
SQLite file and on the real PostgreSQL (127.0.0.1:5432, skipped when absent):

- orphan feedback goes (its `forId` names no stored answer), feedback on stored answers stays;
- the file shrinks by the big row's size after retention, on a database made by this faqbot
  (auto_vacuum=INCREMENTAL) and on one made before (auto_vacuum NONE: converted once);
- on PostgreSQL the rows go and nothing else is attempted (autovacuum's job).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from faqbot.privacy.retention import apply_retention, delete_user
from faqbot.store.database import Database
from faqbot.store.space import reclaim_space
from tests.analytics_support import SEED_NOW, Conversation, T, open_backend, seed

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)]
BIG = 50 * 1024 * 1024  # the comment
DAY = timedelta(days=1)


@pytest.fixture(params=BACKENDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    made, cleanup = await open_backend(request.param, tmp_path)
    try:
        yield made
    finally:
        await cleanup()


async def _add_feedback(
    engine: AsyncEngine, for_id: str, thread_id: str | None, comment: str = "x"
) -> str:
    feedback_id = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            text(
                'INSERT INTO feedbacks (id, "forId", "threadId", value, comment) '
                "VALUES (:id, :f, :t, 0, :c)"
            ),
            {"id": feedback_id, "f": for_id, "t": thread_id, "c": comment},
        )
    return feedback_id


async def _feedback_ids(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return {str(r[0]) for r in await conn.execute(text("SELECT id FROM feedbacks"))}


def _file_bytes(path: Path) -> int:
    """The database as it sits on disk: the file and its write-ahead log."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


async def test_feedback_that_belongs_to_nothing_is_removed(engine: AsyncEngine) -> None:
    fresh = Conversation(None, [T("Recent question?", thumbs=(1, None), ago=DAY)])
    await seed(engine, [fresh])
    answer = fresh.answer_ids[0]
    kept_on_answer = await _add_feedback(engine, answer, None)  # a stored answer, no thread id
    orphan = await _add_feedback(engine, str(uuid.uuid4()), None, "y" * (BIG // 10))
    not_an_id = await _add_feedback(engine, "not-a-step", None)
    before = await _feedback_ids(engine)
    counts = await apply_retention(engine, 30, now=SEED_NOW)
    after = await _feedback_ids(engine)
    assert after == before - {orphan, not_an_id}
    assert kept_on_answer in after
    assert counts["feedbacks"] == 2
    assert counts["threads"] == 0  # nothing else was old enough
    assert sum((await apply_retention(engine, 30, now=SEED_NOW)).values()) == 0  # idempotent
    assert await reclaim_space(engine) == 0  # SQLite: given back already; PostgreSQL: never


async def test_feedback_of_an_expired_thread_goes_with_it(engine: AsyncEngine) -> None:
    old = Conversation(None, [T("Old question?", ago=40 * DAY)])
    await seed(engine, [old])
    rated = await _add_feedback(engine, old.answer_ids[0], None)  # no thread id on the row
    await apply_retention(engine, 30, now=SEED_NOW)
    assert rated not in await _feedback_ids(engine)


async def _big_orphan_then_retention(db: Database, path: Path) -> tuple[int, int, int]:
    """The issue's case: a 50 MB comment on an unknown answer; sizes before, after, freed."""
    await seed(db.engine, [Conversation(None, [T("Recent question?", ago=DAY)])])
    await _add_feedback(db.engine, str(uuid.uuid4()), None, "z" * BIG)
    async with db.engine.connect() as conn:  # as it sits once the log is checkpointed
        await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    before = _file_bytes(path)
    counts = await apply_retention(db.engine, 30, now=SEED_NOW)
    assert counts["feedbacks"] == 1
    return before, _file_bytes(path), await reclaim_space(db.engine)


async def test_the_sqlite_file_shrinks_after_retention(tmp_path: Path) -> None:
    path = tmp_path / "faqbot.db"
    db = Database(make_url(f"sqlite+aiosqlite:///{path}"))
    await db.ensure_schema()
    try:
        before, after, again = await _big_orphan_then_retention(db, path)
    finally:
        await db.dispose()
    assert before > BIG
    assert after < 1024 * 1024, f"{before} -> {after} bytes"
    assert again == 0  # nothing left to give back


async def test_a_database_made_before_incremental_vacuum_shrinks_too(tmp_path: Path) -> None:
    path = tmp_path / "faqbot.db"
    con = sqlite3.connect(path)  # an older faqbot's file: SQLite's default auto_vacuum NONE
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE faqbot_meta (key TEXT PRIMARY KEY, value TEXT)")
    con.close()
    db = Database(make_url(f"sqlite+aiosqlite:///{path}"))
    await db.ensure_schema()
    try:
        assert _auto_vacuum(path) == 0
        before, after, _ = await _big_orphan_then_retention(db, path)
    finally:
        await db.dispose()
    assert after < 1024 * 1024, f"{before} -> {after} bytes"
    assert _auto_vacuum(path) == 2  # converted once: incremental from now on


def _auto_vacuum(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("PRAGMA auto_vacuum").fetchone()[0])
    finally:
        con.close()


async def test_deleting_a_user_gives_the_space_back(tmp_path: Path) -> None:
    path = tmp_path / "faqbot.db"
    db = Database(make_url(f"sqlite+aiosqlite:///{path}"))
    await db.ensure_schema()
    try:
        long_question = "Could you tell me about " + "refunds " * (2 * 1024 * 1024)
        await seed(db.engine, [Conversation("erin", [T(long_question, ago=DAY)])])
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        before = _file_bytes(path)
        await delete_user(db.engine, "erin")
        after = _file_bytes(path)
    finally:
        await db.dispose()
    assert before > 16 * 1024 * 1024
    assert after < 1024 * 1024, f"{before} -> {after} bytes"
