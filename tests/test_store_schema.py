"""The schema faqbot makes holds every column Chainlit's SQLAlchemy data layer writes.

Each operation of the layer (users, threads, steps and messages with every field Chainlit 2.12
sets, elements, feedback, the sidebar's reads, deletions) runs on a fresh database, SQLite and
PostgreSQL; the layer counts every failed statement, so a column Chainlit writes and the schema
lacks fails the test (`test_a_missing_column_is_caught` shows it does).
"""

from __future__ import annotations

import ast
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chainlit.context import init_http_context
from chainlit.data.storage_clients.base import BaseStorageClient
from chainlit.element import Text
from chainlit.message import Message
from chainlit.step import Step
from chainlit.types import Feedback, Pagination, ThreadFilter
from chainlit.user import User
from sqlalchemy import text

from faqbot.store.chainlit_layer import FaqbotDataLayer
from faqbot.store.database import Database
from faqbot.store.schema import metadata
from tests.conftest import ROOT
from tests.store_support import BACKENDS, Backend, fresh_backend


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from fresh_backend(request.param, tmp_path)


class FolderStorage(BaseStorageClient):  # type: ignore[misc]
    """A real storage client on a local folder (Chainlit persists elements only with one)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def upload_file(
        self, object_key: str, data: Any, mime: str = "", overwrite: bool = True, **_: Any
    ) -> dict[str, Any]:
        path = self.root / object_key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if isinstance(data, bytes) else str(data).encode())
        return {"object_key": object_key, "url": path.as_uri()}

    async def delete_file(self, object_key: str) -> bool:
        (self.root / object_key).unlink(missing_ok=True)
        return True

    async def get_read_url(self, object_key: str) -> str:
        return (self.root / object_key).as_uri()

    async def close(self) -> None:
        return None


async def _layer(backend: Backend, make_settings: Any) -> FaqbotDataLayer:
    database = Database.from_settings(make_settings(**backend.values()))
    await database.ensure_schema()
    layer = FaqbotDataLayer(database)
    layer.storage_provider = FolderStorage(backend.data_dir / "files")
    return layer


async def _exercise(layer: FaqbotDataLayer) -> dict[str, str]:
    """Every write and read the app can trigger, with every field Chainlit fills in."""
    user = await layer.create_user(User(identifier="alice", metadata={"role": "admin"}))
    assert user is not None
    await layer.create_user(User(identifier="alice", metadata={"role": "user"}))  # update
    thread_id = str(uuid.uuid4())
    init_http_context(thread_id=thread_id, user=user)
    await layer.update_thread(
        thread_id, name="first question", user_id=user.id,
        metadata={"client_type": "webapp", "chat_profile": "FAQ assistant"}, tags=["FAQ"],
    )  # fmt: skip
    question = Message(content="Do you offer discounts?", author="User", type="user_message")
    question.command, question.modes, question.tags = "search", {"model": "fast"}, ["t"]
    await layer.create_step(question.to_dict())
    router = Step(name="Router", type="tool", parent_id=question.id, language="markdown")
    router.input, router.output, router.show_input = "q", "sales (0.9)", "json"
    router.default_open, router.auto_collapse, router.tags = True, True, ["route"]
    router.metadata = {"faqbot": {"category": "sales"}}
    router.icon, router.is_error, router.start, router.end = "search", False, "s", "e"
    await layer.create_step(router.to_dict())
    await layer.update_step({**router.to_dict(), "output": "sales (1.0)"})
    answer = Message(content="Yes, 20%.", author="FAQ Chatbot", parent_id=question.id)
    answer.metadata = {"faqbot": {"entry_ids": ["sales-x"]}}
    answer.wait_for_answer = False
    await layer.create_step(answer.to_dict())
    element = Text(name="source", content="entry text", display="side", for_id=answer.id)
    element.language, element.mime, element.page = "en", "text/plain", 1
    await layer.create_element(element)
    feedback_id = await layer.upsert_feedback(
        Feedback(forId=answer.id, value=0, threadId=thread_id, comment="wrong")
    )
    await layer.upsert_feedback(
        Feedback(forId=answer.id, value=1, threadId=thread_id, id=feedback_id, comment="ok")
    )
    return {"thread": thread_id, "answer": answer.id, "user": user.id,
            "element": element.id, "feedback": feedback_id, "router": router.id}  # fmt: skip


async def test_every_chainlit_operation_succeeds_on_the_schema(
    backend: Backend, make_settings: Any
) -> None:
    layer = await _layer(backend, make_settings)
    try:
        ids = await _exercise(layer)
        thread = await layer.get_thread(ids["thread"])
        assert thread is not None
        assert thread["name"] == "first question"
        assert thread["userIdentifier"] == "alice"
        assert thread["tags"] == ["FAQ"]  # stored as JSON text, read back as a list
        assert thread["metadata"]["chat_profile"] == "FAQ assistant"
        by_id = {s["id"]: s for s in thread["steps"]}
        assert by_id[ids["router"]]["output"] == "sales (1.0)"
        assert by_id[ids["answer"]]["metadata"]["faqbot"] == {"entry_ids": ["sales-x"]}
        assert by_id[ids["answer"]]["feedback"]["comment"] == "ok"
        assert [e["id"] for e in thread["elements"]] == [ids["element"]]
        assert await layer.get_thread_author(ids["thread"]) == "alice"
        page = await layer.list_threads(
            Pagination(first=10), ThreadFilter(userId=ids["user"], search="20%", feedback=1)
        )
        assert [t["id"] for t in page.data] == [ids["thread"]]
        step = await layer.get_step(ids["answer"])
        assert step is not None
        assert step["feedback"]["value"] == 1
        assert await layer.get_element(ids["thread"], ids["element"]) is not None
        await layer.get_favorite_steps(ids["user"])
        assert layer.failures == 0, layer.last_error
        # and the rows are really there, read from outside
        assert backend.query('SELECT "value", "comment" FROM feedbacks') == [(1, "ok")]
        assert backend.query('SELECT count(*) FROM steps WHERE "threadId" = ?', (ids["thread"],))
        await layer.delete_feedback(ids["feedback"])
        await layer.delete_element(ids["element"], ids["thread"])
        await layer.delete_step(ids["router"])
        await layer.delete_thread(ids["thread"])
        assert layer.failures == 0, layer.last_error
        assert backend.query("SELECT count(*) FROM steps") == [(0,)]
    finally:
        await layer.database.dispose()


async def test_a_missing_column_is_caught(backend: Backend, make_settings: Any) -> None:
    """The check above can fail: drop one column Chainlit writes and the layer reports it."""
    layer = await _layer(backend, make_settings)
    try:
        async with layer.database.engine.begin() as conn:
            await conn.execute(text('ALTER TABLE steps DROP COLUMN "autoCollapse"'))
        await _exercise(layer)
        assert layer.failures >= 1
        assert "autoCollapse" in (layer.last_error or "")
    finally:
        await layer.database.dispose()


async def test_schema_upgrade_adds_missing_columns_and_is_idempotent(
    backend: Backend, make_settings: Any
) -> None:
    """An older database (Chainlit's documented steps table without the newer columns) is
    upgraded in place, keeping its rows; running the upgrade again changes nothing."""
    database = Database.from_settings(make_settings(**backend.values()))
    try:
        async with database.engine.begin() as conn:
            if database.schema:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{database.schema}"'))
            await conn.execute(text('CREATE TABLE threads ("id" TEXT PRIMARY KEY)'))
            await conn.execute(
                text(
                    'CREATE TABLE steps ("id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, '
                    '"type" TEXT NOT NULL, "threadId" TEXT NOT NULL, "streaming" BOOLEAN '
                    'NOT NULL, "output" TEXT)'
                )
            )
            await conn.execute(text("INSERT INTO threads VALUES ('t1')"))
            await conn.execute(
                text("INSERT INTO steps VALUES ('s1', 'User', 'user_message', 't1', false, 'hi')")
            )
        await database.ensure_schema()
        await database.ensure_schema()
        for table in metadata.sorted_tables:
            present = {r[0] for r in await _columns(database, table.name)}
            assert {c.name for c in table.columns} <= present, table.name
        rows = backend.query('SELECT "output", "defaultOpen" FROM steps')
        assert rows == [("hi", None)]
        version = backend.query("SELECT value FROM faqbot_meta WHERE key = 'schema_version'")
        assert version == [("1",)]
    finally:
        await database.dispose()


async def _columns(database: Database, table: str) -> list[tuple[str]]:
    from sqlalchemy import inspect

    async with database.engine.connect() as conn:
        cols = await conn.run_sync(lambda c: inspect(c).get_columns(table))
    return [(c["name"],) for c in cols]


def test_only_the_data_layer_module_imports_chainlit() -> None:
    """The core never imports chainlit; the one exception is the data layer's adapter (and
    faqbot/ops/serve.py, which starts Chainlit's CLI inside functions)."""
    allowed = {"faqbot/store/chainlit_layer.py", "faqbot/ops/serve.py"}
    offenders = []
    for path in sorted((ROOT / "faqbot").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = []
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            if any(m.split(".")[0] == "chainlit" for m in modules) and name not in allowed:
                offenders.append(name)
    assert offenders == []
    adapter = [ROOT / "chainlit_app.py", *sorted((ROOT / "faqbot_chainlit").glob("*.py"))]
    imports = "".join(path.read_text(encoding="utf-8") for path in adapter)
    assert "faqbot.store.chainlit_layer" in imports
