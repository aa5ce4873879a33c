"""The database: its URL from settings, one async engine, and the schema made and upgraded here.

SQLite (the default, a file in DATA_DIR) runs in WAL mode: readers never block the writer, a
commit is one append to the log, and a process killed at any point (kill -9 mid-answer) leaves a
database the next start opens cleanly with every committed turn (synchronous=NORMAL: durable
against a crashed process; a power cut may lose the last commits, never the file). Writers wait
for each other up to 30 s (busy timeout) instead of failing with "database is locked".

The schema is created and upgraded idempotently at every start: CREATE TABLE IF NOT EXISTS for
each table, then ALTER TABLE ADD COLUMN for each column a table lacks (an older faqbot's or one
made by hand from Chainlit's docs), inside one transaction that PostgreSQL replicas starting
together take turns on (an advisory lock).

Whether the database takes writes now (a full disk, a read-only file system, a refusing
server) is judged by the writes themselves (`write_problem`, for health and readiness).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.schema import CreateIndex, CreateTable

from faqbot.config import Settings
from faqbot.errors import ConfigError
from faqbot.logs import get_logger
from faqbot.store.migrations import remap_run_ratings
from faqbot.store.schema import SCHEMA_VERSION, meta, metadata
from faqbot.store.writer import GroupCommit

log = get_logger("faqbot.store")
DB_FILE = "faqbot.db"
SQLITE_BUSY_TIMEOUT_S = 30.0
WAL_SIZE_LIMIT = 16 * 1024 * 1024  # bytes of write-ahead log kept after a checkpoint
CHECK_TIMEOUT_S = 2.0
_LOCK_ID = 0x46415142  # "FAQB": the advisory lock schema upgrades take on PostgreSQL
_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


def database_url(settings: Settings) -> URL:
    """DATABASE_URL with its async driver, or the default SQLite file in DATA_DIR."""
    if settings.database_url is None:
        path = (Path(settings.data_dir) / DB_FILE).resolve()
        return make_url(f"sqlite+aiosqlite:///{path}")
    raw = settings.database_url.get_secret_value().strip()
    try:
        url = make_url(raw)
    except Exception:
        raise ConfigError("DATABASE_URL: not a database URL") from None
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise ConfigError(
            f"DATABASE_URL: unsupported database {url.drivername!r} "
            "(use postgresql+asyncpg://... or sqlite+aiosqlite:///path)"
        )
    return url.set(drivername=driver)


def redacted(url: URL) -> str:
    """The URL for logs: never the password."""
    return url.render_as_string(hide_password=True)


class Database:
    """One engine for the app's writes and reads; `ensure_schema()` before first use."""

    def __init__(self, url: URL, *, schema: str | None = None) -> None:
        self.url = url
        self.schema = schema if self.dialect == "postgresql" else None
        self.engine: AsyncEngine = create_async_engine(url, **self._engine_options())
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        # every app write goes through it; on a SQLite file, on a synchronous engine of its own
        self.writes = GroupCommit(self.engine, self._sync_writer_engine())

    def _sync_writer_engine(self) -> Engine | None:
        """A synchronous engine on the same SQLite file for the group-commit writer."""
        if self.dialect != "sqlite" or not self.url.database or self.url.database == ":memory:":
            return None
        engine = create_engine(
            self.url.set(drivername="sqlite"),
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
            pool_size=1,
            max_overflow=0,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(database_url(settings), schema=settings.database_schema)

    @property
    def dialect(self) -> str:
        return "postgresql" if self.url.drivername.startswith("postgresql") else "sqlite"

    def _engine_options(self) -> dict[str, Any]:
        if self.dialect == "sqlite":
            if self.url.database and self.url.database != ":memory:":
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
        options: dict[str, Any] = {"pool_pre_ping": True}
        if self.schema:
            options["connect_args"] = {"server_settings": {"search_path": self.schema}}
        return options

    def describe(self) -> dict[str, Any]:
        """For health and logs (no password)."""
        where = self.url.database if self.dialect == "sqlite" else redacted(self.url)
        return {"backend": self.dialect, "database": where, "schema": self.schema}

    async def ensure_schema(self) -> None:
        """Create missing tables, indexes and columns; record the schema version."""
        async with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
                if self.schema:
                    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            added = await conn.run_sync(_upgrade)
            moved = await conn.run_sync(remap_run_ratings)  # faqbot.store.migrations
            await conn.execute(meta.delete().where(meta.c.key == "schema_version"))
            await conn.execute(
                meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION))
            )
        if added:
            log.info("store.schema_upgraded", added=added)
        if moved:
            log.info("store.ratings_moved_to_answers", ratings=moved)

    async def check(self) -> str | None:
        """For readiness: why the database cannot be used now, or None."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return f"database unreachable: {type(exc).__name__}"
        return None

    async def write_problem(self) -> str | None:
        """For readiness and health: why writes fail now, or None (`faqbot.store.write_health`).

        Judged by the app's own writes; when they cannot tell (none yet, none for a minute,
        or failing: an idle replica that a load balancer drained must see the disk has room
        again) a probe row is written first, at most once per check."""
        health = self.writes.health
        if health.wants_probe():
            health.probing()
            with contextlib.suppress(Exception):  # counted by the writer: health.problem()
                async with asyncio.timeout(CHECK_TIMEOUT_S):
                    await self._probe()
        return health.problem()

    async def _probe(self) -> None:
        if self.writes.health.failing:  # the schema may never have been made (full at start)
            try:
                await self.ensure_schema()
            except Exception as exc:
                self.writes.health.failed_with(exc)
                return
        await self.writes.run(_probe)

    async def dispose(self) -> None:
        """Commit the writes still queued, then close the connections."""
        await self.writes.close()
        if self.writes.sync_engine is not None:
            self.writes.sync_engine.dispose()
        await self.engine.dispose()


def _probe(conn: Connection) -> None:
    """A small write through the app's writer: does the database take writes now?"""
    conn.execute(meta.delete().where(meta.c.key == "write_probe"))
    conn.execute(
        meta.insert().values(
            key="write_probe", value=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        )
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # before WAL and before any table: only a new database takes it (an old one is converted
    # once, by faqbot.store.space); lets deleted rows' pages go back to the file system
    cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
    cursor.execute("PRAGMA journal_mode=WAL")
    # a big transaction (a 50 MB comment) grew the log for good: trimmed at the next reset
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.close()


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _upgrade(conn: Connection) -> list[str]:
    """CREATE TABLE IF NOT EXISTS, ADD COLUMN for every column a table lacks, then indexes."""
    for table in metadata.sorted_tables:
        conn.execute(CreateTable(table, if_not_exists=True))
    inspector = inspect(conn)
    preparer = conn.dialect.identifier_preparer
    added: list[str] = []
    for table in metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            assert _IDENTIFIER.match(column.name)
            kind = column.type.compile(dialect=conn.dialect)
            # Added columns are nullable: the table may hold rows already.
            conn.execute(
                text(
                    f"ALTER TABLE {preparer.quote(table.name)} "
                    f"ADD COLUMN {preparer.quote(column.name)} {kind}"
                )
            )
            added.append(f"{table.name}.{column.name}")
    for table in metadata.sorted_tables:  # last: an index may be on an added column
        for index in table.indexes:
            conn.execute(CreateIndex(index, if_not_exists=True))
    return added
