"""The first-token deadline grows with the prompt (LLM_FIRST_TOKEN_SECONDS_PER_1K_TOKENS, issue
23 item 3): a CPU model that needs longer to read a long prompt is not taken for a stalled one,
and a provider that never answers still costs at most the (longer) deadline."""

from __future__ import annotations

import time
from typing import Any

import pytest

from faqbot.errors import LLMTimeoutError
from faqbot.llm.openai_model import OpenAIChatModel, make_client
from faqbot.llm.tokens import estimate_prompt
from tests import fake_openai as fo

pytestmark = pytest.mark.llm
LONG = [{"role": "user", "content": "pricing plans discounts refunds " * 200}]
SHORT = [{"role": "user", "content": "pricing?"}]


def model(fake: Any, per_1k: float) -> OpenAIChatModel:
    client = make_client("k", base_url=fake.base_url, timeout=10, connect_timeout=2,
                         max_retries=0, max_retry_wait=0)  # fmt: skip
    return OpenAIChatModel(client, model="m", max_tokens=50, temperature=0,
                           first_token_s=0.4, stall_s=0.4, prefill_s_per_1k=per_1k)  # fmt: skip


async def answer(m: OpenAIChatModel, messages: list[dict[str, str]]) -> str:
    return "".join([piece async for piece in m.stream_text(messages, [])])


def test_the_deadline_adds_time_per_thousand_prompt_tokens() -> None:
    with fo.running() as fake:
        m = model(fake, per_1k=0.5)
    tokens = estimate_prompt(LONG, ())
    assert tokens > 1000
    assert m.first_token_deadline(tokens) == pytest.approx(0.4 + 0.5 * tokens / 1000, abs=0.01)
    assert model(fake, per_1k=0).first_token_deadline(tokens) == 0.4  # the default: fixed


async def test_a_long_prompt_read_slowly_is_not_a_stall(fake_openai: Any) -> None:
    fake_openai.first_token_delay = 0.9  # past the fixed 0.4 s, inside 0.4 + 0.5 s per 1k tokens
    fake_openai.script(fo.text("Three plans."), fo.text("Three plans."))
    assert await answer(model(fake_openai, per_1k=0.5), LONG) == "Three plans."
    with pytest.raises(LLMTimeoutError):  # the same delay on a short prompt is a stall
        await answer(model(fake_openai, per_1k=0.5), SHORT)


async def test_a_silent_provider_still_costs_at_most_the_longer_deadline(fake_openai: Any) -> None:
    fake_openai.script(fo.hang(30))
    m = model(fake_openai, per_1k=0.5)
    started = time.monotonic()
    with pytest.raises(LLMTimeoutError):
        await answer(m, LONG)
    elapsed = time.monotonic() - started
    deadline = m.first_token_deadline(estimate_prompt(LONG, ()))
    assert deadline is not None
    assert deadline - 0.1 < elapsed < deadline + 2.0  # margin: a loaded machine; the hang is 30 s
