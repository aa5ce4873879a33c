"""The report reads what the app's own write paths store; MASK_PII masks the users' words there.

API turns go through the real `/api/chat` and `/api/feedback` with faqbot's Store; chat UI steps
through faqbot's Chainlit data layer (the same objects chainlit_app.py builds).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from faqbot.analytics.report import build_report
from faqbot.answering.factory import build_bot
from faqbot.privacy.stored import MaskingStore, mask_data_layer
from faqbot.state.conversations import ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.store.database import Database
from faqbot.store.turns import Store
from faqbot.web.app import create_api

EMAIL = "jane.doe@example.com"
PHONE = "+44 20 7946 0958"


@pytest.fixture
async def database(make_settings: Any, tmp_path: Path) -> AsyncIterator[Database]:
    db = Database.from_settings(make_settings(data_dir=tmp_path / "db"))
    await db.ensure_schema()
    yield db
    await db.dispose()


async def _rows(db: Database, sql: str) -> list[tuple[Any, ...]]:
    async with db.engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(text(sql))]


async def _ask_over_api(make_settings: Any, db: Database, store: Store) -> list[str]:
    settings = make_settings(data_dir=db.url.database and Path(db.url.database).parent)
    bot = build_bot(settings)
    api = create_api(lambda: bot, RateLimiter(1000, 60), settings, ConversationStore(), store=store)
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    answer_ids = []
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for question in (
            f"Weather in Paris today? {EMAIL}",
            f"Weather in Paris today? {PHONE}",
            "Do you offer discounts for annual subscriptions?",
        ):
            response = await client.post("/chat", json={"question": question})
            assert response.status_code == 200, response.text
            answer_ids.append(response.json()["answer_id"])
        rated = await client.post(
            "/feedback",
            json={"answer_id": answer_ids[2], "value": -1, "comment": f"reply to {EMAIL}"},
        )
        assert rated.status_code == 200, rated.text
    return answer_ids


async def test_the_report_reads_what_the_api_stored(make_settings: Any, database: Database) -> None:
    await _ask_over_api(make_settings, database, Store(database))
    report = await build_report(database.engine, "1d")
    assert report.totals.questions == 3
    assert report.totals.answered == 1
    assert report.totals.refused + report.totals.suggested == 2
    listed = {g.question for g in report.unanswered}
    assert listed == {f"Weather in Paris today? {EMAIL}", f"Weather in Paris today? {PHONE}"}
    assert [(e.entry_id.split("-")[0], e.down) for e in report.disliked] == [("sales", 1)]
    assert report.disliked[0].comments == [f"reply to {EMAIL}"]


async def test_mask_pii_masks_questions_and_comments_stored_by_the_api(
    make_settings: Any, database: Database
) -> None:
    await _ask_over_api(make_settings, database, MaskingStore(database))
    stored = await _rows(database, "SELECT question FROM faqbot_turns")
    steps = await _rows(database, 'SELECT type, "input", output FROM steps')
    names = await _rows(database, "SELECT name FROM threads")
    comments = await _rows(database, "SELECT comment FROM feedbacks")
    everything = repr((stored, steps, names, comments))
    assert EMAIL not in everything
    assert "7946" not in everything
    assert ("Weather in Paris today? [email]",) in stored
    assert ("Weather in Paris today? [phone]",) in stored
    assert comments == [("reply to [email]",)]
    report = await build_report(database.engine, "1d")
    assert report.unanswered[0].count == 2  # masked, the two questions are one group


async def test_mask_pii_masks_what_chainlit_stores(database: Database) -> None:
    from chainlit.context import init_http_context
    from chainlit.types import Feedback

    from faqbot.store.chainlit_layer import FaqbotDataLayer

    init_http_context()
    layer = FaqbotDataLayer(database)
    mask_data_layer(layer)
    thread, question, router, answer = (str(uuid.uuid4()) for _ in range(4))
    await layer.update_thread(thread, name=f"Contact {EMAIL}")
    base = {"threadId": thread, "streaming": False, "createdAt": "2026-11-30T10:00:00Z"}
    await layer.create_step({**base, "id": question, "name": "User", "type": "user_message",
                             "output": f"my phone is {PHONE}"})  # fmt: skip
    await layer.create_step({**base, "id": router, "name": "Router", "type": "tool",
                             "input": f"my phone is {PHONE}", "output": "route",
                             "metadata": {"faqbot": {"standalone_question": EMAIL}}})  # fmt: skip
    await layer.update_step({**base, "id": answer, "name": "Bot", "type": "assistant_message",
                             "output": "Write to support@lablens.example"})  # fmt: skip
    await layer.upsert_feedback(Feedback(forId=answer, value=0, threadId=thread,
                                         comment=f"call {PHONE}"))  # fmt: skip
    steps = dict(
        (r[0], r[1:])
        for r in await _rows(database, 'SELECT type, "input", output, metadata FROM steps')
    )
    assert steps["user_message"][1] == "my phone is [phone]"
    assert steps["tool"][0] == "my phone is [phone]"
    assert '"standalone_question": "[email]"' in steps["tool"][2]
    assert steps["assistant_message"][1] == "Write to support@lablens.example"  # answers kept
    assert await _rows(database, "SELECT name FROM threads") == [("Contact [email]",)]
    assert await _rows(database, "SELECT comment FROM feedbacks") == [("call [phone]",)]


async def test_a_thread_deleted_through_chainlit_takes_its_turn_rows(database: Database) -> None:
    """The history sidebar's delete: Chainlit's delete_thread, plus faqbot's own rows."""
    from chainlit.context import init_http_context

    from faqbot.privacy.stored import delete_whole_threads
    from faqbot.store.chainlit_layer import FaqbotDataLayer
    from tests.analytics_support import Conversation, T, seed

    init_http_context()
    layer = FaqbotDataLayer(database)
    delete_whole_threads(layer, database.engine)
    gone, kept = Conversation("erin", [T("Delete me?")]), Conversation("erin", [T("Keep me?")])
    await seed(database.engine, [gone, kept])
    await layer.delete_thread(gone.id)
    for table, column in (
        ("threads", "id"),
        ("steps", '"threadId"'),
        ("faqbot_turns", "thread_id"),
        ("elements", '"threadId"'),
    ):
        rows = await _rows(database, f"SELECT DISTINCT {column} FROM {table}")
        assert rows == [(kept.id,)], table
