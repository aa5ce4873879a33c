"""Every replica serves what owners taught it, within seconds, without a restart (issue 22).

Each process polls `faqbot.store.learned.version` (a one-row read) every LEARNED_POLL_SECONDS;
when it moved, it reads the live phrasings and marks and hands them to the `BotHolder`, which
serves the last good FAQ files with them applied (faqbot/ops/reload.py: a file reload keeps
them). The database is the only thing replicas share for this: no Redis needed, and a replica
that was down reads the current state at its first poll. The process that made a change
`nudge`s its own poller, so the owner's replica answers with it at once.

A failing read (the database down) keeps what is served, logs once per outage and retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref

from sqlalchemy.ext.asyncio import AsyncEngine

from faqbot.logs import get_logger
from faqbot.ops.reload import BotHolder
from faqbot.store import learned as store

log = get_logger("faqbot.learning")
_RUNNING: weakref.WeakSet[LearnedSync] = weakref.WeakSet()


def nudge_all() -> None:
    """Every poller of this process polls now: an owner's change shows at once on this replica
    (/admin and the CLI call it after a change; other replicas see it at their next poll)."""
    for sync in list(_RUNNING):
        sync.nudge()


class LearnedSync:
    """Keeps one process's bot in step with `faqbot_learned`."""

    def __init__(self, holder: BotHolder, engine: AsyncEngine, poll_seconds: float = 2.0) -> None:
        self.holder = holder
        self.engine = engine
        self.poll_seconds = poll_seconds
        self.seen: str | None = None  # the version served; None = not read yet
        self.polls = 0
        self._failing = False
        self._wake = asyncio.Event()

    async def poll_once(self) -> bool:
        """Read the version; on a change apply the rows. True when something new was applied."""
        self.polls += 1
        current = await store.version(self.engine)
        if current == self.seen:
            return False
        rows = await store.live(self.engine)
        self.holder.set_learned(tuple(r.phrasing() for r in rows))
        if self.seen is not None or rows:
            log.info("learned.synced", version=current, rows=len(rows))
        self.seen = current
        return True

    def nudge(self) -> None:
        """Poll now (this process just made a change)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Poll until `stop` is set (or the task is cancelled)."""
        stop = stop or asyncio.Event()
        _RUNNING.add(self)
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.poll_once()
                if self._failing:
                    log.info("learned.poll_recovered")
                self._failing = False
            except Exception as exc:
                if not self._failing:
                    log.warning("learned.poll_failed", error=f"{type(exc).__name__}: {exc}"[:300])
                self._failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
