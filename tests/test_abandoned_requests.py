"""A turn never outlives its HTTP client (issue 14, "abandoned requests").

Before: a client that dropped a non-streamed `/api/chat` left the LLM call running until the
SDK timeout, which then counted as a circuit-breaker failure (a few visitors closing a tab could
switch everyone to offline answers); and an SSE stream stayed silent for as long as the provider
hung. Now the disconnect cancels the turn and its LLM request at once, a cancelled turn is no
provider failure, and a waiting stream sends `: keep-alive` comments every few seconds.

Real sockets throughout: the API under uvicorn on a loopback port (in this event loop, so the
test reads the bot's breaker), the fake OpenAI server's `hang` scenario as the stalled provider,
and raw HTTP clients that really close their connection.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.requests import Request

from faqbot.answering.bot import FaqBot
from faqbot.answering.factory import build_bot
from faqbot.state.conversations import ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.web.app import create_api
from tests import fake_openai as fo
from tests.e2e_support import chainlit_server, free_port

pytestmark = pytest.mark.llm
SDK_TIMEOUT_S = 8.0  # what an abandoned call used to run for before it failed
# (LLM_FIRST_TOKEN_SECONDS is set as long: the provider's stall must outlast each test)
ANSWER = "Yes, we offer a 20% discount for annual subscriptions on all plans."


class RecordingFake(fo.FakeOpenAI):
    """The fake provider, noting when each hanging request ended and whether its client left."""

    def __init__(self) -> None:
        super().__init__()
        self.hangs: list[dict[str, Any]] = []

    async def _hang(self, request: Request, seconds: float) -> None:  # type: ignore[override]
        record: dict[str, Any] = {"start": time.monotonic(), "end": None, "client_gone": None}
        self.hangs.append(record)
        await fo.FakeOpenAI._hang(request, seconds)
        record["client_gone"] = await request.is_disconnected()
        record["end"] = time.monotonic()


@pytest.fixture(scope="module")
def provider() -> Iterator[RecordingFake]:
    fake = RecordingFake().start()
    yield fake
    fake.stop()


@pytest.fixture
async def served(make_settings: Any, provider: RecordingFake) -> AsyncIterator[tuple[int, FaqBot]]:
    """The API under uvicorn on a free loopback port, with an LLM bot on the fake provider."""
    provider.reset()
    provider.hangs.clear()
    settings = make_settings(
        openai_api_key="test-key",
        openai_base_url=provider.base_url,
        openai_max_retries=0,
        openai_timeout=SDK_TIMEOUT_S,
        llm_first_token_seconds=SDK_TIMEOUT_S,
        llm_budget_seconds=SDK_TIMEOUT_S + 3,
        local_routing=False,  # every question goes through the LLM router first
        circuit_failure_threshold=1,  # one counted failure would open the breaker
    )
    bot = build_bot(settings)
    api = create_api(lambda: bot, RateLimiter(1000, 60), settings, ConversationStore())
    port = free_port()
    config = uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn sets a flag, no event
            await asyncio.sleep(0.01)
    try:
        yield port, bot
    finally:
        server.should_exit = True
        await task


def post(path: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + data


async def hang_started(provider: RecordingFake, count: int = 1) -> None:
    async with asyncio.timeout(5):
        while len(provider.hangs) < count:  # noqa: ASYNC110 - the fake records in its thread
            await asyncio.sleep(0.01)


async def hang_ended(provider: RecordingFake, wait_s: float) -> dict[str, Any]:
    """The last hanging request's record once it ended (or as it stands after `wait_s`)."""
    deadline = time.monotonic() + wait_s
    while provider.hangs[-1]["end"] is None and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    return provider.hangs[-1]


