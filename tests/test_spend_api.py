"""Spend limits over the HTTP API (issue 14): a spent token budget answers offline with
`fallback_reason` and a notice (JSON and SSE), health and metrics show the spend, and the cap on
answers in progress per client refuses the extra ones with a 429 while the others finish.

In process through httpx's ASGI transport (one transport per client address), and, for a client
that drops its stream, the API under uvicorn on a loopback port with a raw socket.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn

from faqbot.answering.bot import FaqBot
from faqbot.answering.factory import build_bot
from faqbot.spend import NOTICES, StreamSlots
from faqbot.state.conversations import ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.web.app import create_api
from tests import fake_openai as fo
from tests.e2e_support import free_port

pytestmark = pytest.mark.llm
QUESTION = "Do you offer discounts for annual subscriptions?"
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
TURN_TOKENS = 330  # router 100 + 10, answer 200 + 20 (scripted usage)
Client = Callable[[str], httpx.AsyncClient]


def script_turn(fake: Any) -> None:
    fake.script(
        fo.tool("faq_sales", usage=(100, 10), question=QUESTION),
        fo.text(DISCOUNT, usage=(200, 20)),
    )


def sse_events(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        if block.startswith(":"):
            continue  # keep-alive comment
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.fixture
def make_api(make_settings: Any, fake_openai: Any) -> Any:
    """(bot, streams, client factory by address) for an LLM bot with the given settings."""

    def make(**overrides: Any) -> tuple[FaqBot, StreamSlots, Client]:
        base: dict[str, Any] = {
            "openai_api_key": "test-key",
            "openai_base_url": fake_openai.base_url,
            "openai_max_retries": 0,
            "openai_timeout": 5.0,
            "answer_cache_size": 0,
            "spend_conversation_tokens": 0,
            "spend_client_daily_tokens": 0,
            "spend_deployment_daily_tokens": 0,
            "max_streams_per_client": 0,
        }
        base.update(overrides)
        settings = make_settings(**base)
        bot = build_bot(settings)
        streams = StreamSlots(settings.max_streams_per_client)
        api = create_api(
            lambda: bot, RateLimiter(1000, 60), settings, ConversationStore(), streams=streams
        )

        def client(address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(
                app=api, raise_app_exceptions=False, client=(address, 40000)
            )
            return httpx.AsyncClient(transport=transport, base_url="http://testserver")

        return bot, streams, client

    return make


async def test_chat_answers_offline_with_reason_and_notice_when_the_conversation_budget_is_spent(
    make_api: Any, fake_openai: Any
) -> None:
    _, _, client = make_api(spend_conversation_tokens=TURN_TOKENS)
    async with client("10.0.0.1") as api:
        script_turn(fake_openai)
        first = (await api.post("/chat", json={"question": QUESTION})).json()
        assert first["mode"] == "llm"
        assert first["fallback"] is False
        assert first["fallback_reason"] is None
        assert first["fallback_notice"] is None
        follow_up = {
            "question": QUESTION,
            "conversation_id": first["conversation_id"],
            "conversation_token": first["conversation_token"],
        }
        fake_openai.reset()
        resp = await api.post("/chat", json=follow_up)
        assert resp.status_code == 200
        body = resp.json()
        assert body["conversation_id"] == first["conversation_id"]
        assert body["mode"] == "offline"
        assert body["fallback"] is True
        assert body["fallback_reason"] == "budget_conversation"
        assert body["fallback_notice"] == NOTICES["conversation"]
        assert body["answer"] == DISCOUNT
        assert body["outcome"] == "answered"
        assert fake_openai.requests == []  # nothing reached the LLM

        resp = await api.post("/chat/stream", json=follow_up)
        assert resp.status_code == 200
        events = sse_events(resp.text)
        assert [name for name, _ in events][:2] == ["fallback", "route"]
        assert events[0][1] == {
            "reason": "budget_conversation",
            "message": NOTICES["conversation"],
        }
        done = events[-1]
        assert done[0] == "done"
        assert done[1]["fallback_reason"] == "budget_conversation"
        assert done[1]["answer"] == DISCOUNT
        assert fake_openai.requests == []

        script_turn(fake_openai)  # a new conversation has a budget of its own
        fresh = (await api.post("/chat", json={"question": QUESTION})).json()
        assert fresh["mode"] == "llm"
        assert len(fake_openai.requests) == 2


async def test_the_client_budget_follows_the_client_address_across_conversations(
    make_api: Any, fake_openai: Any
) -> None:
    _, _, client = make_api(spend_client_daily_tokens=TURN_TOKENS)
    async with client("10.0.0.1") as alice, client("10.0.0.2") as bob:
        script_turn(fake_openai)
        assert (await alice.post("/chat", json={"question": QUESTION})).json()["mode"] == "llm"
        fake_openai.reset()
        again = (await alice.post("/chat/stream", json={"question": QUESTION})).text
        assert ("fallback", {"reason": "budget_client", "message": NOTICES["client"]}) in (
            sse_events(again)
        )
        assert fake_openai.requests == []
        script_turn(fake_openai)
        assert (await bob.post("/chat", json={"question": QUESTION})).json()["mode"] == "llm"


async def test_health_and_metrics_show_the_spend_without_naming_anyone(
    make_api: Any, fake_openai: Any
) -> None:
    bot, _, client = make_api(
        spend_conversation_tokens=5000,
        spend_client_daily_tokens=9000,
        spend_deployment_daily_tokens=2 * TURN_TOKENS,
    )
    async with client("10.0.0.1") as alice, client("10.0.0.2") as bob:
        health = (await alice.get("/health")).json()
        assert health["status"] == "ok"
        assert health["spend"]["deployment_tokens_today"] == 0
        ids = []
        for api in (alice, bob):
            script_turn(fake_openai)
            ids.append((await api.post("/chat", json={"question": QUESTION})).json())
        metrics = (await alice.get("/metrics")).text
        limited_before = _metric(metrics, 'faqbot_spend_limited_turns_total{scope="deployment"}')
        over = (await bob.post("/chat", json={"question": QUESTION})).json()
        assert over["fallback_reason"] == "budget_deployment"
        assert over["fallback_notice"] == NOTICES["deployment"]

        health = (await alice.get("/health")).json()
        spend = health["spend"]
        assert spend["deployment_tokens_today"] == 2 * TURN_TOKENS
        assert spend["deployment_budget_reached"] is True
        assert spend["limits"] == {
            "conversation_tokens": 5000,
            "client_daily_tokens": 9000,
            "deployment_daily_tokens": 2 * TURN_TOKENS,
        }
        assert spend["backend"] == "memory"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", spend["day"])
        assert health["status"] == "degraded"  # every answer is offline until midnight UTC
        text = json.dumps(health)
        for private in (
            "10.0.0.1",
            "10.0.0.2",
            ids[0]["conversation_id"],
            ids[1]["conversation_id"],
        ):
            assert private not in text

        metrics = (await alice.get("/metrics")).text
        assert _metric(metrics, "faqbot_spend_deployment_tokens_today") == 2 * TURN_TOKENS
        assert _metric(metrics, 'faqbot_spend_limit_tokens{scope="deployment"}') == 2 * TURN_TOKENS
        assert _metric(metrics, 'faqbot_spend_limit_tokens{scope="conversation"}') == 5000
        assert (
            _metric(metrics, 'faqbot_spend_limited_turns_total{scope="deployment"}')
            == limited_before + 1
        )
        assert "10.0.0.1" not in metrics
    assert (await bot.spend.status())["deployment_tokens_today"] == 2 * TURN_TOKENS


def _metric(text: str, name: str) -> float:
    """The value of one sample in a Prometheus exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_answers_in_progress_are_capped_per_client_with_a_429(
    make_api: Any, fake_openai: Any
) -> None:
    _, streams, client = make_api(max_streams_per_client=2)
    fake_openai.first_token_delay = 0.8  # every LLM call takes a while: answers overlap
    async with client("10.0.0.1") as alice, client("10.0.0.2") as bob:
        running = [
            asyncio.create_task(alice.post("/chat", json={"question": QUESTION})),
            asyncio.create_task(alice.post("/chat/stream", json={"question": QUESTION})),
        ]
        async with asyncio.timeout(5):
            while streams.active("ip:10.0.0.1") < 2:  # noqa: ASYNC110 - a counter, no event
                await asyncio.sleep(0.01)
        refused = await asyncio.gather(
            alice.post("/chat", json={"question": QUESTION}),
            alice.post("/chat/stream", json={"question": QUESTION}),
        )
        for resp in refused:
            assert resp.status_code == 429
            assert resp.headers["retry-after"].isdigit()
            body = resp.json()
            assert body["error_code"] == "TOO_MANY_STREAMS"
            assert body["detail"] == (
                "You already have 2 answers in progress. "
                "Please wait until one has finished, then ask again."
            )
        other = await bob.post("/chat", json={"question": QUESTION})  # another client: unaffected
        assert other.status_code == 200
        done = await asyncio.gather(*running)
        assert [r.status_code for r in done] == [200, 200]
        assert done[0].json()["mode"] == "llm"
        assert sse_events(done[1].text)[-1][0] == "done"
        assert streams.active() == 0
        fake_openai.first_token_delay = 0.0
        again = await alice.post("/chat", json={"question": QUESTION})
        assert again.status_code == 200  # the client's slots are free again
        assert streams.active() == 0


