"""Chainlit's own `PUT /feedback` and `DELETE /feedback`, and `POST /api/feedback`, on a real
`chainlit run` with its SQLite file (issue 20, findings 3, 5 and 13).

A chat turn is asked over socket.io as the UI asks it; the thumbs are sent as the UI sends them
(`forId` = the `on_message` run the buttons sit under, DESIGN.md section 4). What was stored is
read back from the database file; what the owners see, from /api/analytics (the data of /admin).
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from faqbot.passwords import MIN_ITERATIONS, hash_password
from tests.e2e_support import (
    ChatClient,
    Turn,
    chainlit_server,
    loopback_aliases_work,
    server_logs_on_failure,
    sign_in,
)

pytestmark = pytest.mark.chainlit
REFUND_Q = "What is your refund policy?"
REFUND_ID = "sales-what-is-your-refund-policy"
TOKEN = "feedback-admin-token-0123456789"


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("feedback") / "data"


@pytest.fixture(scope="module")
def app_url(data_dir: Path) -> Iterator[str]:
    env = {
        "DATA_DIR": str(data_dir),
        "RATE_LIMIT_REQUESTS": "1000",  # the data layer's rules, not the rate limit, are tested
        "ANALYTICS_ENABLED": "true",
        "ADMIN_TOKEN": TOKEN,
    }
    with chainlit_server(env) as url:
        yield url


def run_and_answer(turn: Turn) -> tuple[str, str]:
    """(the on_message run the UI's thumbs name, the answer message) of a turn."""
    runs = {
        m["id"] for m in turn.messages if m.get("type") == "run" and m.get("name") == "on_message"
    }
    assert len(runs) == 1, turn.messages
    return runs.pop(), str(turn.replies[-1]["id"])


def feedback_rows(data_dir: Path, for_ids: set[str] | None = None) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(data_dir / "faqbot.db")
    try:
        found = con.execute('SELECT "id", "forId", "value", "comment" FROM feedbacks').fetchall()
    finally:
        con.close()
    return [r for r in found if for_ids is None or r[1] in for_ids]


def thumbs(session: str, for_id: str, value: int = 0, **extra: Any) -> dict[str, Any]:
    return {"sessionId": session, "feedback": {"forId": for_id, "value": value, **extra}}


async def disliked(http: httpx.AsyncClient) -> dict[str, int]:
    report = await http.get("/api/analytics?since=1d", headers={"authorization": f"Bearer {TOKEN}"})
    assert report.status_code == 200, report.text
    return {e["entry_id"]: e["down"] for e in report.json()["disliked_entries"]}


async def test_a_burst_of_thumbs_down_is_one_rating_counted_against_the_answer(
    app_url: str, data_dir: Path
) -> None:
    """Finding 5 (201 thumbs-down from one client all stored, /admin listing the entry first)
    and finding 13 (the UI's thumbs, on the run, never counted): 200 PUTs from one client with
    the UI's forId leave one rating, on the answer, and /admin's data counts one thumbs-down;
    the same client's POST /api/feedback replaces it; another address adds its own."""
    async with ChatClient(app_url) as chat:
        run, answer = run_and_answer(await chat.ask(REFUND_Q))
        async with httpx.AsyncClient(base_url=app_url, timeout=60) as http:
            sent = await asyncio.gather(*(
                http.put("/feedback", json=thumbs(chat.session_id, run, 0, id=str(uuid.uuid4())))
                for _ in range(200)
            ))  # fmt: skip
            assert {r.status_code for r in sent} == {200}, sent[0].text
            ids = {r.json()["feedbackId"] for r in sent}
            assert len(ids) == 1
            assert feedback_rows(data_dir, {run, answer}) == [(ids.pop(), answer, 0, None)]
            assert (await disliked(http)).get(REFUND_ID) == 1
            api = await http.post(
                "/api/feedback", json={"answer_id": answer, "value": 1, "comment": "ok now"}
            )
            assert api.status_code == 200, api.text
            assert api.json()["feedback_id"] == sent[0].json()["feedbackId"]
        assert feedback_rows(data_dir, {run, answer}) == [
            (api.json()["feedback_id"], answer, 1, "ok now")
        ]
        if loopback_aliases_work():
            transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
            async with httpx.AsyncClient(base_url=app_url, transport=transport) as other:
                again = await other.put("/feedback", json=thumbs(chat.session_id, run, 0))
            assert again.status_code == 200, again.text
            assert sorted(r[2] for r in feedback_rows(data_dir, {run, answer})) == [0, 1]


async def test_refusals_are_4xx_and_store_nothing(app_url: str, data_dir: Path) -> None:
    """Finding 3 (a 3 MB comment on an unknown forId stored): an unknown or malformed forId,
    or a comment over 1,000 characters (below the front door's 16 KiB body cap) is refused
    with a 4xx, never Chainlit's 500, and nothing is stored; so is deleting someone else's
    rating."""
    async with ChatClient(app_url) as chat:
        run, answer = run_and_answer(await chat.ask(REFUND_Q))
        session = chat.session_id
        async with httpx.AsyncClient(base_url=app_url, timeout=60) as http:
            unknown = await http.put("/feedback", json=thumbs(session, str(uuid.uuid4())))
            malformed = await http.put("/feedback", json=thumbs(session, "x' OR 1=1 --"))
            long = await http.put("/feedback", json=thumbs(session, run, comment="x" * 1500))
            assert (unknown.status_code, malformed.status_code) == (404, 400), unknown.text
            assert long.status_code == 422, long.text
            assert "1,000 characters" in long.json()["detail"]
            assert feedback_rows(data_dir, {run, answer}) == []
            mine = await http.put("/feedback", json=thumbs(session, run, comment="y" * 1000))
            assert mine.status_code == 200, mine.text
            feedback_id = mine.json()["feedbackId"]
            if loopback_aliases_work():
                transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
                async with httpx.AsyncClient(base_url=app_url, transport=transport) as other:
                    stolen = await other.request(
                        "DELETE", "/feedback", json={"feedbackId": feedback_id}
                    )
                assert stolen.status_code == 404, stolen.text
            assert len(feedback_rows(data_dir, {answer})) == 1
            deleted = await http.request("DELETE", "/feedback", json={"feedbackId": feedback_id})
            assert deleted.status_code == 200, deleted.text
    assert feedback_rows(data_dir, {run, answer}) == []


@pytest.fixture(scope="module")
def signed_in_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("feedback-sign-in") / "data"
    users = ",".join(
        f"{name}:{hash_password(name + '-pw', iterations=MIN_ITERATIONS)}"
        for name in ("alice", "bob")
    )
    env = {
        "DATA_DIR": str(data),
        "AUTH_USERS": users,
        "CHAINLIT_AUTH_SECRET": "a-test-secret-for-signing-chainlit-sessions-0123456789",
        "RATE_LIMIT_REQUESTS": "1000",
    }
    with chainlit_server(env) as url:
        yield url, data


async def test_with_sign_in_only_the_owner_rates_an_answer(
    signed_in_url: tuple[str, Path],
) -> None:
    """Finding 5: alice's PUT /feedback on bob's answer (by its run or its own id) is a 404
    and stores nothing; bob's is stored against his answer."""
    url, data = signed_in_url
    bob = await sign_in(url, "bob", "bob-pw")
    alice = await sign_in(url, "alice", "alice-pw")
    async with ChatClient(url, headers=bob) as chat:
        run, answer = run_and_answer(await chat.ask(REFUND_Q))
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            by_alice = [
                await http.put("/feedback", json=thumbs(chat.session_id, for_id), headers=alice)
                for for_id in (run, answer)
            ]
            anonymous = await http.put("/feedback", json=thumbs(chat.session_id, run))
            assert [r.status_code for r in by_alice] == [404, 404], by_alice[0].text
            assert anonymous.status_code == 401
            assert feedback_rows(data, {run, answer}) == []
            by_bob = await http.put("/feedback", json=thumbs(chat.session_id, run), headers=bob)
            assert by_bob.status_code == 200, by_bob.text
    assert [r[1:3] for r in feedback_rows(data, {run, answer})] == [(answer, 0)]
