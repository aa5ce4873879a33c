"""Sessions end with erasure and removal (issue 20, item 11), on a real `chainlit run`.

- After `python -m faqbot delete-user alice`, alice's cookie no longer works anywhere (Chainlit's
  routes 401 and the cookie is cleared, the socket.io handshake is refused, /api 401), her open
  chat socket is closed at its next message, and nothing of hers is re-created.
- A password user removed from AUTH_USERS (the app restarted without them) is refused on the
  token they still hold, which Chainlit alone would honour until it expires.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import socketio

from faqbot.passwords import MIN_ITERATIONS, hash_password
from tests.e2e_support import (
    ROOT,
    ChatClient,
    chainlit_server,
    server_log,
    server_logs_on_failure,
    sign_in,
)

pytestmark = pytest.mark.chainlit
SECRET = "sessions-test-secret-" + "s" * 44
QUESTION = "What is your refund policy?"


def _users(*names: str) -> str:
    return ",".join(f"{n}:{hash_password(n + '-pw', iterations=MIN_ITERATIONS)}" for n in names)


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


def _env(data: Path, users: str) -> dict[str, str]:
    return {"DATA_DIR": str(data), "AUTH_USERS": users, "CHAINLIT_AUTH_SECRET": SECRET}


def _rows(data: Path, identifier: str) -> dict[str, int]:
    with sqlite3.connect(data / "faqbot.db") as con:
        return {
            "users": con.execute(
                "SELECT COUNT(*) FROM users WHERE identifier = ?", (identifier,)
            ).fetchone()[0],
            "threads": con.execute(
                'SELECT COUNT(*) FROM threads WHERE "userIdentifier" = ?', (identifier,)
            ).fetchone()[0],
            "turns": con.execute(
                "SELECT COUNT(*) FROM faqbot_turns WHERE user_identifier = ?", (identifier,)
            ).fetchone()[0],
        }


def _delete_user(data: Path, identifier: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env |= {"DATA_DIR": str(data), "CHAINLIT_AUTH_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "faqbot", "delete-user", identifier],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _cleared(response: httpx.Response) -> bool:
    return any(
        value.startswith("access_token=") and "Max-Age=0" in value
        for value in response.headers.get_list("set-cookie")
    )


async def _refused_socket(url: str, cookie: dict[str, str]) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        async with ChatClient(url, headers=dict(cookie), connect_timeout=5):
            pass


async def test_delete_user_ends_the_users_sessions_and_nothing_comes_back(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    with chainlit_server(_env(data, _users("alice", "bob"))) as url:
        alice, bob = await sign_in(url, "alice", "alice-pw"), await sign_in(url, "bob", "bob-pw")
        async with ChatClient(url, headers=dict(alice)) as chat:
            await chat.ask(QUESTION)
        assert _rows(data, "alice") == {"users": 1, "threads": 1, "turns": 1}
        async with ChatClient(url, headers=dict(alice)) as open_chat:  # a tab left open
            out = await asyncio.to_thread(_delete_user, data, "alice")
            assert "sessions revoked" in out
            await asyncio.sleep(2.5)  # the socket's next message comes after the re-check
            with pytest.raises((AssertionError, socketio.exceptions.BadNamespaceError)):
                await open_chat.ask(QUESTION, wait_s=8)
            assert not open_chat.sio.connected
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=alice) as http:
            me = await http.get("/user")
            assert me.status_code == 401
            assert _cleared(me)
            api = await http.post("/api/chat", json={"question": QUESTION})
            assert api.status_code == 401, api.text
            threads = await http.post("/project/threads", json={"pagination": {"first": 20},
                                                                "filter": {}})  # fmt: skip
            assert threads.status_code == 401
        await _refused_socket(url, alice)
        assert _rows(data, "alice") == {"users": 0, "threads": 0, "turns": 0}
        async with ChatClient(url, headers=dict(bob)) as chat:  # others are untouched
            turn = await chat.ask(QUESTION)
        assert "30-day money-back guarantee" in turn.reply
        assert "Traceback" not in server_log(url, tail=200_000)  # the forced close was clean
        # A fresh sign-in is a new session: the erasure is of data, not of the account.
        await asyncio.sleep(1.1)  # (tokens carry whole seconds)
        again = await sign_in(url, "alice", "alice-pw")
        async with httpx.AsyncClient(base_url=url, timeout=30, headers=again) as http:
            assert (await http.get("/user")).status_code == 200


async def test_a_user_removed_from_auth_users_is_refused_on_the_old_token(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    with chainlit_server(_env(data, _users("alice", "bob"))) as url:
        bob = await sign_in(url, "bob", "bob-pw")
        alice = await sign_in(url, "alice", "alice-pw")
    with chainlit_server(_env(data, _users("alice"))) as url:  # bob removed, app restarted
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            me = await http.get("/user", headers=bob)
            assert me.status_code == 401
            assert _cleared(me)
            assert (await http.get("/user", headers=alice)).status_code == 200
        await _refused_socket(url, bob)
        async with ChatClient(url, headers=dict(alice)) as chat:
            turn = await chat.ask(QUESTION)
        assert "30-day money-back guarantee" in turn.reply