@pytest.fixture
async def served(make_settings: Any, fake_openai: Any) -> AsyncIterator[tuple[int, StreamSlots]]:
    """The API under uvicorn on a free loopback port, one answer in progress per client."""
    settings = make_settings(
        openai_api_key="test-key",
        openai_base_url=fake_openai.base_url,
        openai_max_retries=0,
        openai_timeout=10.0,
        llm_budget_seconds=12.0,
        max_streams_per_client=1,
    )
    bot = build_bot(settings)
    streams = StreamSlots(1)
    api = create_api(
        lambda: bot, RateLimiter(1000, 60), settings, ConversationStore(), streams=streams
    )
    port = free_port()
    config = uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, no event
            await asyncio.sleep(0.01)
    try:
        yield port, streams
    finally:
        server.should_exit = True
        await task


async def test_a_client_that_drops_its_stream_gets_its_slot_back(
    served: tuple[int, StreamSlots], fake_openai: Any
) -> None:
    port, streams = served
    fake_openai.script(fo.hang(8))  # the router call stalls: the stream waits
    body = json.dumps({"question": QUESTION}).encode()
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /chat/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    async with asyncio.timeout(5):
        while streams.active() < 1:  # noqa: ASYNC110 - a counter, no event
            await asyncio.sleep(0.01)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        busy = await http.post("/chat", json={"question": QUESTION})
        assert busy.status_code == 429  # the stream holds the client's only slot
        writer.close()  # the visitor closes the tab
        await writer.wait_closed()
        async with asyncio.timeout(5):
            while streams.active() > 0:  # noqa: ASYNC110 - a counter, no event
                await asyncio.sleep(0.02)
        free = await http.post("/chat", json={"question": QUESTION}, timeout=10)
        assert free.status_code == 200, free.text
        assert free.json()["mode"] == "llm"
    assert streams.active() == 0
