"""Privacy (issue 12, item 6): retention, deleting one user's data, masking e-mails and phones."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from faqbot.privacy.masking import EMAIL_MASK, PHONE_MASK, mask_log_event, mask_pii
from faqbot.privacy.retention import apply_retention, delete_user
from tests.analytics_support import SEED_NOW, Conversation, T, open_backend, seed

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)]
TABLES = ("threads", "steps", "elements", "feedbacks", "faqbot_turns", "users")


@pytest.fixture(params=BACKENDS)
async def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine, cleanup = await open_backend(request.param, tmp_path)
    try:
        yield engine
    finally:
        await cleanup()


async def _rows(engine: AsyncEngine) -> dict[str, set[str]]:
    """Every table's ids (threads by thread id, the rest by the thread they belong to)."""
    queries = {
        "threads": "SELECT id FROM threads",
        "steps": 'SELECT "threadId" FROM steps',
        "elements": 'SELECT "threadId" FROM elements',
        "feedbacks": 'SELECT "threadId" FROM feedbacks',
        "faqbot_turns": "SELECT thread_id FROM faqbot_turns",
        "users": "SELECT identifier FROM users",
    }
    async with engine.connect() as conn:
        return {t: {str(r[0]) for r in await conn.execute(text(q))} for t, q in queries.items()}


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT COUNT(*) FROM {table}"))).scalar_one())


def _world() -> dict[str, Conversation]:
    d = timedelta(days=1)
    return {
        "fresh": Conversation("carol", [T("Recent question?", ago=d)]),
        "old": Conversation("carol", [T("Old question?", thumbs=(0, "bad"), ago=40 * d)]),
        "continued": Conversation(  # started 45 days ago, continued yesterday: kept whole
            "dave", [T("Started long ago?", ago=45 * d), T("And now?", ago=d)]
        ),
        "old_api": Conversation(None, [T("Old API question?", thumbs=(1, None), ago=31 * d)]),
        "edge": Conversation(None, [T("Just inside?", ago=29 * d)]),
    }


async def test_retention_deletes_exactly_the_old_threads(empty_db: AsyncEngine) -> None:
    world = _world()
    await seed(empty_db, list(world.values()))
    before = await _rows(empty_db)
    assert sum((await apply_retention(empty_db, 0, now=SEED_NOW)).values()) == 0  # keep forever
    assert await _rows(empty_db) == before
    counts = await apply_retention(empty_db, 30, now=SEED_NOW)
    gone = {world["old"].id, world["old_api"].id}
    after = await _rows(empty_db)
    for table in ("threads", "steps", "elements", "feedbacks", "faqbot_turns"):
        assert after[table] == before[table] - gone, table
    assert after["users"] == before["users"]  # accounts are not conversations
    assert counts["threads"] == 2
    assert counts["steps"] == 4  # question + answer per turn
    assert counts["feedbacks"] == 2
    assert counts["faqbot_turns"] == 2
    assert sum((await apply_retention(empty_db, 30, now=SEED_NOW)).values()) == 0  # idempotent


async def test_retention_removes_old_turn_rows_without_a_thread(empty_db: AsyncEngine) -> None:
    world = _world()
    await seed(empty_db, [world["old"], world["fresh"]])
    async with empty_db.begin() as conn:  # a turn row whose thread was never written
        await conn.execute(text('DELETE FROM steps WHERE "threadId" = :t'), {"t": world["old"].id})
        await conn.execute(text("DELETE FROM threads WHERE id = :t"), {"t": world["old"].id})
    await apply_retention(empty_db, 30, now=SEED_NOW)
    assert (await _rows(empty_db))["faqbot_turns"] == {world["fresh"].id}


async def test_delete_user_removes_only_that_users_rows(empty_db: AsyncEngine) -> None:
    world = _world()
    await seed(empty_db, list(world.values()))
    before = await _rows(empty_db)
    counts = await delete_user(empty_db, "carol")
    carol = {world["fresh"].id, world["old"].id}
    after = await _rows(empty_db)
    for table in ("threads", "steps", "elements", "feedbacks", "faqbot_turns"):
        assert after[table] == before[table] - carol, table
    assert after["users"] == {"dave"}
    assert counts["threads"] == 2
    assert counts["users"] == 1
    assert counts["feedbacks"] == 1
    # nothing left (or an unknown user): nothing deleted, no error
    assert sum((await delete_user(empty_db, "carol")).values()) == 0
    assert sum((await delete_user(empty_db, "nobody")).values()) == 0
    assert await _count(empty_db, "threads") == 3


# --- masking -------------------------------------------------------------------------------

