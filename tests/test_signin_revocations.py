"""The revocation list and the session check on their own (issue 20, item 11): real SQLite,
a real ASGI app, tokens signed with PyJWT as Chainlit signs them.

The end-to-end behaviour on `chainlit run` is in tests/test_signin_sessions.py; here are the
edges: chunked cookies, a bearer token, a sign-in answer that sets the cookie anew, a database
that fails, and what a refused websocket handshake gets.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from faqbot.passwords import MIN_ITERATIONS, hash_password
from faqbot.store.revocations import RevocationList, load, revoke
from faqbot.web.session_check import SessionCheck, SessionPolicy

SECRET = "revocation-unit-test-secret-" + "r" * 40


def token(identifier: str, provider: str = "password", issued: float | None = None) -> str:
    now = int(issued if issued is not None else time.time())
    claims = {"identifier": identifier, "metadata": {"provider": provider}, "iat": now,
              "exp": now + 3600}  # fmt: skip
    return jwt.encode(claims, SECRET, algorithm="HS256")


def cookie(**values: str) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in values.items())}


def decode(value: str) -> dict[str, Any]:
    return dict(jwt.decode(value, SECRET, algorithms=["HS256"]))


async def who(request: Request) -> JSONResponse:
    """What the app behind the check sees: the session cookie(s) and the bearer."""
    response = JSONResponse(
        {"cookies": sorted(request.cookies), "bearer": "authorization" in request.headers}
    )
    if request.query_params.get("sign_in"):
        response.set_cookie("access_token", token("alice"))  # a sign-in sets it anew
    return response


async def socket(ws: WebSocket) -> None:
    await ws.accept()
    try:
        while True:
            text = await ws.receive_text()
            await ws.send_text(f"echo {text}")
    except WebSocketDisconnect:  # as engineio does: the client left, the session ends
        return


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    return create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'faqbot.db'}")


def app_with(policy: SessionPolicy) -> Any:
    inner = Starlette(routes=[Route("/who", who), WebSocketRoute("/ws", socket)])
    return SessionCheck(inner, decode=decode, policy=policy, recheck_s=0.0)


def settings_with(make_settings: Any, *users: str) -> Any:
    entries = ",".join(f"{u}:{hash_password('pw', iterations=MIN_ITERATIONS)}" for u in users)
    return make_settings(auth_users=entries)


async def test_revocations_are_stored_as_digests_and_read_back(engine: Any) -> None:
    await revoke(engine, "alice@example.com", at=1_700_000_000.5)
    stored = await load(engine)
    assert list(stored.values()) == [1_700_000_000.5]
    assert "alice@example.com" not in repr(stored)  # the erased user's name is not kept
    listed = RevocationList(engine, refresh_s=0.0)
    assert await listed.revoked_at("alice@example.com") == 1_700_000_000.5
    assert await listed.revoked_at("bob") is None
    await engine.dispose()


async def test_a_failing_database_keeps_the_last_good_copy(engine: Any) -> None:
    await revoke(engine, "alice")
    listed = RevocationList(engine, refresh_s=0.0)
    assert await listed.revoked_at("alice") is not None
    await engine.dispose()
    broken = RevocationList(create_async_engine("sqlite+aiosqlite:////nonexistent/x.db"), 0.0)
    assert await broken.revoked_at("alice") is None  # never read: nobody is locked out
    listed.engine = broken.engine
    assert await listed.revoked_at("alice") is not None  # kept, not forgotten


async def test_a_refused_session_reaches_the_app_without_its_credentials(
    engine: Any, make_settings: Any
) -> None:
    policy = SessionPolicy(settings_with(make_settings, "alice", "bob"), RevocationList(engine, 0))
    old = token("alice", issued=time.time() - 60)
    await revoke(engine, "alice")
    transport = httpx.ASGITransport(app=app_with(policy))
    async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as http:
        chunked = cookie(access_token_0=old[:40], access_token_1=old[40:], theme="dark")
        seen = await http.get("/who", headers={**chunked, "Authorization": f"Bearer {old}"})
        assert seen.json() == {"cookies": ["theme"], "bearer": False}
        cleared = seen.headers.get_list("set-cookie")
        assert sorted(c.split("=")[0] for c in cleared) == ["access_token_0", "access_token_1"]
        assert all("Max-Age=0" in c and "Path=/" in c for c in cleared)
        # A sign-in answer sets the cookie anew: it is not cleared after it
        again = await http.get("/who?sign_in=1", headers=cookie(access_token=old))
        assert [c.split("=")[0] for c in again.headers.get_list("set-cookie")] == ["access_token"]
        assert "Max-Age=0" not in again.headers["set-cookie"]
        # A session issued after the revocation, other users, other bearer tokens: untouched
        await asyncio.sleep(1.1)
        fresh = await http.get("/who", headers=cookie(access_token=token("alice")))
        assert fresh.json()["cookies"] == ["access_token"]
        bob = await http.get("/who", headers=cookie(access_token=token("bob")))
        assert bob.json()["cookies"] == ["access_token"]
        admin = await http.get("/who", headers={"Authorization": "Bearer an-admin-token-0123"})
        assert admin.json()["bearer"] is True
    await engine.dispose()


def test_removed_users_and_switched_off_sign_ins_are_refused(make_settings: Any) -> None:
    policy = SessionPolicy(settings_with(make_settings, "alice"))
    claims = decode(token("carol"))  # not in AUTH_USERS (any more)
    assert asyncio.run(policy.refusal(claims)) == "removed"
    assert asyncio.run(policy.refusal(decode(token("alice")))) is None
    assert asyncio.run(policy.refusal(decode(token("dave", provider="header")))) == "removed"
    partner = decode(token("visitor-1", provider="partner-site"))  # a widget visitor's token
    assert asyncio.run(policy.refusal(partner)) is None


def test_a_refused_websocket_is_closed_and_an_open_one_at_its_next_message(
    make_settings: Any,
) -> None:
    settings = settings_with(make_settings, "alice", "bob")
    app = app_with(SessionPolicy(settings))
    client = TestClient(app)
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/ws", headers=cookie(access_token=token("carol"))),
    ):
        pass
    assert refused.value.code == 1008
    with client.websocket_connect("/ws", headers=cookie(access_token=token("bob"))) as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "echo hi"
        settings.auth_users.pop("bob")  # bob removed while his socket is open
        ws.send_text("still there?")
        closed = ws.receive()
        assert closed["type"] == "websocket.close"
        assert closed["code"] == 1008
