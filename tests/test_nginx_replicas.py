"""Two `chainlit run` replicas behind nginx (the shipped config), sharing one real Redis.

What scale-out must keep (issue 13), with sign-in on and the real PostgreSQL: a chat session
streams through nginx (socket.io over a websocket, and a real browser); an API conversation
started on replica A continues on replica B; the rate limit counts one client across both
replicas; an FAQ edit reaches both; Redis dying under load costs no answer; when replica A stops,
a signed-in thread started on A is resumed on B with its history and an API conversation goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from faqbot.passwords import hash_password
from tests.browser_support import browser_page, send_message
from tests.e2e_support import (
    ROOT,
    ChatClient,
    chainlit_server,
    free_port,
    server_logs_on_failure,
    sign_in,
)
from tests.nginx_support import NGINX, Nginx, nginx_in_front
from tests.redis_support import REDIS_SERVER, ThrowawayRedis
from tests.store_support import Backend, fresh_backend

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)"),
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server binary is not installed"),
]
LIMIT = 8
PASSWORD = "correct horse battery staple"
REFUND_Q = "What is your refund policy?"
QUESTION = "Do you offer discounts for annual subscriptions?"
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."


@dataclass
class Cluster:
    front: Nginx
    replicas: list[str]  # base URLs of A and B
    redis: ThrowawayRedis
    stop_a: contextlib.ExitStack
    faqs: Path
    database: Backend


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    faqs = tmp_path_factory.mktemp("shared") / "faqs"  # the folder both replicas watch
    shutil.copytree(ROOT / "faqs", faqs)
    front_port = free_port()
    database = fresh_backend("postgresql", tmp_path_factory.mktemp("pg"))  # the real server
    pg_env = next(database)  # skips, saying why, when PostgreSQL is absent
    server = ThrowawayRedis(free_port())
    server.start()
    env = {
        "AUTH_USERS": f"alice:{hash_password(PASSWORD, iterations=100_000)}",
        "CHAINLIT_AUTH_SECRET": "the-same-auth-secret-on-every-replica-" + "y" * 30,
        "DATABASE_URL": pg_env.env["DATABASE_URL"],
        "DATABASE_SCHEMA": pg_env.env["DATABASE_SCHEMA"],
        "FAQ_DIR": str(faqs),
        "REDIS_URL": server.url,
        "CONVERSATION_SECRET": "the-same-secret-on-every-replica-42",
        "RATE_LIMIT_REQUESTS": str(LIMIT),
        "CORS_ORIGINS": f"http://127.0.0.1:{front_port}",
        "PUBLIC_API": "true",  # the API's scale-out is tested anonymously (sign-in guards the UI)
    }
    try:
        with contextlib.ExitStack() as stack:
            a_stack = stack.enter_context(contextlib.ExitStack())
            a = a_stack.enter_context(chainlit_server(env))
            b = stack.enter_context(chainlit_server(env))
            hosts = [u.removeprefix("http://") for u in (a, b)]
            front = stack.enter_context(nginx_in_front(hosts, port=front_port))
            yield Cluster(front, [a, b], server, a_stack, faqs, pg_env)
    finally:
        server.kill()
        next(database, None)  # drops the test's schema


def _served_by(front: Nginx, marker: str) -> set[str]:
    """The replica addresses nginx used for requests whose log line contains `marker`."""
    return {line.rsplit(" ", 1)[-1] for line in front.access_log() if marker in line}


async def test_a_chat_session_streams_through_nginx(cluster: Cluster) -> None:
    headers = await sign_in(cluster.front.url, "alice", PASSWORD)
    async with ChatClient(cluster.front.url, headers=headers) as chat:
        turn = await chat.ask(QUESTION)
        follow = await chat.ask("and is there a refund if I change my mind?")
    assert turn.errors == []
    assert len(turn.tokens) > 1, "the answer arrived in several streamed pieces"
    assert DISCOUNT in turn.text
    assert follow.errors == []
    assert follow.text.strip()

    def upgraded() -> bool:  # nginx logs a websocket when it closes: wait for the line
        lines = [ln for ln in cluster.front.access_log() if "/ws/socket.io/" in ln]
        return any(" 101 " in ln for ln in lines)

    for _ in range(50):
        if upgraded():
            break
        await asyncio.sleep(0.1)
    assert upgraded(), "the websocket was upgraded through nginx"


def test_a_browser_session_streams_through_nginx(cluster: Cluster) -> None:
    with browser_page() as page:
        page.goto(cluster.front.url)  # type: ignore[attr-defined]
        page.fill("#email", "alice")  # type: ignore[attr-defined]
        page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
        page.locator("button[type=submit]").click()  # type: ignore[attr-defined]
        send_message(page, QUESTION)
        page.get_by_text(DISCOUNT).first.wait_for(timeout=20_000)  # type: ignore[attr-defined]
        page.locator('[id="step-FAQ lookup"]').first.wait_for()  # type: ignore[attr-defined]


async def test_an_api_conversation_started_on_a_continues_on_b(cluster: Cluster) -> None:
    a, b = cluster.replicas
    async with httpx.AsyncClient(timeout=20) as http:
        first = (await http.post(f"{a}/api/chat", json={"question": QUESTION})).json()
        follow = await http.post(
            f"{b}/api/chat",
            json={
                "question": "and what is your refund policy?",
                "conversation_id": first["conversation_id"],
                "conversation_token": first["conversation_token"],
            },
        )
    assert follow.status_code == 200, follow.text
    assert follow.json()["conversation_id"] == first["conversation_id"]  # B accepted A's token
    stored = cluster.redis.client().get(f"faqbot:conversation:{first['conversation_id']}")
    assert stored is not None
    assert QUESTION in stored.decode()  # A's turn, read by B ...
    assert "refund policy" in stored.decode()  # ... and B's appended to it
    turns = cluster.database.query(
        "SELECT question FROM faqbot_turns WHERE thread_id = ? ORDER BY created_at",
        (first["conversation_id"],),
    )
    assert [t[0] for t in turns] == [QUESTION, "and what is your refund policy?"]


async def test_the_rate_limit_counts_one_client_across_both_replicas(cluster: Cluster) -> None:
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.77")
    async with httpx.AsyncClient(transport=transport, timeout=20) as http:
        codes = [
            (
                await http.post(f"{cluster.front.url}/api/chat", json={"question": QUESTION})
            ).status_code
            for _ in range(LIMIT + 2)
        ]
    assert codes == [200] * LIMIT + [429, 429]
    used = _served_by(cluster.front, '127.0.0.77 "POST /api/chat')
    assert len(used) == 2, f"both replicas served this client: {used}"


def _versions(cluster: Cluster) -> list[str]:
    return [
        httpx.get(f"{u}/api/health", timeout=10).json()["knowledge_version"]
        for u in cluster.replicas
    ]


def test_an_faq_edit_reaches_every_replica_with_the_same_version(cluster: Cluster) -> None:
    before = _versions(cluster)
    assert before[0] == before[1], "replicas on the same files report the same version"
    sales = cluster.faqs / "sales.txt"
    sales.write_text(
        sales.read_text() + "\nQ: Do you sell gift cards?\nA: Yes, from $25, by e-mail.\n"
    )
    deadline = time.monotonic() + 20
    while (now := _versions(cluster)) != [now[0], now[0]] or now[0] == before[0]:
        assert time.monotonic() < deadline, f"replicas did not converge: {before} -> {now}"
        time.sleep(0.3)
    answered = httpx.post(
        f"{cluster.front.url}/api/chat", json={"question": "Do you sell gift cards?"}, timeout=10
    ).json()
    assert "from $25" in answered["answer"]


async def test_redis_dying_under_load_costs_no_answer_and_recovers(cluster: Cluster) -> None:
    """Traffic through nginx while Redis is killed and restarted: every question answered,
    both replicas say "degraded" while it is down and "ok" once it is back."""
    codes: list[int] = []

    async def visitor(i: int) -> None:
        transport = httpx.AsyncHTTPTransport(local_address=f"127.0.3.{i + 1}")
        async with httpx.AsyncClient(transport=transport, timeout=20) as http:
            for _ in range(LIMIT - 2):
                resp = await http.post(f"{cluster.front.url}/api/chat", json={"question": QUESTION})
                codes.append(resp.status_code)
                await asyncio.sleep(0.05)

    load = asyncio.gather(*(visitor(i) for i in range(8)))
    await asyncio.sleep(0.3)
    cluster.redis.kill()
    await asyncio.sleep(0.5)
    async with httpx.AsyncClient(timeout=10) as http:
        health = [(await http.get(f"{u}/api/health")).json() for u in cluster.replicas]
        await load
        assert [h["status"] for h in health] == ["degraded", "degraded"]
        assert all(h["not_ready"] for h in health)
        cluster.redis.start()
        await asyncio.sleep(0.3)
        health = [(await http.get(f"{u}/api/health")).json() for u in cluster.replicas]
    assert codes == [200] * (8 * (LIMIT - 2)), sorted(set(codes))
    assert [h["status"] for h in health] == ["ok", "ok"], [h["not_ready"] for h in health]


async def test_when_replica_a_stops_nginx_sends_all_to_b_and_conversations_go_on(
    cluster: Cluster,
) -> None:
    """Runs last in this module: it stops replica A. A signed-in chat thread started on A is
    resumed on B with its history; an API conversation goes on through nginx."""
    a = cluster.replicas[0]
    headers = await sign_in(a, "alice", PASSWORD)
    async with ChatClient(a, headers=headers) as chat:
        first_turn = await chat.ask(REFUND_Q)
    assert "30-day money-back guarantee" in first_turn.reply
    front = cluster.front.url
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.78")
    async with httpx.AsyncClient(transport=transport, timeout=20) as http:
        first = (await http.post(f"{front}/api/chat", json={"question": QUESTION})).json()
        cluster.stop_a.close()
        headers = await sign_in(front, "alice", PASSWORD)  # through nginx: only B is left
        async with ChatClient(front, headers=headers, thread_id=first_turn.thread_id) as chat:
            assert isinstance(chat.resumed, dict), chat.resumed
            follow_turn = await chat.ask("and is that for new subscriptions only?")
        assert follow_turn.router is not None
        assert REFUND_Q in follow_turn.router["output"]  # B routed it with A's question
        assert "30-day money-back guarantee" in follow_turn.reply
        assert follow_turn.thread_id == first_turn.thread_id
        await asyncio.sleep(0.2)
        answers: list[dict[str, Any]] = []
        for question in ("and what is your refund policy?", "which payment methods?"):
            resp = await http.post(
                f"{front}/api/chat",
                json={
                    "question": question,
                    "conversation_id": first["conversation_id"],
                    "conversation_token": first["conversation_token"],
                },
            )
            assert resp.status_code == 200, resp.text
            answers.append(resp.json())
    assert {r["conversation_id"] for r in answers} == {first["conversation_id"]}
    stored = redis.Redis.from_url(cluster.redis.url).get(
        f"faqbot:conversation:{first['conversation_id']}"
    )
    assert stored is not None
    assert stored.decode().count('"user"') == 3  # all three turns, across the replicas
    b_host = cluster.replicas[1].removeprefix("http://")
    lines = [ln for ln in cluster.front.access_log() if '127.0.0.78 "POST /api/chat' in ln]
    assert lines[-1].endswith(b_host)