_local = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,15}[a-z0-9]", fullmatch=True)
_label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_emails = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    _local,
    st.lists(_label, min_size=1, max_size=3),
    st.sampled_from(["com", "org", "de", "co.uk", "example", "io"]),
)
_phones = st.one_of(
    st.from_regex(r"\+[1-9]\d{0,2} \d{2,4} \d{3,4} \d{3,4}", fullmatch=True),  # +44 20 7946 0958
    st.from_regex(r"\(\d{3}\) \d{3}-\d{4}", fullmatch=True),  # (555) 123-4567
    st.from_regex(r"0\d{3,4}[ /-]\d{6,7}", fullmatch=True),  # 0171 1234567
    st.from_regex(r"00[1-9]\d \d{2,3} \d{6,8}", fullmatch=True),  # 0049 30 1234567
    st.from_regex(r"\d{3}\.\d{3}\.\d{4}", fullmatch=True),  # 555.123.4567
)
_words = st.lists(
    st.sampled_from(["my", "is", "please", "call", "write", "to", "or", "the", "account", "Hi,"]),
    max_size=4,
).map(" ".join)
# Text with no e-mail and no phone number: words, and between them numbers, prices, dates,
# times and version numbers.
_word = st.sampled_from(["refund", "plan", "annual", "Gebühr", "день", "$199/month", "20%", "on"])
_number = st.one_of(
    st.integers(0, 10**8).map(str),
    st.dates().map(lambda d: d.isoformat()),
    st.times().map(lambda t: t.strftime("%H:%M:%S")),
    st.from_regex(r"\d{1,2}\.\d{1,2}\.\d{1,3}", fullmatch=True),
    st.integers(1900, 2098).map(lambda y: f"{y}-{y + 1}"),
)
_harmless = st.lists(st.tuples(_word, _number).map(" ".join), max_size=6).map(" ".join)


@settings(max_examples=150, deadline=None, derandomize=True)  # fixed examples in CI
@given(before=_words, email=_emails, after=_words)
def test_emails_are_masked(before: str, email: str, after: str) -> None:
    masked = mask_pii(f"{before} {email} {after}")
    assert email not in masked
    assert "@" not in masked
    assert masked == f"{before} {EMAIL_MASK} {after}"


@settings(max_examples=150, deadline=None, derandomize=True)  # fixed examples in CI
@given(before=_words, phone=_phones, after=_words)
def test_phone_numbers_are_masked(before: str, phone: str, after: str) -> None:
    masked = mask_pii(f"{before} {phone} {after}.")
    assert masked == f"{before} {PHONE_MASK} {after}."
    assert not re.search(r"\d{3}", masked)


@settings(max_examples=150, deadline=None, derandomize=True)  # fixed examples in CI
@given(text_=_harmless)
def test_text_without_contact_details_is_unchanged(text_: str) -> None:
    assert mask_pii(text_) == text_


@settings(max_examples=150, deadline=None, derandomize=True)  # fixed examples in CI
@given(text_=st.text(max_size=200))
def test_masking_is_idempotent_and_total(text_: str) -> None:
    once = mask_pii(text_)
    assert mask_pii(once) == once
    assert "@" not in once or not re.search(r"\w@\w+\.\w", once)


def test_masking_examples() -> None:
    cases = {
        "Mail john.doe+faq@example.co.uk or call +1 (555) 123-4567": "Mail [email] or call [phone]",
        "Meine Nummer: 0171 1234567, E-Mail: jürgen@beispiel.de": (
            "Meine Nummer: [phone], E-Mail: [email]"
        ),
        "Order 12345 on 2026-11-30 at 10:00:01 for $199.00, from 192.168.1.10 (v2.12.0)": (
            "Order 12345 on 2026-11-30 at 10:00:01 for $199.00, from 192.168.1.10 (v2.12.0)"
        ),
        "Was it 2020-2024 or 06.12.2024?": "Was it 2020-2024 or 06.12.2024?",
        "Between 100 1000 and 5000 users": "Between 100 1000 and 5000 users",
        "Ring 555-1234 or 555 123 4567 or 5551234567": "Ring [phone] or [phone] or [phone]",
    }
    for raw, expected in cases.items():
        assert mask_pii(raw) == expected


def test_log_events_are_masked() -> None:
    """The structlog processor MASK_PII adds masks the message and every field."""
    lines: list[str] = []
    logger = structlog.wrap_logger(
        structlog.PrintLogger(file=_Collect(lines)),
        processors=[mask_log_event, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.BoundLogger,  # not the process's level filter (other tests')
    )
    logger.info("asked by bob@example.com", question="call me at +44 20 7946 0958", n=3,
                nested={"to": ["ann@example.org"]})  # fmt: skip
    event: dict[str, Any] = json.loads(lines[0])
    assert event == {
        "event": "asked by [email]", "question": "call me at [phone]", "n": 3,
        "nested": {"to": ["[email]"]},
    }  # fmt: skip


class _Collect:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def write(self, text_: str) -> None:
        if text_.strip():
            self.lines.append(text_)

    def flush(self) -> None:
        pass
