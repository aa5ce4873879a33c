"""Chainlit's SQLAlchemy data layer on faqbot's database: the one faqbot module importing Chainlit.

Imported only by the Chainlit adapter (`chainlit_app.py`, `faqbot_chainlit/`; the rule "the
core never imports chainlit" holds for every other module; tests/test_store_schema.py and the
import-linter contract in pyproject.toml check it). What it changes in Chainlit 2.12's
`SQLAlchemyDataLayer` (chainlit/data/sql_alchemy.py), and why:

- It shares faqbot's engine (`faqbot.store.database`: SQLite in WAL mode with a busy timeout,
  or PostgreSQL with its schema) instead of building a bare one from the URL.
- `execute_sql`: the original logs a failed statement as a warning and returns None, so a
  missing column or a locked database silently dropped rows. Here a lock is retried, and every
  failure is counted (`failures`, shown in /api/health) and logged as an error. Writes go
  through the database's group commit (`faqbot.store.writer`), reads straight to a connection.
- Lists and dicts in parameters (thread/step `tags`, a message's `modes`) are stored as JSON
  text: SQLite cannot bind a list at all, and the columns are TEXT on both backends.
- Threads read back decode their JSON text (metadata, tags, generation) into objects, as the
  UI and `on_chat_resume` expect, and a NULL step output reads as "" (the sidebar's search
  calls `.lower()` on it).
- Before every step it writes, Chainlit SELECTs the thread to make sure it exists; threads this
  process wrote in the last 10 minutes are taken as existing (half of a turn's statements).
- Chainlit persists in fire-and-forget tasks; `drain(thread_id)` waits for a thread's pending
  writes, so the app can report a turn finished only once it is on disk.
- `get_all_user_threads` (the history sidebar, `get_thread`, `/project/share`): Chainlit 2.12
  pastes the listed thread ids into `WHERE s."threadId" IN ('id1','id2')` (an SQL injection
  through a client-chosen thread id; issue 20). Here those literal lists are replaced by bound
  parameters before the statement runs, and a statement whose list cannot be matched is not run.
  Ids are also validated where they enter (faqbot/web/front_door.py, faqbot/web/socket_gate.py);
  drop this override once Chainlit binds the ids itself (checked on 2.12.0).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any, cast

from cachetools import LRUCache, TTLCache
from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from chainlit.logger import logger as chainlit_logger
from chainlit.types import ThreadDict
from sqlalchemy import Connection, TextClause, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from faqbot.logs import get_logger
from faqbot.store.chainlit_feedback import FeedbackRules
from faqbot.store.database import Database

log = get_logger("faqbot.store")
LOCK_RETRIES = 3
DRAIN_TIMEOUT_S = 10.0
KNOWN_THREADS, KNOWN_THREADS_TTL_S = 10_000, 600.0
STATEMENT_SHAPES = 256
_JSON_FIELDS = ("metadata", "tags", "generation")


class _Listing:
    """The thread ids one get_all_user_threads call read first (None until it has)."""

    ids: list[str] | None = None


_LISTING: contextvars.ContextVar[_Listing | None] = contextvars.ContextVar("faqbot_listing")


def bind_listed_ids(query: str, ids: Sequence[str]) -> tuple[str, dict[str, str]] | None:
    """`query` with Chainlit's pasted `('id1','id2')` list of `ids` replaced by bound parameters,
    and those parameters; None when the query holds no such list (Chainlit changed: not run).

    The literal is rebuilt exactly as Chainlit builds it from the same ids, so the replacement
    is exact whatever characters an id holds; no id text is left in the statement."""
    literal = "('" + "','".join(map(str, ids)) + "')"
    if literal not in query:
        return None
    names = {f"listed_{i}": str(value) for i, value in enumerate(ids)}
    return query.replace(literal, "(" + ", ".join(f":{n}" for n in names) + ")"), names


def _bindable(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list | tuple) else value


def _decoded(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class FaqbotDataLayer(FeedbackRules, SQLAlchemyDataLayer):
    """SQLAlchemyDataLayer over faqbot's Database (see the module docstring)."""

    def __init__(self, database: Database, user_thread_limit: int = 200) -> None:
        level = chainlit_logger.level
        chainlit_logger.setLevel(logging.ERROR)  # "elements will not be persisted": none are sent
        try:
            super().__init__(
                conninfo=database.url.render_as_string(hide_password=False),
                user_thread_limit=user_thread_limit,
            )
        finally:
            chainlit_logger.setLevel(level)
        self.engine = database.engine  # the unused engine the parent built never connected
        self.async_session = async_sessionmaker(
            bind=database.engine, expire_on_commit=False, class_=AsyncSession
        )
        self.database = database
        self.failures = 0
        self.last_error: str | None = None
        self._pending: dict[str, set[asyncio.Task[Any]]] = {}
        # Threads written lately (a thread deleted meanwhile, e.g. by retention, makes the
        # next step's write fail on its foreign key: counted, logged, never silent)
        self._known_threads: TTLCache[str, bool] = TTLCache(KNOWN_THREADS, KNOWN_THREADS_TTL_S)
        # Chainlit's statements come in a few shapes; parsing one into a TextClause (a regex
        # over its bind parameters) was 5% of the server's samples under load (py-spy)
        self._statements: LRUCache[str, TextClause] = LRUCache(STATEMENT_SHAPES)

    async def execute_sql(self, query: str, parameters: dict[str, Any]) -> Any:
        listing = _LISTING.get(None)
        if listing is not None:  # inside get_all_user_threads
            if listing.ids is None:  # its first statement: the threads, ids bound
                rows = await self._execute(query, parameters)
                listing.ids = (
                    [str(r["thread_id"]) for r in rows or ()] if isinstance(rows, list) else []
                )
                return rows
            bound = bind_listed_ids(query, listing.ids)
            if bound is None:
                self._failed(query, ValueError("unbound id list: statement not run"))
                return None
            query, parameters = bound[0], {**parameters, **bound[1]}
        return await self._execute(query, parameters)

    async def _execute(self, query: str, parameters: dict[str, Any]) -> Any:
        params = {key: _bindable(value) for key, value in parameters.items()}
        statement = self._statements.get(query)
        if statement is None:
            statement = self._statements[query] = text(query)
        reads = query.lstrip()[:6].upper() == "SELECT"

        def run(conn: Connection) -> Any:
            result = conn.execute(statement, params)
            if result.returns_rows:
                rows = [dict(row._mapping) for row in result.fetchall()]
                return self.clean_result(rows)  # type: ignore[no-untyped-call]
            return result.rowcount

        for attempt in range(LOCK_RETRIES):
            try:
                if reads:  # WAL readers never wait for the writer
                    async with self.database.engine.connect() as conn:
                        return await conn.run_sync(run)
                # writes share the app's group-committed transactions (faqbot.store.writer)
                return await self.database.writes.run(run)
            except OperationalError as exc:  # another process holds SQLite's write lock
                if "locked" in str(exc).lower() and attempt + 1 < LOCK_RETRIES:
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                self._failed(query, exc)
                return None
            except Exception as exc:
                self._failed(query, exc)
                return None
        return None  # pragma: no cover - the loop always returns

    def failure_count(self) -> tuple[int, str | None]:
        """Failed statements so far and the last error (for health)."""
        return self.failures, self.last_error

    def _failed(self, query: str, exc: Exception) -> None:
        self.failures += 1
        statement = " ".join(query.split())[:80]  # never the parameters: user text
        self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        log.error("store.write_failed", statement=statement, error=self.last_error)

    @contextlib.contextmanager
    def _tracked(self, thread_id: str | None) -> Iterator[None]:
        task = asyncio.current_task()
        if not thread_id or task is None:
            yield
            return
        pending = self._pending.setdefault(thread_id, set())
        pending.add(task)
        try:
            yield
        finally:
            pending.discard(task)
            if not pending:
                self._pending.pop(thread_id, None)

    async def create_step(self, step_dict: dict[str, Any]) -> None:
        with self._tracked(step_dict.get("threadId")):
            await super().create_step(step_dict)

    async def update_step(self, step_dict: dict[str, Any]) -> None:
        with self._tracked(step_dict.get("threadId")):
            await super().update_step(step_dict)

    async def update_thread(self, thread_id: str, *args: Any, **kwargs: Any) -> None:
        """Chainlit calls this before every step it writes, only to make sure the thread
        exists (a SELECT each time: half of a turn's statements); a thread this process has
        written recently is known to exist."""
        only_ensure = not args and all(v is None for v in kwargs.values())
        if only_ensure and thread_id in self._known_threads:
            return
        failures = self.failures
        with self._tracked(thread_id):
            await super().update_thread(thread_id, *args, **kwargs)
        if self.failures == failures:
            self._known_threads[thread_id] = True

    async def drain(self, thread_id: str, wait_s: float = DRAIN_TIMEOUT_S) -> bool:
        """Wait for the thread's writes already started (True: none left pending)."""
        await asyncio.sleep(0)  # writes scheduled just before this call start and register
        me = asyncio.current_task()
        pending = {t for t in self._pending.get(thread_id, ()) if t is not me and not t.done()}
        if not pending:
            return True
        _, still = await asyncio.wait(pending, timeout=wait_s)
        if still:
            log.warning("store.drain_timeout", pending=len(still))
        return not still

    async def get_all_user_threads(
        self, user_id: str | None = None, thread_id: str | None = None
    ) -> list[ThreadDict] | None:
        token = _LISTING.set(_Listing())
        try:
            found = await super().get_all_user_threads(user_id=user_id, thread_id=thread_id)
        finally:
            _LISTING.reset(token)
        for thread in found or []:
            fields = cast(dict[str, Any], thread)
            for key in _JSON_FIELDS:
                if key in fields:
                    fields[key] = _decoded(fields[key])
            for step in thread.get("steps", []):
                values = cast(dict[str, Any], step)
                for key in _JSON_FIELDS:
                    values[key] = _decoded(values.get(key))
                values["metadata"] = values.get("metadata") or {}
                values["output"] = values.get("output") or ""
        return found

    async def thread_author(self, thread_id: str) -> tuple[bool, str | None]:
        """(whether the thread is stored, its signed-in author or None): who may resume it.

        An unreadable database answers (True, None): a thread that may exist is never given
        to a client that cannot show it is theirs."""
        rows = await self._execute(
            'SELECT "userIdentifier" FROM threads WHERE "id" = :id', {"id": thread_id}
        )
        if not isinstance(rows, list):
            return True, None
        if not rows:
            return False, None
        author = rows[0].get("userIdentifier")
        return True, str(author) if author is not None else None

    async def get_thread_author(self, thread_id: str) -> str:
        """The thread's signed-in author, "" when none: Chainlit 2.12's raises ValueError
        for an unknown or anonymous thread, which its routes turn into a 500 instead of
        their own 404 ("Thread not found")."""
        _, author = await self.thread_author(thread_id)
        return author or ""