async def leave_after(
    port: int, request: bytes, seconds: float, provider: RecordingFake | None = None
) -> tuple[float, bytes]:
    """Send `request`, read for `seconds`, then close the connection: (closed at, bytes read).

    With `provider`, the reading starts once the provider's next call hangs (the first call of
    a fresh server can take half a second to reach it on a busy machine).
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    hangs = len(provider.hangs) if provider is not None else 0
    writer.write(request)
    await writer.drain()
    if provider is not None:
        await hang_started(provider, hangs + 1)
    received = b""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            chunk = await asyncio.wait_for(reader.read(4096), left)
        except TimeoutError:
            break
        if not chunk:
            break
        received += chunk
    writer.close()
    closed = time.monotonic()
    await writer.wait_closed()
    return closed, received


async def assert_the_llm_still_answers(bot: FaqBot, provider: RecordingFake, port: int) -> None:
    """The breaker is closed with no failure counted, and the next question reaches the LLM."""
    assert bot.breaker.failures == 0
    assert bot.breaker.state == "closed"
    provider.script(fo.tool("faq_sales", question="annual discount?"), fo.text(ANSWER))
    seen = len(provider.requests)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(post("/chat", {"question": "annual discount?"}))
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 10)  # Connection: close
    writer.close()
    assert b'"mode":"llm"' in reply, reply[-300:]
    assert b'"fallback":false' in reply
    assert len(provider.requests) == seen + 2


async def test_a_client_leaving_chat_cancels_the_llm_call_and_is_no_breaker_failure(
    served: tuple[int, FaqBot], provider: RecordingFake
) -> None:
    port, bot = served
    provider.script(fo.hang(30))  # the provider accepts the router call and never answers
    closed, received = await leave_after(
        port, post("/chat", {"question": "annual discount?"}), 0.5, provider
    )
    await hang_started(provider)
    assert received == b""  # nothing was answered yet
    record = await hang_ended(provider, wait_s=SDK_TIMEOUT_S + 2)
    assert record["end"] is not None, "the provider call is still running"
    print(f"provider call ended {record['end'] - closed:.3f} s after the client left")
    assert record["end"] - closed < 1.0, "the LLM call outlived its client"
    assert record["client_gone"] is True  # cancelled by us, not ended by a timeout
    await asyncio.sleep(0.2)  # the cancelled turn finishes unwinding
    await assert_the_llm_still_answers(bot, provider, port)


async def test_a_client_leaving_a_stream_cancels_the_llm_call_and_is_no_breaker_failure(
    served: tuple[int, FaqBot], provider: RecordingFake
) -> None:
    port, bot = served
    provider.script(fo.hang(30))
    request = post("/chat/stream", {"question": "annual discount?"})
    closed, _ = await leave_after(port, request, 0.5, provider)
    await hang_started(provider)
    record = await hang_ended(provider, wait_s=SDK_TIMEOUT_S + 2)
    assert record["end"] is not None, "the provider call is still running"
    assert record["end"] - closed < 1.0, "the LLM call outlived its client"
    assert record["client_gone"] is True
    await asyncio.sleep(0.2)
    await assert_the_llm_still_answers(bot, provider, port)


async def test_a_stream_waiting_on_a_stalled_provider_sends_keep_alive_comments(
    served: tuple[int, FaqBot], provider: RecordingFake
) -> None:
    """Default settings (SSE_KEEPALIVE_SECONDS=3): the first comment within 5 s, then more."""
    port, bot = served
    provider.script(fo.hang(30))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(post("/chat/stream", {"question": "annual discount?"}))
    await writer.drain()
    started = time.monotonic()
    seen: list[float] = []
    received = b""
    try:
        async with asyncio.timeout(SDK_TIMEOUT_S - 1):
            while len(seen) < 2:
                chunk = await reader.read(4096)
                assert chunk, "the server closed the stream"
                received += chunk
                while b": keep-alive\n\n" in received:
                    received = received.replace(b": keep-alive\n\n", b"", 1)
                    seen.append(time.monotonic() - started)
    finally:
        writer.close()
    print(f"keep-alive comments at {', '.join(f'{t:.2f}' for t in seen)} s")
    assert seen[0] < 5.0
    assert seen[1] - seen[0] < 5.0
    assert b"event:" not in received.split(b"\r\n\r\n", 1)[1]  # nothing but comments so far
    record = await hang_ended(provider, wait_s=3)
    assert record["client_gone"] is True
    await asyncio.sleep(0.2)
    assert bot.breaker.failures == 0


@pytest.mark.chainlit
async def test_on_the_running_app_a_leaving_client_cancels_and_streams_keep_alive(
    provider: RecordingFake,
) -> None:
    """The same through `chainlit run` (the API mounted on Chainlit's server and middleware)."""
    provider.reset()
    provider.hangs.clear()
    env = {
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": provider.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_TIMEOUT": str(SDK_TIMEOUT_S),
        "LLM_FIRST_TOKEN_SECONDS": str(SDK_TIMEOUT_S),
        "LLM_BUDGET_SECONDS": str(SDK_TIMEOUT_S + 3),
        "LOCAL_ROUTING": "false",
        "CIRCUIT_FAILURE_THRESHOLD": "1",
        "RATE_LIMIT_REQUESTS": "1000",
    }
    with chainlit_server(env) as url:
        port = int(url.rsplit(":", 1)[1])
        provider.script(fo.hang(30))
        closed, _ = await leave_after(
            port, post("/api/chat", {"question": "annual discount?"}), 0.5, provider
        )
        await hang_started(provider)
        record = await hang_ended(provider, wait_s=SDK_TIMEOUT_S + 2)
        assert record["end"] is not None
        assert record["end"] - closed < 1.0
        provider.script(fo.hang(30))
        _, streamed = await leave_after(
            port, post("/api/chat/stream", {"question": "annual discount?"}), 4.0
        )
        assert b": keep-alive\n\n" in streamed
        record = await hang_ended(provider, wait_s=3)
        assert record["client_gone"] is True
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            health = (await client.get("/api/health")).json()
    assert health["circuit_breaker"]["consecutive_failures"] == 0
    assert health["circuit_breaker"]["state"] == "closed"
