"""Property: any string a client sends as a thread, step, feedback or session id, on any route
Chainlit serves or in the socket.io handshake, gets a 4xx (or is replaced by a new id), never
a 500 and never a row stored under that string unless it is a UUID (issue 20).

Against a real `chainlit run` with sign-in (a signed-in client reaches every route) and its
real SQLite file; hypothesis makes the strings (SQL, quotes, unicode, control characters, long).
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import socketio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faqbot.passwords import MIN_ITERATIONS, hash_password
from tests.e2e_support import PROFILE, chainlit_server, server_log

SECRET = "a-test-secret-for-signing-chainlit-sessions-0123456789"
TRIED: set[str] = set()  # every string sent as an id, checked against the database at the end

ids = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "x') OR 1=1 /*",
            "'; DROP TABLE steps; --",
            str(uuid.uuid4()).upper(),
            "{" + str(uuid.uuid4()) + "}",
            str(uuid.uuid4()) + "\x00",
            "",
            " ",
            "../../etc/passwd",
            "a" * 5000,
        ]
    ),
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ids")


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    users = f"alice:{hash_password('alice-pw', iterations=MIN_ITERATIONS)}"
    env = {
        "DATA_DIR": str(data_dir),
        "AUTH_USERS": users,
        "CHAINLIT_AUTH_SECRET": SECRET,
        "RATE_LIMIT_REQUESTS": "1000000",
    }
    with chainlit_server(env) as url:
        resp = httpx.post(f"{url}/login", data={"username": "alice", "password": "alice-pw"})
        resp.raise_for_status()
        yield url, {"Cookie": "; ".join(f"{k}={v}" for k, v in resp.cookies.items())}


def _requests(value: str) -> list[tuple[str, str, Any]]:
    """(method, path, JSON body) of every Chainlit route that takes an id, with `value`."""
    segment = quote(value, safe="")
    other = str(uuid.uuid4())
    return [
        ("GET", f"/project/thread/{segment}", None),
        ("GET", f"/project/thread/{other}", None),
        ("GET", f"/project/share/{segment}", None),
        ("GET", f"/project/thread/{other}/element/{segment}", None),
        ("PUT", "/feedback", {"sessionId": other, "feedback": {"forId": value, "value": 1}}),
        ("PUT", "/feedback", {"sessionId": value, "feedback": {"forId": other, "value": 0}}),
        (
            "PUT",
            "/feedback",
            {"sessionId": other, "feedback": {"forId": other, "id": value, "value": 1}},
        ),
        ("DELETE", "/feedback", {"feedbackId": value}),
        ("PUT", "/project/thread", {"threadId": value, "name": "renamed"}),
        ("DELETE", "/project/thread", {"threadId": value}),
        ("PUT", "/project/thread/share", {"threadId": value, "isShared": True}),
        ("POST", "/project/threads", {"pagination": {"first": 5, "cursor": value}, "filter": {}}),
        ("POST", "/project/action", {"sessionId": value, "action": {"id": value, "forId": value}}),
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=ids)
def test_http_routes_never_500_on_any_id(server: tuple[str, dict[str, str]], value: str) -> None:
    url, cookie = server
    TRIED.add(value)
    with httpx.Client(base_url=url, headers=cookie, timeout=30) as http:
        for method, path, body in _requests(value):
            resp = http.request(method, path, json=body)
            assert resp.status_code < 500, (method, path, value, resp.status_code, resp.text)


async def _handshake(url: str, cookie: dict[str, str], thread_id: str, session_id: str) -> None:
    client = socketio.AsyncClient(reconnection=False)
    auth = {
        "sessionId": session_id,
        "clientType": "webapp",
        "threadId": thread_id,
        "userEnv": "{}",
        "chatProfile": PROFILE,
    }
    try:
        await client.connect(
            url, headers=dict(cookie), auth=auth, socketio_path="/ws/socket.io",
            transports=["websocket"], wait_timeout=10,
        )  # fmt: skip
    except socketio.exceptions.ConnectionError:
        return  # refused: fine, as long as the server is fine
    try:
        await client.emit("connection_successful")
        message = {
            "id": thread_id, "threadId": thread_id, "name": "User", "type": "user_message",
            "output": "What is your refund policy?", "createdAt": "2026-01-01T00:00:00Z",
        }  # fmt: skip
        await client.emit("client_message", {"message": message, "fileReferences": []})
        await asyncio.sleep(0.3)
    finally:
        await client.disconnect()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=ids, as_session=st.booleans())
def test_handshake_takes_any_id_safely(
    server: tuple[str, dict[str, str]], value: str, as_session: bool
) -> None:
    url, cookie = server
    TRIED.add(value)
    session_id = value if as_session else str(uuid.uuid4())
    asyncio.run(_handshake(url, cookie, value, session_id))
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200


def test_no_id_was_stored_as_given_unless_a_uuid(
    server: tuple[str, dict[str, str]], data_dir: Path
) -> None:
    """Runs after the two properties above (file order): nothing they sent was kept as an id."""
    url, _ = server
    assert len(TRIED) > 20
    con = sqlite3.connect(data_dir / "faqbot.db")
    try:
        stored = {
            row[0]
            for sql in (
                "SELECT id FROM threads",
                "SELECT id FROM steps",
                'SELECT "threadId" FROM steps',
                "SELECT id FROM feedbacks",
                'SELECT "forId" FROM feedbacks',
            )
            for row in con.execute(sql)
        }
    finally:
        con.close()
    hostile = {v for v in TRIED if v and not _is_canonical_uuid(v)}
    assert not stored & hostile
    assert all(_is_canonical_uuid(str(v)) for v in stored if v is not None)
    log = server_log(url, tail=200_000)
    assert "Traceback" not in log, log[-3000:]


def _is_canonical_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
