"""Group commit (faqbot.store.writer) on a real SQLite file and a real PostgreSQL schema.

Concurrent writes share transactions and every caller returns only after its own write has
committed; a failing write fails alone; a cancelled caller's write still lands; dispose()
commits what is queued.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from faqbot.store.database import Database
from faqbot.store.turns import Store, TurnRecord
from tests.store_support import BACKENDS, Backend, fresh_backend


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from fresh_backend(request.param, tmp_path)


@pytest.fixture
async def database(backend: Backend, make_settings: Any) -> AsyncIterator[Database]:
    db = Database.from_settings(make_settings(**backend.values()))
    await db.ensure_schema()
    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS gc_probe (k TEXT PRIMARY KEY)"))
    try:
        yield db
    finally:
        await db.dispose()


def insert(key: str) -> Any:
    def work(conn: Connection) -> str:
        conn.execute(text("INSERT INTO gc_probe (k) VALUES (:k)"), {"k": key})
        return key

    return work


async def keys(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return {r[0] for r in (await conn.execute(text("SELECT k FROM gc_probe"))).all()}


async def test_concurrent_writes_share_commits_and_each_returns_committed(
    database: Database,
) -> None:
    seen_committed: list[bool] = []

    async def write(i: int) -> None:
        assert await database.writes.run(insert(f"k{i}")) == f"k{i}"
        # readable from another connection the moment the caller gets control back
        seen_committed.append(f"k{i}" in await keys(database))

    await asyncio.gather(*(write(i) for i in range(200)))
    assert await keys(database) == {f"k{i}" for i in range(200)}
    assert seen_committed == [True] * 200
    assert database.writes.writes == 200
    assert database.writes.commits < 100  # batched: far fewer transactions than writes


async def test_a_failing_write_fails_alone(database: Database) -> None:
    await database.writes.run(insert("dup"))
    results = await asyncio.gather(
        *(database.writes.run(insert(k)) for k in ("a", "b", "dup", "c")),
        return_exceptions=True,
    )
    assert results[:2] == ["a", "b"]
    assert results[3] == "c"
    assert isinstance(results[2], Exception)  # the primary key already exists
    assert await keys(database) == {"dup", "a", "b", "c"}


async def test_a_database_failure_fails_the_batch_at_once(database: Database) -> None:
    """Down or timing out, the database fails every write of the batch together: re-running
    them one by one would wait out the same fault once per write."""
    calls: list[str] = []

    def write(key: str, fail: bool = False) -> Any:
        def work(conn: Connection) -> str:
            calls.append(key)
            if fail:
                raise OperationalError("INSERT ...", {}, ConnectionError("server closed"))
            return key

        return work

    results = await asyncio.gather(
        *(database.writes.run(write(k, fail=k == "b")) for k in ("a", "b", "c")),
        return_exceptions=True,
    )
    assert all(isinstance(r, OperationalError) for r in results)
    assert calls == ["a", "b"]  # no write re-run one by one
    assert await database.writes.run(write("d")) == "d"  # the writer goes on


async def test_a_cancelled_caller_does_not_cancel_its_write(database: Database) -> None:
    def slow(conn: Connection) -> None:
        time.sleep(0.2)
        insert("late")(conn)

    caller = asyncio.create_task(database.writes.run(slow))
    await asyncio.sleep(0.05)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await database.writes.flush()
    assert "late" in await keys(database)


async def test_dispose_commits_the_queued_writes(backend: Backend, make_settings: Any) -> None:
    db = Database.from_settings(make_settings(**backend.values()))
    await db.ensure_schema()
    store = Store(db)
    records = [
        TurnRecord(id=f"a{i}", thread_id=f"t{i}", face="api", question=f"q{i}", answer="a",
                   outcome="answered")
        for i in range(20)
    ]  # fmt: skip
    pending = [asyncio.create_task(store.record_api_turn(r, "route", "faqbot")) for r in records]
    await asyncio.sleep(0)  # queued, not yet committed
    await db.dispose()
    await asyncio.gather(*pending)
    rows = backend.query("SELECT COUNT(*) FROM faqbot_turns")
    assert rows[0][0] == 20
