"""Group commit: the process's writes run one after another on one connection, many per commit.

Why: every chat turn writes 4-6 rows (Chainlit's steps, faqbot's turn row). Run as separate
transactions from a pool of connections, concurrent turns fought for SQLite's single write lock
(a waiting writer sleeps in SQLite's busy handler, in steps of up to 100 ms) and each paid its
own BEGIN/COMMIT round trips through the driver's thread: under load the database capped the
whole app (bench/RESULTS.md "Load": 28 answers/s with persistence against 70 without).

Here one task per event loop takes the writes in arrival order; whatever queued while the
previous commit ran goes into the next transaction (classic group commit: no added wait when
idle, bigger batches under load). A write is a plain function of a synchronous connection, so
on SQLite a whole batch runs in one worker-thread hop on a connection of its own: through the
async driver every statement was a round trip between its thread and the event loop, and under
load each waited for a busy loop's turn (a 10-statement chat turn took ~1 s to commit near
capacity). On PostgreSQL the batch runs with `run_sync` on the async engine (asyncpg has no
thread). Every caller still returns only once its own write has committed, so "on disk before
the turn is reported finished" holds. A write that fails on its own rows (a constraint,
bad data) does not take its batch down with it: the batch is rolled back and its writes re-run
one transaction each, so only the bad one fails (writes must not commit themselves); when the
database itself fails (down, timing out) every write of the batch gets that error at once. A
caller that is cancelled (a client gone mid-turn) does not cancel its write. Reads do not come
here (WAL readers never wait for the writer). Every outcome is reported to `health`
(`faqbot.store.write_health`): failing writes make the app's health "degraded".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from faqbot.logs import get_logger
from faqbot.store.write_health import WriteHealth

log = get_logger("faqbot.store")
T = TypeVar("T")
Work = Callable[[Connection], T]
MAX_BATCH = 64
# errors caused by one write's own rows: the rest of its batch is worth re-running
_ONE_WRITES_FAULT = (IntegrityError, DataError, ProgrammingError)


@dataclass
class _Job:
    work: Work[Any]
    done: asyncio.Future[Any]


class GroupCommit:
    """Runs `await writer.run(work)` calls in shared transactions (see the module docstring)."""

    def __init__(
        self, engine: AsyncEngine, sync_engine: Engine | None = None, max_batch: int = MAX_BATCH
    ) -> None:
        """`sync_engine` (SQLite): batches run on it in a worker thread; else via `engine`."""
        self.engine = engine
        self.sync_engine = sync_engine
        self.max_batch = max_batch
        self.commits = 0
        self.writes = 0
        self.health = WriteHealth()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def run(self, work: Work[T]) -> T:
        """Run `work(conn)` (synchronous) inside a transaction; return its result once it has
        committed."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            if self._loop is not loop:
                self._queue = asyncio.Queue()
                self._loop = loop
            self._task = loop.create_task(self._drain(), name="faqbot-group-commit")
        job = _Job(work, loop.create_future())
        # a cancelled caller no longer awaits it: retrieve a failure so it is not reported as
        # "never retrieved" (the writer has logged what matters)
        job.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._queue.put_nowait(job)
        return await asyncio.shield(job.done)

    async def flush(self) -> None:
        """Wait until every write queued so far has committed (or failed)."""
        if self._loop is asyncio.get_running_loop():
            await self._queue.join()

    async def close(self) -> None:
        """Flush, then stop the writer task."""
        if self._task is None or self._loop is not asyncio.get_running_loop():
            return
        await self.flush()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _drain(self) -> None:
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    queue.task_done()

    async def _commit(self, batch: list[_Job]) -> None:
        try:
            if self.sync_engine is not None:
                results = await asyncio.to_thread(_run_batch, self.sync_engine, batch)
            else:
                async with self.engine.begin() as conn:
                    results = await conn.run_sync(lambda c: [job.work(c) for job in batch])
        except asyncio.CancelledError:
            for job in batch:
                _settle(job, exc=RuntimeError("the database writer stopped"))
            raise
        except Exception as exc:
            if len(batch) == 1 or not isinstance(exc, _ONE_WRITES_FAULT):
                # the database itself failed (down, timed out): every write of the batch gets
                # the error at once; re-running them one by one would wait that long again each
                self._failed(batch, exc)
                return
            log.warning("store.batch_retried_singly", writes=len(batch), error=type(exc).__name__)
            for job in batch:  # isolate the failing write: the others still commit
                await self._commit([job])
            return
        self.commits += 1
        self.writes += len(batch)
        if self.health.failing:
            log.info("store.writes_recovered", failed=self.health.failing)
        self.health.succeeded(len(batch))
        for job, result in zip(batch, results, strict=True):
            _settle(job, result=result)

    def _failed(self, batch: list[_Job], exc: Exception) -> None:
        was_failing = self.health.failing
        self.health.failed_with(exc, len(batch))
        if self.health.failing and not was_failing:  # once per outage: each write logs its own
            log.error("store.writes_failing", error=self.health.last_error)
        for job in batch:
            _settle(job, exc=exc)


def _run_batch(engine: Engine, batch: list[_Job]) -> list[Any]:
    with engine.begin() as conn:
        return [job.work(conn) for job in batch]


def _settle(job: _Job, *, result: Any = None, exc: BaseException | None = None) -> None:
    if job.done.done():
        return
    if exc is not None:
        job.done.set_exception(exc)
    else:
        job.done.set_result(result)
