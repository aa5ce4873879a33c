"""Giving the space of deleted rows back to the file system (SQLite).

A SQLite file never shrinks by itself: deleted rows leave free pages inside it, reused by later
writes but never returned (issue 20: a 50 MB feedback row kept the file at 90 MB after it was
gone). New databases are made with `auto_vacuum=INCREMENTAL` (`faqbot.store.database`), so
`PRAGMA incremental_vacuum` can hand the free pages back cheaply after a retention run: it
moves pages from the end of the file into the holes and truncates, without rewriting the file.

A database made before (auto_vacuum NONE, the SQLite default) cannot switch without a `VACUUM`,
which rewrites the whole file once: the first time it has free pages it is converted that way,
and incremental from then on. `VACUUM` needs room for a copy of the database and holds the
write lock while it runs (writers wait, up to the 30 s busy timeout); on failure (a full disk)
nothing is lost and the next round tries again.

PostgreSQL needs nothing here: autovacuum makes the space of deleted rows reusable; its files
shrink only with `VACUUM FULL`, which locks the tables (an operator's decision).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from faqbot.logs import get_logger
from faqbot.store.database import SQLITE_BUSY_TIMEOUT_S
from faqbot.store.write_health import describe

log = get_logger("faqbot.store")
INCREMENTAL = 2  # PRAGMA auto_vacuum: 0 none, 1 full, 2 incremental
CHECKPOINT_WAIT_MS = 1000


async def _pragma(conn: AsyncConnection, name: str) -> int:
    return int((await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one())


async def reclaim_space(engine: AsyncEngine) -> int:
    """Give the free pages of a SQLite database back to the file system; the bytes given back
    (0 on PostgreSQL, with nothing free, or when it failed: logged, retried next time)."""
    if engine.dialect.name != "sqlite":
        return 0
    try:
        async with engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            if not await _pragma(auto, "freelist_count"):
                return 0
            pages, page_size = await _pragma(auto, "page_count"), await _pragma(auto, "page_size")
            one_off = await _pragma(auto, "auto_vacuum") != INCREMENTAL
            # executescript steps each statement to its end: Python's sqlite3 execute() steps
            # `PRAGMA incremental_vacuum` once, which frees a single page
            script = "PRAGMA auto_vacuum=INCREMENTAL; VACUUM;" if one_off else ""
            raw: Any = await auto.get_raw_connection()
            await raw.driver_connection.executescript(script + "PRAGMA incremental_vacuum;")
            await _truncate_log(raw.driver_connection)
            freed = (pages - await _pragma(auto, "page_count")) * page_size
    except Exception as exc:  # the rows are deleted either way
        log.warning("store.space_not_reclaimed", error=describe(exc))
        return 0
    log.info(
        "store.space_reclaimed", bytes=freed, vacuum="full, once" if one_off else "incremental"
    )
    return freed


async def _truncate_log(driver: Any) -> None:
    """Copy the log into the file (which shrinks then) and empty the log. A TRUNCATE
    checkpoint holds new writers back while it waits for readers: a second at most here (busy,
    it gives up; `journal_size_limit` trims the log at a later checkpoint)."""
    await driver.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
    try:
        await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        await driver.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
