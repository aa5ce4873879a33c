"""Conversations that last (issue 12), against real `chainlit run` processes and a real database.

SQLite (the default file in DATA_DIR) and PostgreSQL (a fresh schema of the `test` database on
127.0.0.1:5432; skipped when absent): a signed-in chat (socket.io) and an API conversation each
continue after the app restarts, with their old context; the questions, router steps, answers
with their sources, turn rows and feedback are read back from the database with SQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from faqbot.passwords import hash_password
from tests.e2e_support import (
    ChatClient,
    chainlit_server,
    loopback_address,
    loopback_aliases_work,
    server_pid,
    sign_in,
)
from tests.store_support import BACKENDS, Backend, fresh_backend

pytestmark = pytest.mark.chainlit
PASSWORD = "correct horse battery staple"
AUTH_SECRET = "test-secret-" + "x" * 52
REFUND_Q = "What is your refund policy?"
FOLLOW_UP = "and is that for new subscriptions only?"
REFUND_ID = "sales-what-is-your-refund-policy"
COMBINED = f"{REFUND_Q} {FOLLOW_UP}"  # offline, a follow-up is searched with the last question


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from fresh_backend(request.param, tmp_path)


def signed_in(backend: Backend, **extra: str) -> dict[str, str]:
    """Password sign-in on (one user, alice), with Chainlit's auth secret; /api stays open to
    anonymous clients (PUBLIC_API), as these tests use it."""
    entry = f"alice:{hash_password(PASSWORD, iterations=100_000)}"
    return {**backend.env, "AUTH_USERS": entry, "CHAINLIT_AUTH_SECRET": AUTH_SECRET,
            "PUBLIC_API": "true", **extra}  # fmt: skip


async def test_chat_and_api_conversations_survive_a_restart(backend: Backend) -> None:
    """One restart for both faces (each server start costs seconds): a signed-in chat resumed
    from its thread, and an API conversation continued with its token, both with the old
    context; then everything is read back from the database."""
    env = signed_in(backend, RATE_LIMIT_REQUESTS="1000")
    with chainlit_server(env) as url:
        async with ChatClient(url, headers=await sign_in(url, "alice", PASSWORD)) as chat:
            first_ui = await chat.ask(REFUND_Q)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            first = (await http.post("/api/chat", json={"question": REFUND_Q})).json()
    assert "30-day money-back guarantee" in first_ui.reply
    assert first["answer_id"]
    with chainlit_server(env) as url:  # a new process: nothing in memory
        headers = await sign_in(url, "alice", PASSWORD)
        async with ChatClient(url, headers=headers, thread_id=first_ui.thread_id) as chat:
            resumed = chat.resumed
            follow_ui = await chat.ask(FOLLOW_UP)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            follow, rated, unknown, health = await _api_follow_up(http, first)
    _check_ui(backend, first_ui.thread_id, resumed, follow_ui)
    _check_api(backend, first, follow, rated, unknown, health)


async def _api_follow_up(http: httpx.AsyncClient, first: dict[str, Any]) -> tuple[Any, ...]:
    body = {
        "question": FOLLOW_UP,
        "conversation_id": first["conversation_id"],
        "conversation_token": first["conversation_token"],
    }
    follow = (await http.post("/api/chat", json=body)).json()
    rated = await http.post(
        "/api/feedback",
        json={"answer_id": follow["answer_id"], "value": -1, "comment": "too short"},
    )
    unknown = await http.post("/api/feedback", json={"answer_id": uuid.uuid4().hex, "value": 1})
    health = (await http.get("/api/health")).json()
    return follow, rated, unknown, health


def _check_ui(backend: Backend, thread_id: str, resumed: Any, follow: Any) -> None:
    assert isinstance(resumed, dict), resumed  # not a resume error
    assert resumed["id"] == thread_id
    assert follow.router is not None
    assert COMBINED in follow.router["output"]  # routed with the question asked before
    assert "30-day money-back guarantee" in follow.reply
    assert follow.thread_id == thread_id
    # In the database: the thread (alice's), both turns, and every step of them.
    owner = backend.query('SELECT "userIdentifier" FROM threads WHERE id = ?', (thread_id,))
    assert owner == [("alice",)]
    turns = backend.query(
        "SELECT question, standalone_question, face, user_identifier, outcome, entry_ids "
        "FROM faqbot_turns WHERE thread_id = ? ORDER BY created_at",
        (thread_id,),
    )
    assert turns == [
        (REFUND_Q, REFUND_Q, "ui", "alice", "answered", json.dumps([REFUND_ID])),
        (FOLLOW_UP, COMBINED, "ui", "alice", "answered", json.dumps([REFUND_ID])),
    ]
    kinds = backend.query(
        'SELECT "type", count(*) FROM steps WHERE "threadId" = ? AND "type" <> ? '
        'GROUP BY "type" ORDER BY "type"',
        (thread_id, "run"),
    )
    assert kinds == [("assistant_message", 2), ("tool", 2), ("user_message", 2)]


def _check_api(
    backend: Backend, first: Any, follow: Any, rated: Any, unknown: Any, health: Any
) -> None:
    assert follow["conversation_id"] == first["conversation_id"]  # continued, not restarted
    assert "30-day money-back guarantee" in follow["answer"]
    assert rated.status_code == 200, rated.text
    assert rated.json()["value"] == -1
    assert unknown.status_code == 404
    assert unknown.json()["error_code"] == "HTTP_404"
    assert health["persistence"]["backend"] == backend.kind
    assert health["persistence"]["failed_writes"] == 0
    conversation = first["conversation_id"]
    turns = backend.query(
        "SELECT id, question, standalone_question, face, category, entry_ids, faq_version "
        "FROM faqbot_turns WHERE thread_id = ? ORDER BY created_at",
        (conversation,),
    )
    assert [t[0] for t in turns] == [first["answer_id"], follow["answer_id"]]
    assert [t[2] for t in turns] == [REFUND_Q, COMBINED]  # the follow-up had the old context
    assert {t[3] for t in turns} == {"api"}
    assert {t[4] for t in turns} == {"sales"}
    assert [json.loads(t[5]) for t in turns] == [[REFUND_ID], [REFUND_ID]]
    assert turns[0][6]  # the FAQ version answered from
    steps = backend.query(
        'SELECT "type", "output", "metadata" FROM steps WHERE "threadId" = ? ORDER BY "createdAt"',
        (conversation,),
    )
    assert [s[0] for s in steps] == ["user_message", "tool", "assistant_message"] * 2
    assert steps[3][1] == FOLLOW_UP
    assert "Topic: **sales**" in steps[4][1]
    answer_meta = json.loads(steps[5][2])["faqbot"]
    assert answer_meta["entry_ids"] == [REFUND_ID]
    assert answer_meta["outcome"] == "answered"
    assert answer_meta["turn_id"] == follow["answer_id"]
    assert json.loads(steps[4][2])["faqbot"]["category"] == "sales"
    feedback = backend.query(
        'SELECT f."value", f."comment", t.entry_ids, t.confidence, t.faq_version '
        'FROM feedbacks f JOIN faqbot_turns t ON t.id = f."forId"'
    )
    assert len(feedback) == 1
    value, comment, entry_ids, confidence, version = feedback[0]
    assert (value, comment, entry_ids) == (0, "too short", json.dumps([REFUND_ID]))
    assert 0 < confidence <= 1
    assert version == turns[1][6]


async def test_anonymous_chat_turns_and_native_thumbs_are_stored(tmp_path: Path) -> None:
    """Without sign-in the chat is open as before, and still stored: Chainlit's own thumbs
    (PUT /feedback, as the UI sends it) land next to the answer's turn row, and a rating of the
    same answer through POST /api/feedback (the widget's way) replaces it."""
    data = tmp_path / "data"
    with chainlit_server({"DATA_DIR": str(data)}) as url:
        async with ChatClient(url) as chat:
            turn = await chat.ask(REFUND_Q)
            answer_id = turn.replies[-1]["id"]
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                resp = await http.put(
                    "/feedback",
                    json={
                        "sessionId": chat.session_id,
                        "feedback": {"forId": answer_id, "threadId": turn.thread_id,
                                     "value": 0, "comment": "not what I asked"},
                    },
                )  # fmt: skip
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                # the widget's way: the API with the chat answer's id replaces the thumbs
                api = await http.post(
                    "/api/feedback", json={"answer_id": answer_id, "value": 1, "comment": "ok"}
                )
    assert resp.status_code == 200, resp.text
    assert api.status_code == 200, api.text
    assert api.json()["feedback_id"] == resp.json()["feedbackId"]
    con = sqlite3.connect(data / "faqbot.db")
    try:
        thread = con.execute('SELECT "userId", "name" FROM threads').fetchall()
        rows = con.execute(
            'SELECT t.face, t.question, f."value", f."comment" '
            'FROM feedbacks f JOIN faqbot_turns t ON t.id = f."forId"'
        ).fetchall()
    finally:
        con.close()
    assert thread == [(None, REFUND_Q)]
    assert rows == [("ui", REFUND_Q, 1, "ok")]


async def test_persistence_off_stores_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with chainlit_server({"DATA_DIR": str(data), "PERSISTENCE": "false"}) as url:
        async with ChatClient(url) as chat:
            turn = await chat.ask(REFUND_Q)
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            answer = (await http.post("/api/chat", json={"question": REFUND_Q})).json()
            rated = await http.post("/api/feedback", json={"answer_id": "abc", "value": 1})
            health = (await http.get("/api/health")).json()
    assert "30-day money-back guarantee" in turn.reply
    assert answer["answer_id"] is None
    assert rated.status_code == 503
    assert health["persistence"] is None
    assert not (data / "faqbot.db").exists()


def concurrent_writers(url: str, sessions: int, seconds: float) -> tuple[int, float]:
    """`sessions` chat sessions asking question after question for `seconds`; returns the
    answers received (each a finished turn) and the elapsed time. Shared by bench/persist.py."""
    questions = {
        REFUND_Q: "30-day money-back guarantee",
        "Which payment methods do you accept?": "Visa, Mastercard",
        "Can I schedule reports?": "daily, weekly or monthly",
    }
    asked = list(questions)

    async def one(i: int) -> int:
        done = 0
        # one address per session, as 20 visitors (the per-client caps do not mix them up)
        address = loopback_address(i) if loopback_aliases_work() else None
        async with ChatClient(url, local_addr=address) as chat:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                question = asked[(i + done) % len(asked)]
                turn = await chat.ask(question, wait_s=60)
                assert turn.errors == []
                assert questions[question] in turn.reply, turn.reply  # a real answer
                done += 1
        return done

    async def all_sessions() -> int:
        return sum(await asyncio.gather(*(one(i) for i in range(sessions))))

    started = time.monotonic()
    answered = asyncio.run(all_sessions())
    return answered, time.monotonic() - started


def test_concurrent_sessions_lose_no_row(backend: Backend) -> None:
    """20 sessions write at once for PERSIST_TEST_SECONDS (5 s here; bench/persist.py runs the
    full 30 s): every answered turn has its row, its question and its answer step."""
    seconds = float(os.environ.get("PERSIST_TEST_SECONDS", "5"))
    env = {**backend.env, "RATE_LIMIT_REQUESTS": "100000", "MAX_STREAMS_PER_CLIENT": "0"}
    with chainlit_server(env) as url:
        answered, _ = concurrent_writers(url, 20, seconds)
        health = httpx.get(f"{url}/api/health", timeout=30).json()
    assert answered >= 20
    assert health["persistence"]["failed_writes"] == 0
    assert backend.query("SELECT count(*) FROM faqbot_turns") == [(answered,)]
    steps = backend.query(
        'SELECT "type", count(*) FROM steps WHERE "type" IN (?, ?) GROUP BY "type" ORDER BY "type"',
        ("assistant_message", "user_message"),
    )
    assert steps == [("assistant_message", answered), ("user_message", answered)]
    assert backend.query("SELECT count(DISTINCT thread_id) FROM faqbot_turns") == [(20,)]


async def test_kill_9_mid_stream_keeps_every_finished_turn(
    tmp_path: Path, fake_openai: Any
) -> None:
    """The server is killed (SIGKILL) while an answer streams: the next start opens the SQLite
    database cleanly (integrity check), with every turn that had finished, and answers."""
    data = tmp_path / "data"
    env = {
        "DATA_DIR": str(data), "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": fake_openai.base_url, "OPENAI_MAX_RETRIES": "0",
        "OPENAI_TIMEOUT": "60", "LLM_BUDGET_SECONDS": "120", "ANSWER_CACHE_TTL": "0",
    }  # fmt: skip
    finished = ["Which payment methods do you accept?", "Can I schedule reports?", REFUND_Q]
    with chainlit_server(env) as url:
        async with ChatClient(url) as chat:
            for question in finished:
                turn = await chat.ask(question)
                assert turn.replies, turn.events
            fake_openai.tokens_per_second = 2.0  # the next answer streams slowly
            await chat.sio.emit(
                "client_message",
                {"message": {"id": str(uuid.uuid4()), "threadId": "", "name": "User",
                             "type": "user_message", "output": "Can I export reports to PDF?",
                             "createdAt": "2026-11-30T00:00:00Z"}, "fileReferences": []},
            )  # fmt: skip
            deadline = time.monotonic() + 30
            while len(chat._turn.tokens) < 3:  # mid-stream: some tokens are out
                assert time.monotonic() < deadline, chat._turn.events
                await asyncio.sleep(0.05)
            os.kill(server_pid(url), signal.SIGKILL)
            await asyncio.sleep(0.5)
    fake_openai.tokens_per_second = None
    con = sqlite3.connect(data / "faqbot.db")
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        con.close()
    with chainlit_server(env) as url:
        async with ChatClient(url) as chat:
            after = await chat.ask(REFUND_Q)
        assert after.replies
    con = sqlite3.connect(data / "faqbot.db")
    try:
        rows = con.execute("SELECT question FROM faqbot_turns ORDER BY created_at").fetchall()
        questions = [r[0] for r in rows]
        answers = con.execute(
            "SELECT count(*) FROM steps WHERE \"type\" = 'assistant_message'"
        ).fetchone()
    finally:
        con.close()
    assert questions == [*finished, REFUND_Q]  # the killed turn never finished: not a turn
    assert answers == (4,)
