"""Revoked sign-ins: one row per user whose sessions issued before a moment are void.

`python -m faqbot delete-user` writes the row (the user's data is erased, so their session must
not re-create it); the app reads the table (faqbot/web/session_check.py) and refuses a session
token issued (its JWT `iat`) at or before `revoked_at`. A later sign-in is a new session: whether
the user may still sign in is the sign-in's business (AUTH_USERS, the proxy, the OAuth provider).

The row keeps a SHA-256 digest of the identifier, not the name: an erased user's name is not
kept for the sake of the revocation. The table is faqbot's own and created here when first used
(the app when it first checks, or the command). Timestamps are ISO-8601 UTC text like every
other in the schema (faqbot/store/schema.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import UTC, datetime

from sqlalchemy import Column, MetaData, Table, Text, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from faqbot.logs import get_logger

log = get_logger("faqbot.store.revocations")
REFRESH_S = 2.0  # how stale the app's copy may get: delete-user waits this long (and a bit)

_metadata = MetaData()
revocations = Table(
    "faqbot_revocations",
    _metadata,
    Column("user_digest", Text, primary_key=True),  # sha256 hex of the user's identifier
    Column("revoked_at", Text, nullable=False),
)


def digest(identifier: str) -> str:
    return hashlib.sha256(identifier.encode()).hexdigest()


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds")


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def ensure_table(engine: AsyncEngine) -> None:
    """CREATE TABLE IF NOT EXISTS (idempotent; safe from several processes at once)."""
    async with engine.begin() as conn:
        await conn.run_sync(_metadata.create_all, checkfirst=True)


async def revoke(engine: AsyncEngine, identifier: str, at: float | None = None) -> None:
    """Void every session of `identifier` issued up to `at` (default: now)."""
    await ensure_table(engine)
    moment, key = _iso(time.time() if at is None else at), digest(identifier)
    async with engine.begin() as conn:
        await conn.execute(delete(revocations).where(revocations.c.user_digest == key))
        await conn.execute(insert(revocations).values(user_digest=key, revoked_at=moment))


async def load(engine: AsyncEngine) -> dict[str, float]:
    """Every revocation: the identifier's digest -> revoked_at as epoch seconds."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(revocations.c.user_digest, revocations.c.revoked_at))
        return {str(key): _epoch(str(at)) for key, at in rows}


class RevocationList:
    """The app's copy of the table, re-read at most every `refresh_s` seconds.

    Read on the request path, so it never waits on a slow database twice at once and never
    fails a request: a failed read keeps the last good copy (logged), and until one read has
    succeeded nobody is revoked (the database being down must not lock every user out).
    """

    def __init__(self, engine: AsyncEngine, refresh_s: float = REFRESH_S) -> None:
        self.engine = engine
        self.refresh_s = refresh_s
        self._known: dict[str, float] = {}
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()
        self._table_ready = False

    async def revoked_at(self, identifier: str) -> float | None:
        """When `identifier`'s sessions were revoked (epoch seconds), or None."""
        if time.monotonic() - self._read_at >= self.refresh_s:
            await self._refresh()
        return self._known.get(digest(identifier)) if self._known else None

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._read_at < self.refresh_s:
                return  # another request refreshed it meanwhile
            try:
                if not self._table_ready:
                    await ensure_table(self.engine)
                    self._table_ready = True
                self._known = await load(self.engine)
            except Exception as exc:
                log.warning("revocations.unreadable", error=f"{type(exc).__name__}"[:200])
            self._read_at = time.monotonic()
