"""The loopback fake OpenAI server, driven through the real openai SDK (no mocks)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from tests import fake_openai as fo

pytestmark = pytest.mark.llm  # async tests run through asyncio_mode = "auto" (pyproject)
ROOT = Path(__file__).resolve().parent.parent
USER = [{"role": "user", "content": "Do you offer discounts for annual subscriptions?"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "faq_sales",
            "description": "Pricing plans, discounts, annual subscriptions, refunds and payment",
            "parameters": {"type": "object", "properties": {"question": {"type": "string"}}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "faq_labs",
            "description": "Instruments, raw data retention and QC rules in the lab",
            "parameters": {"type": "object", "properties": {"question": {"type": "string"}}},
        },
    },
]


@pytest.fixture
async def client(fake_openai: fo.FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=fake_openai.base_url, api_key="test-key", max_retries=0, timeout=2.0
    ) as c:
        yield c


async def stream_chunks(client: openai.AsyncOpenAI, **kw: Any) -> list[Any]:
    kw.setdefault("model", "gpt-4o-mini")
    kw.setdefault("messages", USER)
    stream = await client.chat.completions.create(stream=True, **kw)
    return [chunk async for chunk in stream]


def content_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def tool_calls_of(chunks: list[Any]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for c in chunks:
        for call in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += call.id or ""
            slot["name"] += call.function.name or ""
            slot["arguments"] += call.function.arguments or ""
    return calls


# --- streaming ----------------------------------------------------------------------------


async def test_text_streams_word_by_word_and_reassembles(
    fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    answer = "Yes, we offer a 20% discount for annual subscriptions."
    fake_openai.script(fo.text(answer))
    chunks = await stream_chunks(client)
    assert content_of(chunks) == answer
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert pieces == ["Yes,", " we", " offer", " a", " 20%", " discount", " for", " annual",
                      " subscriptions."]  # fmt: skip
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert {c.id for c in chunks} == {chunks[0].id}
    assert chunks[0].id.startswith("chatcmpl-")
    assert chunks[0].object == "chat.completion.chunk"
    assert chunks[0].model == "fake-model"
    assert all(c.usage is None for c in chunks)  # no include_usage, no usage chunk


async def test_tool_call_arguments_arrive_in_fragments(
    fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake_openai.script(fo.tool("faq_sales", question="Annual discount?"))
    chunks = await stream_chunks(client, tools=TOOLS)
    first = chunks[0].choices[0].delta
    assert first.role == "assistant"
    assert first.tool_calls[0].function.name == "faq_sales"
    assert first.tool_calls[0].function.arguments == ""
    fragments = [
        c.choices[0].delta.tool_calls[0].function.arguments
        for c in chunks[1:]
        if c.choices[0].delta.tool_calls
    ]
    assert len(fragments) >= 3
    calls = tool_calls_of(chunks)
    assert calls == {0: {"id": "call_1", "name": "faq_sales", "arguments": calls[0]["arguments"]}}
    assert json.loads(calls[0]["arguments"]) == {"question": "Annual discount?"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_two_tool_calls_use_indexes_0_and_1(
    fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake_openai.script(
        fo.tools([("faq_labs", {"question": "a"}), ("faq_sales", '{"question": "b"}')])
    )
    calls = tool_calls_of(await stream_chunks(client, tools=TOOLS))
    assert [(i, c["id"], c["name"]) for i, c in sorted(calls.items())] == [
        (0, "call_1", "faq_labs"),
        (1, "call_2", "faq_sales"),
    ]
    assert json.loads(calls[0]["arguments"]) == {"question": "a"}
    assert json.loads(calls[1]["arguments"]) == {"question": "b"}


async def test_bad_and_unknown_tool_calls_arrive_verbatim(
    fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake_openai.script(
        fo.bad_args("faq_sales", raw='{"question": "unterminated'), fo.unknown_tool()
    )
    bad = tool_calls_of(await stream_chunks(client, tools=TOOLS))
    assert bad[0] == {
        "id": "call_1",
        "name": "faq_sales",
        "arguments": '{"question": "unterminated',
    }
    unknown = tool_calls_of(await stream_chunks(client, tools=TOOLS))
    assert unknown[0]["name"] == "faq_nope"
    assert fo.bad_args("x").tool_calls == [("x", "{not json")]


async def test_usage_chunk_with_include_usage(
    fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake_openai.script(fo.text("Twenty percent.", usage=(120, 7)), fo.text("Twenty percent."))
    opts = {"include_usage": True}
    chunks = await stream_chunks(client, stream_options=opts)
    last = chunks[-1]
    assert last.choices == []
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (120, 7)
    assert last.usage.total_tokens == 127
    assert all(c.usage is None for c in chunks[:-1])
    assert content_of(chunks) == "Twenty percent."
    estimated = (await stream_chunks(client, stream_options=opts))[-1].usage
    assert estimated.prompt_tokens == round(len(USER[0]["content"].split()) * 1.3)
    assert estimated.completion_tokens == 2
    assert estimated.total_tokens == estimated.prompt_tokens + 2


async def test_empty_choices(fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake_openai.script(fo.empty_choices(), fo.empty_choices())
    chunks = await stream_chunks(client, stream_options={"include_usage": True})
    assert chunks
    assert all(c.choices == [] for c in chunks)
    completion = await client.chat.completions.create(model="m", messages=USER)
    assert completion.choices == []


# --- faults -------------------------------------------------------------------------------


async def test_429_raises_rate_limit_error_with_retry_after(
    fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake_openai.script(fo.rate_limited(retry_after=1))
    with pytest.raises(openai.RateLimitError) as caught:
        await stream_chunks(client)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "1"
    assert "x-should-retry" not in caught.value.response.headers
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.body["message"].startswith("Rate limit")


async def test_500_raises_internal_server_error(
    fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake_openai.script(fo.server_error(), fo.error(401, message="Incorrect API key provided"))
    with pytest.raises(openai.InternalServerError) as caught:
        await stream_chunks(client)
    assert caught.value.status_code == 500
    assert caught.value.type == "server_error"
    with pytest.raises(openai.AuthenticationError, match="Incorrect API key"):
        await client.chat.completions.create(model="m", messages=USER)


async def test_hang_times_out_without_blocking_other_requests(
    fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake_openai.script(fo.hang(seconds=10), fo.text("still serving"))

    async def hung() -> float:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await stream_chunks(client.with_options(timeout=0.5))
        return time.monotonic() - started

    async def other() -> tuple[str, float]:
        await asyncio.sleep(0.1)  # the hang is dequeued first
        started = time.monotonic()
        return content_of(await stream_chunks(client)), time.monotonic() - started

    waited, (answer, took) = await asyncio.gather(hung(), other())
    assert 0.4 < waited < 5.0  # the client's 0.5 s timeout, long before the 10 s hang ends
    assert answer == "still serving"
    assert took < 5.0  # not queued behind the 10 s hang


async def test_torn_stream_yields_chunks_then_raises_connection_error(
    fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake_openai.script(fo.torn("We offer a twenty percent discount on", after=3))
    got: list[Any] = []

    async def drain() -> None:
        stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
        async for chunk in stream:
            got.append(chunk)

    with pytest.raises(openai.APIConnectionError, match="Connection error") as caught:
        await drain()
    assert type(caught.value) is openai.APIConnectionError
    cause = caught.value.__cause__
    assert isinstance(cause, httpx2.RemoteProtocolError)
    assert "incomplete chunked read" in str(cause)
    assert got[0].choices[0].delta.role == "assistant"
    assert content_of(got) == "We offer a"
    assert len(got) == 4  # role chunk + 3 content chunks
    assert all(c.choices[0].finish_reason is None for c in got)


async def test_stall_pauses_mid_stream_then_finishes(
    fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake_openai.script(fo.stall("We offer a twenty percent discount", after=3, seconds=0.6))
    stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
    arrived: list[tuple[float, Any]] = []
    started = time.monotonic()
    async for chunk in stream:
        arrived.append((time.monotonic() - started, chunk))
    chunks = [c for _, c in arrived]
    assert content_of(chunks) == "We offer a twenty percent discount"
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(arrived)]
    assert max(gaps) >= 0.55  # the pause, after the role chunk and 3 words
    assert gaps.index(max(gaps)) == 3
    assert content_of(chunks[:4]) == "We offer a"


async def test_torn_non_streaming_body_raises_connection_error(
    fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake_openai.script(fo.torn("cut short"))
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="m", messages=USER)


# --- non-streaming, records, script ---------------------------------------------------------


async def test_non_streaming_completion(
    fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake_openai.script(fo.text("Plain answer.", usage=(10, 2)), fo.tool("faq_labs", question="q"))
    completion = await client.chat.completions.create(model="m", messages=USER)
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Plain answer."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == 12
    called = await client.chat.completions.create(model="m", messages=USER, tools=TOOLS)
    call = called.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name) == ("call_1", "faq_labs")
    assert json.loads(call.function.arguments) == {"question": "q"}
    assert called.choices[0].finish_reason == "tool_calls"


async def test_requests_and_headers_are_recorded(
    fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake_openai.script(fo.text("one"), fo.text("two"), fo.text("three"))
    await stream_chunks(client, tools=TOOLS, stream_options={"include_usage": True})
    await client.chat.completions.create(model="other", messages=USER)
    assert fake_openai.pending == 1
    assert len(fake_openai.requests) == 2
    first, second = fake_openai.requests
    assert first["stream"] is True
    assert first["stream_options"] == {"include_usage": True}
    assert first["messages"] == USER
    assert [t["function"]["name"] for t in first["tools"]] == ["faq_sales", "faq_labs"]
    assert second["model"] == "other"
    assert "stream" not in second
    assert all(h["authorization"] == "Bearer test-key" for h in fake_openai.headers)
    fake_openai.reset()
    assert (fake_openai.requests, fake_openai.headers, fake_openai.pending) == ([], [], 0)


async def test_models_endpoint(client: openai.AsyncOpenAI) -> None:
    models = await client.models.list()
    assert [m.id for m in models.data] == ["fake-model"]


async def test_script_is_fifo_then_falls_back_to_the_responder(
    fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake_openai.script(fo.text("first"), fo.text("second"))
    got = [content_of(await stream_chunks(client)) for _ in range(3)]
    assert got == ["first", "second", fo.REFUSAL]


async def test_custom_responder_and_pacing() -> None:
    seen: list[dict[str, Any]] = []

    def responder(body: dict[str, Any]) -> fo.Reply:
        seen.append(body)
        return fo.text("a b c d e")

    with fo.running(responder=responder, first_token_delay=0.3, tokens_per_second=20) as fake:
        async with openai.AsyncOpenAI(
            base_url=fake.base_url, api_key="k", max_retries=0, timeout=2.0
        ) as client:
            started = time.monotonic()
            stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
            arrivals = [(time.monotonic() - started, chunk) async for chunk in stream]
            assert content_of([c for _, c in arrivals]) == "a b c d e"
            assert seen[0]["messages"] == USER
            first_content = next(t for t, c in arrivals if c.choices[0].delta.content)
            assert 0.25 < first_content < 3.0  # upper bound: a loaded machine
            assert arrivals[-1][0] - first_content > 0.15  # 4 gaps of 50 ms
            fake.script(fo.text("fast", first_token_delay=0, tokens_per_second=0))
            started = time.monotonic()
            assert content_of(await stream_chunks(client)) == "fast"
            # No 0.3 s default delay: the whole reply comes before the delayed reply's first
            # word did (both pay the same machine load)
            assert time.monotonic() - started < first_content
    assert fake._thread is None


async def test_stop_is_prompt_with_a_request_in_flight() -> None:
    fake = fo.FakeOpenAI().start()
    thread = fake._thread
    assert thread is not None
    fake.script(fo.hang(seconds=30))
    async with openai.AsyncOpenAI(
        base_url=fake.base_url, api_key="k", max_retries=0, timeout=0.2
    ) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="m", messages=USER)
    started = time.monotonic()
    await asyncio.to_thread(fake.stop)
    assert time.monotonic() - started < 10  # not held by the 30 s hang
    assert not thread.is_alive()


# --- embeddings ---------------------------------------------------------------------------


async def test_embeddings_sdk_default_asks_for_base64_and_decodes_it(
    fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    texts = ["annual discount", "raw data retention"]
    decoded = await client.embeddings.create(model="text-embedding-3-small", input=texts)
    assert fake_openai.embedding_requests[0]["encoding_format"] == "base64"  # SDK's choice
    assert [d.embedding for d in decoded.data] == [fo.fake_embedding(t, 64) for t in texts]
    raw = await client.embeddings.create(model="m", input=texts, encoding_format="base64")
    assert isinstance(raw.data[0].embedding, str)  # an explicit format is left undecoded
    floats = await client.embeddings.create(model="m", input=texts, encoding_format="float")
    assert floats.object == "list"
    assert floats.model == "m"
    assert [(d.object, d.index) for d in floats.data] == [("embedding", 0), ("embedding", 1)]
    assert [d.embedding for d in floats.data] == [d.embedding for d in decoded.data]
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == 3 + 4  # words * 1.3
    assert fake_openai.requests == []


async def test_embeddings_inputs_dimensions_and_records(
    fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    single = await client.embeddings.create(model="m", input="hello", encoding_format="float")
    assert single.data[0].embedding == fo.fake_embedding("hello", 64)
    tokens = await client.embeddings.create(model="m", input=[[1, 2], [3]], dimensions=8)
    assert [len(d.embedding) for d in tokens.data] == [8, 8]
    assert tokens.data[0].embedding == fo.fake_embedding("t1 t2", 8)
    unit = sum(x * x for x in fo.fake_embedding("", 16)) ** 0.5
    assert abs(unit - 1.0) < 1e-6  # word-less texts are still unit vectors
    assert len(fake_openai.embedding_requests) == len(fake_openai.embedding_headers) == 2
    assert fake_openai.embedding_headers[0]["authorization"] == "Bearer test-key"
    fake_openai.script_embeddings(fo.server_error())
    fake_openai.reset()
    assert (fake_openai.embedding_requests, fake_openai.pending_embeddings) == ([], 0)


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "input": ""},
        {"model": "m", "input": ["ok", ""]},
        {"model": "m", "input": []},
        {"model": "m", "input": ["x"] * 2049},
        {"input": ["x"]},
        {"model": "m", "input": ["x"], "encoding_format": "int8"},
        {"model": "m", "input": ["x"], "dimensions": 0},
    ],
)
async def test_embeddings_reject_what_the_real_api_rejects(
    client: openai.AsyncOpenAI, body: dict[str, Any]
) -> None:
    with pytest.raises(openai.BadRequestError):
        await client.post("/embeddings", cast_to=object, body=body)


async def test_embeddings_have_their_own_script(
    fake_openai: fo.FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake_openai.script(fo.text("chat only"))
    fake_openai.script_embeddings(fo.rate_limited(retry_after=2), fo.text("misplaced"))
    with pytest.raises(openai.RateLimitError):
        await client.embeddings.create(model="m", input="x")
    with pytest.raises(openai.InternalServerError, match="'text' reply was scripted"):
        await client.embeddings.create(model="m", input="x")
    assert (fake_openai.pending, fake_openai.pending_embeddings) == (1, 0)
    assert content_of(await stream_chunks(client)) == "chat only"


# --- auto-responder -----------------------------------------------------------------------


async def test_auto_responder_routes_by_word_overlap(client: openai.AsyncOpenAI) -> None:
    calls = tool_calls_of(await stream_chunks(client, tools=TOOLS))
    assert calls[0]["name"] == "faq_sales"
    assert json.loads(calls[0]["arguments"]) == {"question": USER[0]["content"]}
    labs = [{"role": "user", "content": "How long is raw instrument data retained?"}]
    assert tool_calls_of(await stream_chunks(client, messages=labs, tools=TOOLS))[0]["name"] == (
        "faq_labs"
    )
    off_topic = [{"role": "user", "content": "Tell me a joke about penguins"}]
    chunks = await stream_chunks(client, messages=off_topic, tools=TOOLS)
    assert content_of(chunks) == "NONE"
    assert tool_calls_of(chunks) == {}


async def test_auto_responder_answers_from_the_first_a_block(client: openai.AsyncOpenAI) -> None:
    system = (
        "Answer only from these FAQ entries.\n\n"
        "[sales-discounts] Q: Do you offer discounts?\n"
        "A: Yes, we offer a 20% discount\n  for annual subscriptions.\n\n"
        "[sales-refunds] Q: Refunds?\nA: 30-day money-back guarantee."
    )
    messages = [{"role": "system", "content": system}, *USER]
    chunks = await stream_chunks(client, messages=messages)
    assert content_of(chunks) == "Yes, we offer a 20% discount for annual subscriptions."
    assert sum(1 for c in chunks if c.choices[0].delta.content) == 9  # one chunk per word
    assert content_of(await stream_chunks(client)) == fo.REFUSAL


def test_auto_responder_directly() -> None:
    reply = fo.auto_responder({"messages": USER, "tools": TOOLS})
    assert reply.kind == "tool_calls"
    assert reply.tool_calls[0][0] == "faq_sales"
    assert fo.auto_responder({"messages": []}).text == fo.REFUSAL
    none = fo.auto_responder({"messages": [{"role": "user", "content": "hi"}], "tools": TOOLS})
    assert (none.kind, none.text) == ("text", "NONE")


def test_auto_responder_with_a_required_tool_choice_calls_the_no_argument_tool() -> None:
    abstain = {"type": "function", "function": {"name": "not_covered", "parameters": {}}}
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [*TOOLS, abstain],
        "tool_choice": "required",
    }
    assert fo.auto_responder(body).tool_calls == [("not_covered", "{}")]
    body["tools"] = TOOLS  # no such tool: text, as a model that ignores tool_choice
    assert fo.auto_responder(body).text == "NONE"
    body["messages"] = USER
    assert fo.auto_responder(body).tool_calls[0][0] == "faq_sales"


def test_error_constructors() -> None:
    assert fo.rate_limited(2.5).headers == {"retry-after": "2.5"}
    assert fo.error(503).headers == {}
    body = fo.error(400, message="bad").error_body["error"]
    assert body == {"message": "bad", "type": "invalid_request_error", "param": None, "code": None}


# --- CLI ----------------------------------------------------------------------------------


def test_cli_refuses_a_non_loopback_host(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        fo.main(["--host", "0.0.0.0"])
    assert caught.value.code == 2
    assert "loopback" in capsys.readouterr().err


def test_cli_serves_and_logs_one_line_per_request() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_openai", "--port", "0", "--first-token-ms", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        base_url = banner.split(" at ")[1].split()[0]
        assert base_url.startswith("http://127.0.0.1:")
        with openai.OpenAI(base_url=base_url, api_key="k", max_retries=0, timeout=2.0) as sync:
            stream = sync.chat.completions.create(
                model="m", messages=USER, tools=TOOLS, stream=True
            )
            assert tool_calls_of(list(stream))[0]["name"] == "faq_sales"
        line = proc.stdout.readline()
        assert "stream=True" in line
        assert "tools=2" in line
        assert "faq_sales" in line
        proc.send_signal(signal.SIGINT)  # Ctrl-C: clean shutdown
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


# --- latency profile ----------------------------------------------------------------------

PROFILE = fo.LatencyProfile(
    first_token_ms=200, tokens_per_second=50, answer_tokens=10, tool_call_tokens=8
)


async def test_profile_paces_a_streamed_answer_and_sets_its_length() -> None:
    with fo.running(profile=PROFILE) as fake:
        async with openai.AsyncOpenAI(
            base_url=fake.base_url, api_key="k", max_retries=0, timeout=5.0
        ) as client:
            fake.script(fo.text("Yes, 20% off."))
            started = time.monotonic()
            stream = await client.chat.completions.create(
                model="m", messages=USER, stream=True, stream_options={"include_usage": True}
            )
            arrivals = [(time.monotonic() - started, chunk) async for chunk in stream]
    words = [(t, c) for t, c in arrivals if c.choices and c.choices[0].delta.content]
    assert "".join(c.choices[0].delta.content for _, c in words).split() == (
        "Yes, 20% off. Yes, 20% off. Yes, 20% off. Yes,".split()
    )  # exactly 10 tokens: the answer repeated, then cut
    assert 0.18 < words[0][0] < 3.0  # first token after 200 ms (upper bound: a loaded machine)
    # 9 gaps of 20 ms after it: the last token cannot arrive before 0.38 s (a loaded client
    # may read several tokens at once, so the gaps it sees are no measure)
    assert 0.36 < words[-1][0] < 3.0
    assert arrivals[-1][1].usage.completion_tokens == 10
    assert fake.usages[0]["completion_tokens"] == 10


async def test_profile_makes_a_non_streamed_answer_wait_for_all_its_tokens() -> None:
    with fo.running(profile=PROFILE) as fake:
        async with openai.AsyncOpenAI(
            base_url=fake.base_url, api_key="k", max_retries=0, timeout=5.0
        ) as client:
            started = time.monotonic()
            done = await client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "Q: discounts?\nA: Yes, 20% off."}],
            )
            elapsed = time.monotonic() - started
            fake.profile = fo.PROFILES["zero"]
            started = time.monotonic()
            await client.chat.completions.create(model="m", messages=USER)
            zero = time.monotonic() - started
    assert len(done.choices[0].message.content.split()) == 10
    assert done.usage.completion_tokens == 10
    assert 0.36 < elapsed < 3.0  # 200 ms + 9 token times of 20 ms, as the streamed reply
    assert zero < elapsed  # the zero profile waits for nothing


async def test_profile_applies_to_tool_calls_streamed_and_not() -> None:
    with fo.running(profile=PROFILE) as fake:
        async with openai.AsyncOpenAI(
            base_url=fake.base_url, api_key="k", max_retries=0, timeout=5.0
        ) as client:
            started = time.monotonic()
            chunks = await stream_chunks(client, tools=TOOLS)
            streamed = time.monotonic() - started
            started = time.monotonic()
            plain = await client.chat.completions.create(model="m", messages=USER, tools=TOOLS)
            non_streamed = time.monotonic() - started
    fragments = [
        c.choices[0].delta.tool_calls[0].function.arguments
        for c in chunks[1:]
        if c.choices and c.choices[0].delta.tool_calls
    ]
    assert len(fragments) == 8
    assert json.loads(tool_calls_of(chunks)[0]["arguments"]) == {"question": USER[0]["content"]}
    call = plain.choices[0].message.tool_calls[0]
    assert call.function.name == "faq_sales"
    assert json.loads(call.function.arguments) == {"question": USER[0]["content"]}
    assert plain.usage.completion_tokens == 8
    for took in (streamed, non_streamed):  # 200 ms + 8 fragments of 20 ms
        assert 0.34 < took < 3.0


async def test_reset_restores_the_initial_profile_and_stall(fake_openai: fo.FakeOpenAI) -> None:
    fake_openai.profile = fo.PROFILES["realistic"]
    fake_openai.stall_seconds = 5
    assert fake_openai.profile.answer_tokens == 150
    fake_openai.reset()
    assert fake_openai.profile == fo.PROFILES["zero"]
    assert fake_openai.stall_seconds is None


async def test_control_endpoints_set_profile_and_stall_and_report_usage() -> None:
    import httpx

    with fo.running() as fake:
        root = fake.base_url.removesuffix("/v1")
        async with (
            httpx.AsyncClient(base_url=root, timeout=5.0) as http,
            openai.AsyncOpenAI(
                base_url=fake.base_url, api_key="k", max_retries=0, timeout=0.5
            ) as client,
        ):
            resp = await http.post("/_fake/profile", json={"preset": "realistic"})
            assert resp.json()["profile"] == fo.PROFILES["realistic"].as_dict()
            resp = await http.post("/_fake/profile", json={"first_token_ms": 0, "answer_tokens": 3})
            assert resp.json()["profile"]["answer_tokens"] == 3
            assert resp.json()["profile"]["tokens_per_second"] == 100
            assert (await http.post("/_fake/profile", json={"bogus": 1})).status_code == 400
            await http.post("/_fake/profile", json={"tokens_per_second": None})
            await client.chat.completions.create(model="m", messages=USER)
            stats = (await http.get("/_fake/stats")).json()
            assert stats["chat_calls"] == 1
            assert stats["usage"][0]["completion_tokens"] == 3
            assert stats["usage"][0]["prompt_tokens"] > 0
            await http.post("/_fake/profile", json={"stall_seconds": 30})
            started = time.monotonic()
            with pytest.raises(openai.APITimeoutError):
                await client.chat.completions.create(model="m", messages=USER)
            assert time.monotonic() - started < 10  # the client's timeout, not the 30 s stall
            await http.post("/_fake/profile", json={"stall_seconds": None})
            await http.post("/_fake/reset")
            assert (await http.get("/_fake/stats")).json()["chat_calls"] == 0


def test_cli_profile_preset_and_overrides() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_openai", "--port", "0", "--profile", "realistic",
         "--first-token-ms", "50", "--quiet"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().split(" at ")[1].split()[0]
        stats = httpx2.get(base_url.removesuffix("/v1") + "/_fake/stats", timeout=2).json()
        assert stats["profile"] == {**fo.PROFILES["realistic"].as_dict(), "first_token_ms": 50}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
