"""Ratings given in the chat UI before issue 20 were stored against Chainlit's run step and never
counted; at start they move to the run's answer (faqbot/store/migrations.py), on SQLite and on
PostgreSQL, once, and a run with no recorded answer keeps its rating."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import insert, select

from faqbot.store.database import Database
from faqbot.store.schema import feedbacks, steps, threads, turns
from tests.store_support import BACKENDS, Backend, fresh_backend

AT = "2026-01-01T00:00:0{}.000000Z"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Backend]:
    yield from fresh_backend(request.param, tmp_path)


def _step(id_: str, thread: str, kind: str, parent: str | None, n: int) -> dict[str, Any]:
    return {"id": id_, "threadId": thread, "type": kind, "parentId": parent, "name": kind,
            "createdAt": AT.format(n), "streaming": False, "isError": False}  # fmt: skip


async def _old_style_ratings(database: Database) -> dict[str, str]:
    """A thread as the chat UI stored it: question, run, answer; one turn row; the UI's rating
    on the run; and a second run (an error reply) with no answer, rated too."""
    ids = {k: str(uuid.uuid4()) for k in ("thread", "q", "run", "answer", "q2", "run2")}
    thread = ids["thread"]
    async with database.engine.begin() as conn:
        await conn.execute(insert(threads), [{"id": thread, "createdAt": AT.format(0)}])
        await conn.execute(insert(steps), [
            _step(ids["q"], thread, "user_message", None, 1),
            _step(ids["run"], thread, "run", ids["q"], 2),
            _step(ids["answer"], thread, "assistant_message", ids["run"], 3),
            _step(ids["q2"], thread, "user_message", None, 4),
            _step(ids["run2"], thread, "run", ids["q2"], 5),
        ])  # fmt: skip
        await conn.execute(insert(turns), [{
            "id": ids["answer"], "thread_id": thread, "created_at": AT.format(3), "face": "ui",
            "question": "refund?", "outcome": "answered", "fallback": False,
            "question_step_id": ids["q"],
        }])  # fmt: skip
        await conn.execute(insert(feedbacks), [
            {"id": str(uuid.uuid4()), "forId": ids["run"], "threadId": thread, "value": 0},
            {"id": str(uuid.uuid4()), "forId": ids["run2"], "threadId": thread, "value": 1},
        ])  # fmt: skip
    return ids


async def test_ratings_of_runs_move_to_their_answers(backend: Backend, make_settings: Any) -> None:
    database = Database.from_settings(make_settings(**backend.values()))
    try:
        await database.ensure_schema()
        ids = await _old_style_ratings(database)
        await database.ensure_schema()  # the next start
        await database.ensure_schema()  # and the one after: nothing more moves
        async with database.engine.connect() as conn:
            rated = sorted(
                (str(r.forId), r.value)
                for r in await conn.execute(select(feedbacks.c.forId, feedbacks.c.value))
            )
    finally:
        await database.engine.dispose()
    assert rated == sorted([(ids["answer"], 0), (ids["run2"], 1)])
