"""Databases for persistence tests: a fresh SQLite file, or a fresh schema on the real PostgreSQL.

    @pytest.fixture(params=BACKENDS)
    def backend(request, tmp_path): yield from fresh_backend(request.param, tmp_path)

`Backend.env` is what a `chainlit_server` needs to use that database; `Backend.values()` the
same for in-process code (`make_settings(**backend.values())`). PostgreSQL (127.0.0.1:5432,
database `test`, user postgres, trust auth) gets a schema of its own per test, dropped
afterwards; absent, those tests skip and say why.
"""

from __future__ import annotations

import concurrent.futures
import socket
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)]


def postgres_missing() -> str | None:
    """Why PostgreSQL tests cannot run here (None: they can)."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            pass
    except OSError as exc:
        return f"PostgreSQL not reachable on 127.0.0.1:5432 ({exc})"
    return None


def _psql(sql: str) -> str:
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-tA", "-c", sql],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return out.stdout


@dataclass
class Backend:
    kind: str
    env: dict[str, str]  # DATABASE_URL / DATABASE_SCHEMA / DATA_DIR for a server
    data_dir: Path

    def values(self) -> dict[str, Any]:
        """Settings overrides for in-process code (`make_settings(**backend.values())`)."""
        values: dict[str, Any] = {"data_dir": self.data_dir}
        if "DATABASE_URL" in self.env:
            values["database_url"] = self.env["DATABASE_URL"]
            values["database_schema"] = self.env["DATABASE_SCHEMA"]
        return values

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the database as an outsider would (sqlite3 or psql): rows as tuples."""
        if self.kind == "sqlite":
            con = sqlite3.connect(self.data_dir / "faqbot.db")
            try:
                return con.execute(sql, params).fetchall()
            finally:
                con.close()
        import asyncio

        import asyncpg

        async def run() -> list[tuple[Any, ...]]:
            con = await asyncpg.connect(
                "postgresql://postgres@127.0.0.1:5432/test",
                server_settings={"search_path": self.env["DATABASE_SCHEMA"]},
            )
            try:
                pg_sql = sql
                for i in range(len(params)):
                    pg_sql = pg_sql.replace("?", f"${i + 1}", 1)
                return [tuple(r) for r in await con.fetch(pg_sql, *params)]
            finally:
                await con.close()

        # a thread of its own: callers may be inside a running event loop
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, run()).result()


def fresh_backend(kind: str, tmp_path: Path) -> Iterator[Backend]:
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    if kind == "sqlite":
        yield Backend(kind, {"DATA_DIR": str(data_dir)}, data_dir)
        return
    reason = postgres_missing()
    if reason:
        pytest.skip(reason)
    schema = f"faqbot_test_{uuid.uuid4().hex[:12]}"
    env = {"DATABASE_URL": PG_URL, "DATABASE_SCHEMA": schema, "DATA_DIR": str(data_dir)}
    try:
        yield Backend(kind, env, data_dir)
    finally:
        _psql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
