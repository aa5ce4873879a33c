"""LLM_WARM_UP in the running app: `chainlit run` makes one router call at start, before any
visitor asks (a local server loads its model; the router learns the endpoint's tool_choice
form), and says what it learnt in one log line; the first question then goes by that form."""

from __future__ import annotations

import asyncio

import tests.fake_openai as fo
from tests.e2e_support import ChatClient, chainlit_server, server_log


async def test_the_app_warms_the_llm_up_at_start() -> None:
    fake = fo.FakeOpenAI(mode="llama-cpp").start()  # refuses tool_choice "required"
    env = {
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": fake.base_url,
        "LLM_WARM_UP": "true",
        "RATE_LIMIT_REQUESTS": "1000",
    }
    try:
        with chainlit_server(env) as url:
            for _ in range(75):  # the warm-up runs in the background: up to 15 s
                if "llm.capabilities" in server_log(url):
                    break
                await asyncio.sleep(0.2)
            warm = [r["messages"][-1]["content"] for r in fake.requests]
            log = server_log(url)
            fake.script(fo.tool("faq_sales", question="Do you offer discounts?"), fo.text("Yes."))
            async with ChatClient(url) as chat:
                turn = await chat.ask("Do you offer discounts for annual subscriptions?")
            asked = fake.requests[len(warm) :]
    finally:
        fake.stop()
    assert warm[-1] == "Hello"  # the warm-up call, before any visitor
    assert "llm.capabilities" in log
    assert turn.router is not None
    first = asked[0]
    assert first.get("tool_choice") != "required"  # learnt at start: no refused try now
