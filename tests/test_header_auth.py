"""Sign-in behind an authenticating proxy (AUTH_HEADER): the header names the user, its absence
signs nobody in (the chat and /api alike), and the user's threads are stored under that name."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
import socketio

from tests.e2e_support import ChatClient, chainlit_server

pytestmark = pytest.mark.chainlit


async def test_the_proxy_header_signs_the_user_in(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        "DATA_DIR": str(data),
        "AUTH_HEADER": "X-Forwarded-User",
        "CHAINLIT_AUTH_SECRET": "header-test-secret-" + "z" * 45,
    }
    with chainlit_server(env) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            config = (await http.get("/auth/config")).json()
            anonymous = await http.post("/auth/header")
            # /api is behind the same sign-in (issue 20): the proxy's header, or the session
            question = {"question": "What is your refund policy?"}
            api_anonymous = await http.post("/api/chat", json=question)
            api_by_header = await http.post(
                "/api/chat", json=question, headers={"X-Forwarded-User": "bob"}
            )
            signed = await http.post("/auth/header", headers={"X-Forwarded-User": "bob"})
        assert api_anonymous.status_code == 401
        assert api_by_header.status_code == 200, api_by_header.text
        assert config["requireLogin"] is True
        assert config["headerAuth"] is True
        assert config["passwordAuth"] is False
        assert anonymous.status_code == 401
        assert signed.status_code == 200, signed.text
        cookie = "; ".join(f"{k}={v}" for k, v in signed.cookies.items())
        with pytest.raises(socketio.exceptions.ConnectionError):
            async with ChatClient(url, connect_timeout=5):  # no cookie: refused
                pass
        async with ChatClient(url, headers={"Cookie": cookie}) as chat:
            turn = await chat.ask("What is your refund policy?")
    assert "30-day money-back guarantee" in turn.reply
    con = sqlite3.connect(data / "faqbot.db")
    try:
        owner = con.execute(
            'SELECT "userIdentifier" FROM threads WHERE id = ?', (turn.thread_id,)
        ).fetchall()
        user = con.execute("SELECT face, user_identifier FROM faqbot_turns").fetchall()
    finally:
        con.close()
    assert owner == [("bob",)]
    assert sorted(user, key=str) == [("api", "bob"), ("ui", "bob")]  # the API's turn is bob's too
