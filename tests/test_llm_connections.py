"""The LLM client keeps its connections for reuse when many answers stream at once.

The SDK's own pool keeps 100 idle connections: under load every call beyond the 100th opened a
new connection (TCP and, with a real provider, TLS) and closed it after use. `make_client`
keeps them all; checked against the loopback fake with more concurrent streams than 100.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faqbot.llm.openai_model import OpenAIChatModel, make_client

CONCURRENT = 130


def idle_connections(client: Any) -> int:
    """Connections the client's pool holds open after the calls ended (httpcore's pool)."""
    pool = client._client._transport._pool  # the SDK's httpx client -> transport -> pool
    return sum(1 for c in pool.connections if c.is_idle())


async def test_every_connection_of_a_burst_is_kept_for_the_next_one(fake_openai: Any) -> None:
    client = make_client(
        "test-key", base_url=fake_openai.base_url, timeout=10, connect_timeout=5,
        max_retries=0, max_retry_wait=0,
    )  # fmt: skip
    model = OpenAIChatModel(client, model="m", max_tokens=50, temperature=0)
    gate = asyncio.Event()

    async def one() -> str:
        pieces = []
        async for piece in model.stream_text([{"role": "user", "content": "hi"}], []):
            pieces.append(piece)
            await gate.wait()  # every stream stays open until all of them have started
        return "".join(pieces)

    async def burst(requests_by_then: int) -> list[str]:
        gate.clear()
        calls = [asyncio.create_task(one()) for _ in range(CONCURRENT)]
        while len(fake_openai.requests) < requests_by_then:  # noqa: ASYNC110 (another thread)
            await asyncio.sleep(0.01)
        gate.set()
        return await asyncio.gather(*calls)

    try:
        assert all(await asyncio.wait_for(burst(CONCURRENT), 60))
        assert idle_connections(client) == CONCURRENT  # the SDK's defaults keep 100
        assert all(await asyncio.wait_for(burst(2 * CONCURRENT), 60))
        assert idle_connections(client) == CONCURRENT  # all reused: none opened, none closed
    finally:
        await client.close()
