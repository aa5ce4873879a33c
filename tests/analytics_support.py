"""A seeded conversation database for the analytics and privacy tests (SQLite or PostgreSQL).

The rows are written in the shapes the app writes them (faqbot/store/): a thread per
conversation, per turn a `user_message` step, an `assistant_message` step and a `faqbot_turns`
row whose id is the answer step's id, and Chainlit `feedbacks` pointing at that id.

    SEED_NOW = the fixed "now" of the seed; every test passes it to the code under test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from faqbot.store.database import Database
from faqbot.store.schema import elements as ELEMENTS
from faqbot.store.schema import feedbacks as FEEDBACKS
from faqbot.store.schema import steps as STEPS
from faqbot.store.schema import threads as THREADS
from faqbot.store.schema import turns as TURNS
from faqbot.store.schema import users as USERS

SEED_NOW = datetime(2026, 11, 30, 12, 0, 0)


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds") + "Z"


@dataclass
class T:
    """One turn to seed."""

    question: str
    outcome: str = "answered"
    category: str | None = "sales"
    confidence: float = 0.9
    entry_ids: tuple[str, ...] = ()
    latency_ms: int = 10
    fallback: bool = False
    tokens: tuple[int, int] = (0, 0)
    cost: float = 0.0
    routed_by: str = "retrieval"
    standalone: str | None = None
    thumbs: tuple[int, str | None] | None = None  # (1 up / 0 down, comment)
    ago: timedelta = timedelta(hours=1)


@dataclass
class Conversation:
    user: str | None
    turns: list[T]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    answer_ids: list[str] = field(default_factory=list)


async def seed(
    engine: AsyncEngine, conversations: list[Conversation], now: datetime = SEED_NOW
) -> None:
    """Write the conversations (and their users) as the app does."""
    async with engine.begin() as conn:
        user_ids: dict[str, str] = {}
        for c in conversations:
            if c.user and c.user not in user_ids:
                user_ids[c.user] = str(uuid.uuid4())
                role = {"role": "admin"} if c.user == "alice" else {}
                await conn.execute(USERS.insert().values(
                    id=user_ids[c.user], identifier=c.user, metadata=json.dumps(role),
                    createdAt=stamp(now - timedelta(days=90))))  # fmt: skip
            first = now - max(t.ago for t in c.turns)
            await conn.execute(THREADS.insert().values(
                id=c.id, createdAt=stamp(first), name=c.turns[0].question[:50],
                userId=user_ids.get(c.user or ""), userIdentifier=c.user,
                metadata="{}"))  # fmt: skip
            for t in c.turns:
                at = now - t.ago
                question_id, answer_id = str(uuid.uuid4()), str(uuid.uuid4())
                c.answer_ids.append(answer_id)
                await conn.execute(
                    STEPS.insert().values(
                        id=question_id,
                        name="User",
                        type="user_message",
                        threadId=c.id,
                        streaming=False,
                        output=t.question,
                        createdAt=stamp(at),
                        metadata="{}",
                    )
                )
                meta = {"faqbot": {"outcome": t.outcome, "category": t.category}}
                await conn.execute(
                    STEPS.insert().values(
                        id=answer_id,
                        name="FAQ Chatbot",
                        type="assistant_message",
                        threadId=c.id,
                        parentId=question_id,
                        streaming=False,
                        output="(answer)",
                        createdAt=stamp(at + timedelta(milliseconds=t.latency_ms)),
                        metadata=json.dumps(meta),
                    )
                )
                await conn.execute(
                    TURNS.insert().values(
                        id=answer_id,
                        thread_id=c.id,
                        created_at=stamp(at),
                        face="ui" if c.user else "api",
                        user_identifier=c.user,
                        question=t.question,
                        standalone_question=t.standalone,
                        answer="(answer)",
                        category=t.category,
                        confidence=t.confidence,
                        routed_by=t.routed_by,
                        outcome=t.outcome,
                        fallback=t.fallback,
                        entry_ids=json.dumps(list(t.entry_ids)),
                        latency_ms=t.latency_ms,
                        prompt_tokens=t.tokens[0],
                        completion_tokens=t.tokens[1],
                        cost_usd=t.cost,
                    )
                )
                await conn.execute(
                    ELEMENTS.insert().values(
                        id=str(uuid.uuid4()), threadId=c.id, name="source", forId=answer_id
                    )
                )
                if t.thumbs is not None:
                    await conn.execute(FEEDBACKS.insert().values(
                        id=str(uuid.uuid4()), forId=answer_id, threadId=c.id, value=t.thumbs[0],
                        comment=t.thumbs[1]))  # fmt: skip


REFUND = "sales-what-is-your-refund-policy"
INSTRUMENTS = "labs-which-instruments-can-i-connect"
PDF = "reports-can-i-export-reports-to-pdf"


def standard_conversations() -> list[Conversation]:
    """The seed most tests use. In the 7 days before SEED_NOW: 11 asked questions (answered 5,
    suggested 2, refused 4, 1 fallback) and 1 clicked suggestion; latencies 20..120 ms step 10
    (p50 70, p95 115); 230 tokens, $0.00015. Unanswered groups: delete-account x3 (three
    phrasings), ship-to-Canada x2 (one as a follow-up's rewrite), PayPal x1, instruments x1
    (answered at 0.4). Thumbs down: refund entry 2, instruments entry 1. Plus one 40-day-old
    conversation of bob's.
    """
    d = timedelta(days=1)
    h = timedelta(hours=1)
    return [
        Conversation(
            "alice",
            [
                T("How do I delete my account?", "refused", None, 0.05, latency_ms=20, ago=2 * h),
                T("how do I delete my account", "refused", None, 0.04, latency_ms=30, ago=3 * h),
                T(
                    "What is your refund policy?",
                    "answered",
                    "sales",
                    0.95,
                    (REFUND,),
                    latency_ms=40,
                    thumbs=(0, "too vague"),
                    ago=4 * h,
                ),
            ],
        ),
        Conversation(
            "bob",
            [
                T("How can I delete my account?", "refused", None, 0.06, latency_ms=50, ago=d + h),
                T("Do you ship to Canada?", "refused", None, 0.02, latency_ms=60, ago=d + 2 * h),
                T(
                    "Can I pay with PayPal?",
                    "suggested",
                    "sales",
                    0.3,
                    latency_ms=70,
                    ago=d + 3 * h,
                ),
                T(
                    "Which payment methods do you accept?",
                    "answered",
                    "sales",
                    0.8,
                    latency_ms=5,
                    routed_by="suggestion",
                    ago=d + 3 * h - timedelta(minutes=1),
                ),
                T(
                    "Which instruments can I connect?",
                    "answered",
                    "labs",
                    0.4,
                    (INSTRUMENTS,),
                    latency_ms=80,
                    thumbs=(0, None),
                    ago=2 * d,
                ),
                T(
                    "Can I export reports to PDF?",
                    "answered",
                    "reports",
                    0.99,
                    (PDF,),
                    latency_ms=90,
                    thumbs=(1, None),
                    ago=2 * d + h,
                ),
            ],
        ),
        Conversation(
            None,
            [
                T(
                    "What is the refund policy for annual plans?",
                    "answered",
                    "sales",
                    0.9,
                    (REFUND,),
                    latency_ms=100,
                    fallback=True,
                    tokens=(100, 50),
                    cost=0.0001,
                    routed_by="llm",
                    thumbs=(0, "wrong plan"),
                    ago=3 * d,
                ),
                T(
                    "and in Canada?",
                    "suggested",
                    "sales",
                    0.2,
                    latency_ms=110,
                    tokens=(80, 0),
                    cost=0.00005,
                    routed_by="llm",
                    standalone="Do you ship to Canada?",
                    ago=3 * d - h,
                ),
                T(
                    "Can I schedule reports?",
                    "answered",
                    "reports",
                    0.97,
                    latency_ms=120,
                    ago=5 * d,
                ),
            ],
        ),
        Conversation(
            "bob",
            [  # 40 days old: outside the report, past a 30-day retention
                T(
                    "An old question about invoices?",
                    "refused",
                    None,
                    0.01,
                    latency_ms=5000,
                    thumbs=(0, "old"),
                    ago=timedelta(days=40),
                ),
            ],
        ),
    ]


PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def postgres_missing() -> str | None:
    """Why the PostgreSQL variant cannot run here (None: it can)."""
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return None
    except OSError as exc:
        return f"PostgreSQL not reachable on 127.0.0.1:5432 ({exc})"


async def open_backend(
    kind: str, tmp_path: Path
) -> tuple[AsyncEngine, Callable[[], Awaitable[None]]]:
    """A fresh database with the app's schema (faqbot.store creates it, as at start-up): a SQLite
    file in `tmp_path`, or a PostgreSQL schema of its own (dropped by the clean-up).

    Returns the engine and the clean-up.
    """
    import pytest
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    if kind == "sqlite":
        database = Database(make_url(f"sqlite+aiosqlite:///{tmp_path / 'faqbot.db'}"))
        await database.ensure_schema()
        return database.engine, database.dispose
    reason = postgres_missing()
    if reason:
        pytest.skip(reason)
    schema = f"analytics_{uuid.uuid4().hex[:12]}"
    database = Database(make_url(PG_URL), schema=schema)
    await database.ensure_schema()

    async def cleanup() -> None:
        await database.dispose()
        admin = create_async_engine(PG_URL)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()

    return database.engine, cleanup


def seed_data_dir(data_dir: Path, now: datetime | None = None) -> None:
    """The app's default database (DATA_DIR/faqbot.db) with the standard conversations."""
    import asyncio

    async def run() -> None:
        engine, cleanup = await open_backend("sqlite", data_dir)
        try:
            await seed(
                engine, standard_conversations(), now or datetime.now(UTC).replace(tzinfo=None)
            )
        finally:
            await cleanup()

    data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(run())
