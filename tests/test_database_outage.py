"""PostgreSQL killed (kill -9) during load: answers keep coming, nothing stored is lost, and the
app recovers by itself when the database returns (issue 13).

A throwaway PostgreSQL (tests/pg_support.py; never the machine's shared server) behind one
`chainlit run` replica. Questions go on while it is down: they are answered (200), health says
"degraded" and the replica not ready ("database unreachable"); after a restart (crash recovery
on the same data) every turn stored before the kill is still there, and new turns are stored
again without restarting the app.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e_support import chainlit_server, loopback_address, server_logs_on_failure
from tests.pg_support import BIN, ThrowawayPostgres, available

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(available() is not None, reason=str(available())),
]
QUESTIONS = (
    "Do you offer discounts for annual subscriptions?",
    "What is your refund policy?",
    "Which payment methods do you accept?",
)


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _count_turns(pg: ThrowawayPostgres) -> int:
    assert BIN is not None
    out = subprocess.run(
        [str(BIN / "psql"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "-tAc",
         "SELECT count(*) FROM faqbot_turns"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    return int(out.strip())


async def _ask_many(url: str, n: int, start: int) -> list[int]:
    async def one(i: int) -> int:
        transport = httpx.AsyncHTTPTransport(local_address=loopback_address(start + i))
        async with httpx.AsyncClient(transport=transport, timeout=30) as http:
            resp = await http.post(f"{url}/api/chat", json={"question": QUESTIONS[i % 3]})
            return resp.status_code

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def _health(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        body: dict[str, Any] = (await http.get(f"{url}/api/health")).json()
        body["ready_code"] = (await http.get(f"{url}/api/health/ready")).status_code
    return body


async def test_killing_postgres_costs_no_answer_loses_nothing_and_recovers(
    postgres: ThrowawayPostgres,
) -> None:
    with chainlit_server({"DATABASE_URL": postgres.url}) as url:
        assert await _ask_many(url, 12, 0) == [200] * 12
        stored_before = _count_turns(postgres)
        assert stored_before == 12
        assert (await _health(url))["ready_code"] == 200

        load = asyncio.ensure_future(_ask_many(url, 12, 100))
        postgres.kill()
        during = await load + await _ask_many(url, 12, 200)
        assert during == [200] * 24, "answers keep coming while the database is down"
        health = await _health(url)
        assert health["status"] == "degraded"
        assert health["ready_code"] == 503
        assert any("database" in reason for reason in health["not_ready"])

        postgres.start()  # crash recovery on the same data
        for _ in range(50):
            if (await _health(url))["ready_code"] == 200:
                break
            await asyncio.sleep(0.2)
        assert (await _health(url))["status"] == "ok"
        stored_after_restart = _count_turns(postgres)
        assert stored_after_restart >= stored_before  # nothing stored before the kill is lost
        assert await _ask_many(url, 6, 300) == [200] * 6
        assert _count_turns(postgres) == stored_after_restart + 6  # stored again, no restart
