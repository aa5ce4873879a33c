"""Learned phrasings in the database and in the serving bot (issue 22), on SQLite and PostgreSQL.

The store: validated like FAQ text, one live decision per question, who and when, soft removal,
a version replicas poll. The sync: two `LearnedSync`s over one database (two replicas) serve a
phrasing attached through either within a poll, keep it across a file reload and a restart, and
drop it when removed; an out-of-scope mark refuses the exact question.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from faqbot.answering.bot import collect
from faqbot.knowledge.learned import PhrasingError
from faqbot.ops.learning import LearnedSync
from faqbot.ops.reload import BotHolder
from faqbot.store import learned as store
from faqbot.store.database import Database
from tests.store_support import BACKENDS, Backend, fresh_backend

UNKNOWN = "do universities get a rebate"  # refused by the small FAQ as it is


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Backend]:
    yield from fresh_backend(request.param, tmp_path)


@pytest.fixture
async def database(backend: Backend, make_settings: Any) -> AsyncIterator[Database]:
    db = Database.from_settings(make_settings(**backend.values()))
    await db.ensure_schema()
    yield db
    await db.dispose()


def _entry_id(holder: BotHolder, question_start: str) -> str:
    assert holder.bot is not None
    return next(e.id for e in holder.bot.kb.entries if e.question.startswith(question_start))


async def _ask(holder: BotHolder, question: str) -> Any:
    assert holder.bot is not None
    return await collect(holder.bot.answer(question))


async def test_add_list_remove_and_version(database: Database, backend: Backend) -> None:
    engine = database.engine
    assert await store.version(engine) == "0"
    row = await store.add(engine, "  Do you  give discounts\tto universities? ",
                          entry_id="sales-x", created_by="alice")  # fmt: skip
    assert row.text == "Do you give discounts to universities?"
    assert (row.created_by, row.kind, row.entry_id) == ("alice", "phrasing", "sales-x")
    assert row.created_at.endswith("Z")
    assert await store.version(engine) == "1"
    mark = await store.add(engine, "What is the weather?", kind="out_of_scope", created_by="bob")
    assert await store.version(engine) == "2"
    assert [r.id for r in await store.live(engine)] == [row.id, mark.id]
    # one live decision per question: the same words, another case/punctuation, any entry
    for again, kind, entry in (
        ("do you give discounts to universities", "phrasing", "sales-x"),
        ("Do you give discounts to UNIVERSITIES?!", "phrasing", "other-entry"),
        ("Do you give discounts to universities?", "out_of_scope", ""),
    ):
        with pytest.raises(store.LearnError, match="already attached to entry sales-x"):
            await store.add(engine, again, entry_id=entry, kind=kind)  # type: ignore[arg-type]
    with pytest.raises(store.LearnError, match="already marked out of scope"):
        await store.add(engine, "what is the weather", entry_id="sales-x")
    assert await store.version(engine) == "2"  # refused changes leave the version alone
    removed = await store.remove(engine, row.id, removed_by="carol")
    assert removed.text == row.text
    assert await store.version(engine) == "3"
    assert [r.id for r in await store.live(engine)] == [mark.id]
    with pytest.raises(store.LearnError, match="no attached phrasing"):
        await store.remove(engine, row.id)
    # the row stays, marked removed (who and when); its question is free again
    kept = backend.query(
        "SELECT removed_by, removed_at IS NOT NULL, question_key FROM faqbot_learned WHERE id = ?",
        (row.id,),
    )
    assert kept == [("carol", True, None)] or kept == [("carol", 1, None)]
    again = await store.add(engine, row.text, entry_id="sales-y")
    assert again.entry_id == "sales-y"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 1001, "too long"),
        ("bad \x07 bell", "control character"),
        ("what is </faq_entries> now", "faq_entries"),
    ],
)
async def test_invalid_phrasings_are_refused_with_a_reason(
    database: Database, text: str, why: str
) -> None:
    with pytest.raises(PhrasingError, match=why):
        await store.add(database.engine, text, entry_id="sales-x")
    assert await store.live(database.engine) == []


async def test_a_phrasing_needs_an_entry_and_a_known_kind(database: Database) -> None:
    with pytest.raises(store.LearnError, match="choose the entry"):
        await store.add(database.engine, "a question", entry_id=" ")
    with pytest.raises(store.LearnError, match="unknown kind"):
        await store.add(database.engine, "a question", entry_id="x", kind="nope")  # type: ignore[arg-type]


async def test_choices_are_recorded_as_evidence(database: Database) -> None:
    await store.record_choice(database, "how much for universities?", "sales-x", "thread-1")
    await store.record_choice(database, "   ", "sales-x")  # nothing asked: nothing recorded
    async with database.engine.connect() as conn:
        got = await store.choices(conn, "2000-01-01")
    assert [(c.question, c.entry_id) for c in got] == [("how much for universities?", "sales-x")]


async def test_two_replicas_serve_a_phrasing_within_a_poll_and_keep_it(
    database: Database, backend: Backend, make_settings: Any, small_faq_dir: Path
) -> None:
    settings = make_settings(**backend.values())
    a, b = BotHolder(settings), BotHolder(settings)
    sync_a = LearnedSync(a, database.engine, poll_seconds=0.05)
    sync_b = LearnedSync(b, database.engine, poll_seconds=0.05)
    entry = _entry_id(a, "Do you offer discounts")
    assert (await _ask(b, UNKNOWN)).refused  # the files alone cannot answer it
    stop = asyncio.Event()
    tasks = [asyncio.create_task(s.run(stop)) for s in (sync_a, sync_b)]
    try:
        await store.add(database.engine, UNKNOWN, entry_id=entry, created_by="owner")
        for holder in (a, b):
            result = await _wait_for(holder, UNKNOWN, lambda r: not r.refused)
            assert result.sources[0].id == entry
        # a file reload (an edit of another category) keeps the learned phrasing
        labs = small_faq_dir / "labs.txt"
        labs.write_text(labs.read_text() + "\nQ: Is there an API?\nA: Yes, a REST API.\n")
        assert b.refresh() is None
        assert b.status.reloads == 1
        assert any(e.question == "Is there an API?" for e in b.bot.kb.entries)  # type: ignore[union-attr]
        assert (await _ask(b, UNKNOWN)).sources[0].id == entry
        # a restart: a new process reads it at its first poll
        c = BotHolder(settings)
        assert (await _ask(c, UNKNOWN)).refused
        assert await LearnedSync(c, database.engine).poll_once()
        assert (await _ask(c, UNKNOWN)).sources[0].id == entry
        # removed: gone on both within a poll
        (row,) = await store.live(database.engine)
        await store.remove(database.engine, row.id)
        for holder in (a, b):
            await _wait_for(holder, UNKNOWN, lambda r: r.refused)
        # out of scope: a question the FAQ answers is refused once marked, on both replicas
        covered = "Which payment methods do you accept?"
        assert (await _ask(a, covered)).sources
        await store.add(database.engine, "which payment methods do you accept", kind="out_of_scope")
        for holder in (a, b):
            result = await _wait_for(holder, covered, lambda r: r.refused)
            assert result.sources == ()
            assert result.suggestions == ()
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def _wait_for(holder: BotHolder, question: str, ok: Any, within_s: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        result = await _ask(holder, question)
        if ok(result) or asyncio.get_running_loop().time() > deadline:
            assert ok(result), result
            return result
        await asyncio.sleep(0.05)


async def test_choices_go_with_their_conversation_and_with_age(database: Database) -> None:
    """A visitor's words in the evidence are erased as their conversation is (delete-user,
    retention), and by RETENTION_DAYS on their own."""
    from datetime import UTC, datetime, timedelta

    from faqbot.privacy.retention import apply_retention, delete_threads

    await store.record_choice(database, "mine", "sales-x", "thread-1")
    await store.record_choice(database, "theirs", "sales-x", "thread-2")
    counts = await delete_threads(database.engine, ["thread-1"])
    assert counts["faqbot_learn_evidence"] == 1
    async with database.engine.connect() as conn:
        assert [c.question for c in await store.choices(conn, "2000")] == ["theirs"]
    later = datetime.now(UTC) + timedelta(days=31)
    counts = await apply_retention(database.engine, 30, now=later)
    assert counts["faqbot_learn_evidence"] == 1
    async with database.engine.connect() as conn:
        assert await store.choices(conn, "2000") == []
