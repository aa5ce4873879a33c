"""OpenAIChatModel: the only module that imports `openai`.

Works with any OpenAI-compatible endpoint (OpenAI, Azure-style gateways, Ollama, vLLM, LM Studio)
through an injected AsyncOpenAI client; SDK exceptions are translated into faqbot's LLMError tree.

Silence: a provider that accepts the connection and never answers used to hold each question for
the SDK's read timeout (20 s) before the offline fallback. `OpenAIChatModel` bounds how long the
provider may stay silent in every call, router and answer alike: its first output (text, a tool
call or a finish) must arrive within `first_token_s` of the call's start, and after that no gap
between two chunks may last longer than `stall_s`. Either failing raises LLMTimeoutError (the
bot falls back and counts a provider failure); a slow answer that keeps streaming is never cut
(the whole-answer budget is the bot's, LLM_BUDGET_SECONDS).

Retry-After: the SDK waits out a provider's Retry-After (up to two minutes) before each retry, so
one `Retry-After: 20` held every question 20 s before its offline fallback. `make_client` builds a
client that retries only when the wait fits inside the first-token deadline
(`retry_wait_bound`); a longer one fails at once with the wait in the error's `retry_after`, and
the bot keeps its circuit breaker open that long (faqbot.answering.bot), so users get the offline
answer without waiting.

Spend: every call charges its `meter` while it runs (faqbot.llm.tokens.Tally): the prompt when
the request goes out, the completion as it streams, the provider's `usage` when it comes (a
stream that ends without one gets faqbot's estimate, `_estimated_usage`), and
in `_chunks`' `finally` what an abandoned or failed call consumed, so a caller that leaves after
the first token (a closed tab, the chat's Stop) is charged what the provider bills.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, Self

import httpx2
import openai

from faqbot.domain import Usage
from faqbot.errors import (
    LLMAuthError,
    LLMError,
    LLMProtocolError,
    LLMRateLimitError,
    LLMTimeoutError,
    LLMUnavailableError,
)
from faqbot.llm.capabilities import ToolChoiceRefused
from faqbot.llm.protocol import Message, Meter, ToolCall, ToolChoice, ToolCompletion
from faqbot.llm.tokens import Tally, estimate_prompt

# A streamed chunk as the JSON object the provider sent (`{"choices": [{"delta": ...,
# "finish_reason": ...}], "usage": ...}`), not the SDK's typed `ChatCompletionChunk`: building
# those (and transforming the request's params) was the largest cost of a zero-latency answer
# (profiled, bench/RESULTS.md "Load"). Requests still go through the SDK's client (auth,
# retries, timeouts, status errors, SSE parsing, `APIConnectionError` on a torn stream):
# `post(..., cast_to=object)` is its documented way to a raw body.
Chunk = dict[str, Any]
_STREAM: type[openai.AsyncStream[Chunk]] = openai.AsyncStream[object]  # type: ignore[assignment]
_AUTH: openai.RequestOptions = {"security": {"bearer_auth": True}}
BEFORE_HEADERS = "faqbot: failed before the response headers"
KEEP_ALIVE = httpx2.Limits(max_connections=1000, max_keepalive_connections=1000)


def price_usage(
    model: str, prompt: int, completion: int, table: Mapping[str, tuple[float, float]]
) -> Usage:
    """Usage with its estimated cost from a USD-per-million-tokens price table (0 if unknown)."""
    rates = table.get(model)
    if rates is None:  # tolerate dated variants such as gpt-4o-mini-2024-07-18
        rates = next((v for k, v in table.items() if model.startswith(k + "-")), (0.0, 0.0))
    cost = (prompt * rates[0] + completion * rates[1]) / 1_000_000
    return Usage(prompt, completion, round(cost, 8))


def retry_wait_bound(first_token_s: float) -> float:
    """The longest Retry-After worth waiting out: half the first-token deadline, so the retried
    request keeps the other half for its own first token (hosted providers' p99 is 1-2 s)."""
    return first_token_s / 2


def retry_after_seconds(headers: httpx2.Headers) -> float | None:
    """The wait a response asks for (retry-after-ms, Retry-After seconds or HTTP date), or None.

    Parsed as the SDK does, so the retry decision and the breaker's window agree with it.
    """
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            seconds = float(headers.get(name, "")) * scale
        except ValueError:
            continue
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    parsed = email.utils.parsedate_tz(headers.get("retry-after", ""))
    return None if parsed is None else max(0.0, email.utils.mktime_tz(parsed) - time.time())


class BoundedRetryClient(openai.AsyncOpenAI):
    """AsyncOpenAI that does not retry when the provider asks for a wait over `max_retry_wait`.

    Overrides the SDK's retry decision (`_should_retry`, the hook its retry loop consults for
    every 4xx/5xx); backoff for timeouts and connection errors is the SDK's own (0.5 s, 1 s...).
    Copies (`with_options`) keep the bound.
    """

    max_retry_wait: float = 0.0  # set by make_client

    def copy(self, **kwargs: Any) -> Self:
        clone = super().copy(**kwargs)
        clone.max_retry_wait = self.max_retry_wait
        return clone

    with_options = copy

    def _should_retry(self, response: httpx2.Response) -> bool:
        wait = retry_after_seconds(response.headers)
        if wait is not None and wait > self.max_retry_wait:
            return False  # fail now: the breaker keeps the provider's time (faqbot.answering.bot)
        return super()._should_retry(response)


def _status_error(exc: openai.APIStatusError) -> LLMError:
    """The LLMError for an HTTP error status, carrying the response's Retry-After."""
    wait = retry_after_seconds(exc.response.headers)
    if isinstance(exc, openai.RateLimitError):
        return LLMRateLimitError("LLM provider rate limit (429)", retry_after=wait)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return LLMAuthError(f"LLM provider rejected the credentials ({exc.status_code})")
    return LLMUnavailableError(f"LLM provider error {exc.status_code}", retry_after=wait)


def _translate(exc: Exception) -> NoReturn:
    """Map an SDK/transport exception to the faqbot LLMError tree (never leaks the key)."""
    if isinstance(exc, LLMError):
        raise exc
    if isinstance(exc, openai.APITimeoutError):
        raise LLMTimeoutError("LLM request timed out") from exc
    if isinstance(exc, openai.APIStatusError):
        raise _status_error(exc) from exc
    if isinstance(exc, openai.APIConnectionError):
        raise LLMUnavailableError(f"LLM connection failed: {type(exc).__name__}") from exc
    raise LLMProtocolError(f"LLM stream failed: {type(exc).__name__}: {exc}") from exc


def _name(sofar: str, piece: str) -> str:
    """A tool call's name so far plus a streamed `piece`. OpenAI sends the name once;
    llama-cpp-python repeats the whole name in every chunk of a forced call."""
    return sofar if piece == sofar else sofar + piece


def _estimated_usage(tally: Tally) -> Chunk:
    """A usage chunk for a stream that ended without one although `include_usage` was asked:
    faqbot's own estimate (the prompt's size, the output received), so the turn's usage,
    metrics and spend still count the call."""
    usage = {"prompt_tokens": tally.prompt, "completion_tokens": tally.completion}
    return {"choices": [], "usage": usage, "estimated": True}


def _has_output(chunk: Chunk) -> bool:
    """Does this chunk carry model output (text, a tool call, a finish)? A bare role chunk or a
    usage chunk does not: some servers send those before the model has produced anything."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls") or choice.get("finish_reason"):
            return True
    return False


def _output(chunk: Chunk) -> str | None:
    """The generated text a chunk carries (content, tool names and argument fragments), or
    None when it carries none (what the provider bills as completion tokens)."""
    parts: list[str] = []
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        parts.append(delta.get("content") or "")
        for call in delta.get("tool_calls") or ():
            function = call.get("function") or {}
            parts.append((function.get("name") or "") + (function.get("arguments") or ""))
    text = "".join(parts)
    return text or None


def _count(tally: Tally, chunk: Chunk) -> bool:
    """Count a chunk's output (or the provider's usage) in `tally`; True: charge it now."""
    if chunk.get("usage"):
        tally.report(chunk["usage"])
        return False
    output = _output(chunk)
    return output is not None and tally.received(output)


def _unbilled(exc: BaseException) -> bool:
    """Did the request fail before the provider could bill it: an error status, or no
    connection? (A timeout is not: the provider may have read the prompt.)"""
    if isinstance(exc, openai.APIStatusError):
        return True
    return isinstance(exc, openai.APIConnectionError) and not isinstance(
        exc, openai.APITimeoutError
    )


def refusal(exc: BaseException) -> str | None:
    """Why `exc`, raised before a tool call's stream sent anything, says the endpoint refuses
    the request's shape (its tool_choice) rather than being down; None when it does not.

    A 501, an error status whose message names tools or functions (vLLM before 0.8.3 answers
    "required" with a 400 that says so; servers that raise on an unsupported form, a 500), or a
    stream broken right after its headers (llama-cpp-python raises inside its event stream).
    Never a timeout, a refused connection, auth, a 429, or a 400 about something else (a too
    long conversation must not teach the router that the endpoint takes no tool_choice).
    """
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        about_tools = any(word in str(exc.message).lower() for word in ("tool", "function"))
        if code == 501 or (about_tools and (code in (400, 422) or code >= 500)):
            return f"HTTP {code}"
        return None
    broken = isinstance(exc, openai.APIConnectionError) and not isinstance(
        exc, openai.APITimeoutError
    )
    dropped = BEFORE_HEADERS in getattr(exc, "__notes__", ())  # e.g. a stale keep-alive
    if broken and not dropped and isinstance(exc.__cause__, httpx2.RemoteProtocolError):
        return "the stream broke before any output"
    return None


@dataclass
class StreamProbe:
    """What one streamed answer looked like: when its first output came, how many chunks,
    whether it finished, and where its usage came from ("provider", "estimated" or None)."""

    first_output_s: float | None = None
    chunks: int = 0
    finished: bool = False
    usage: str | None = None
    text: str = ""


class OpenAIChatModel:
    """ChatModel over the Chat Completions API with streaming and usage reporting.

    `first_token_s` / `stall_s` bound the provider's silence in each call (module docstring);
    None leaves only the SDK's read timeout. `prefill_s_per_1k` lengthens the first-token
    deadline with the prompt's size (`first_token_deadline`).
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        model: str,
        max_tokens: int,
        temperature: float,
        prices: Mapping[str, tuple[float, float]] | None = None,
        first_token_s: float | None = None,
        stall_s: float | None = None,
        prefill_s_per_1k: float = 0.0,
    ) -> None:
        self.client = client
        self.name = model
        self.endpoint = f"{client.base_url}#{model}"  # what capabilities are remembered by
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.prices = dict(prices or {})
        self.first_token_s = first_token_s
        self.stall_s = stall_s
        self.prefill_s_per_1k = prefill_s_per_1k

    def _usage(self, raw: dict[str, Any]) -> Usage:
        prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
        return price_usage(self.name, int(prompt or 0), int(completion or 0), self.prices)

    async def _stream(self, messages: Sequence[Message], **extra: Any) -> openai.AsyncStream[Chunk]:
        body = {
            "model": self.name,
            "messages": list(messages),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            **extra,
        }
        return await self.client.post(
            "/chat/completions",
            body=body,
            cast_to=object,
            options=_AUTH,
            stream=True,
            stream_cls=_STREAM,
        )

    async def _chunks(
        self, messages: Sequence[Message], meter: Meter | None, **extra: Any
    ) -> AsyncGenerator[Chunk, None]:
        """The stream's chunks; LLMTimeoutError when the provider stays silent too long.

        The first-token clock starts with the call, so it covers connecting, the SDK's retries,
        the response headers and any role-only chunk. Always releases the connection, and
        always charges `meter` what the call cost, however it ends (module docstring).
        """
        loop = asyncio.get_running_loop()
        tally = Tally(meter, estimate_prompt(messages, extra.get("tools") or ()))
        first_s = self.first_token_deadline(tally.prompt)
        first_by = None if first_s is None else loop.time() + first_s
        try:
            stream = await self._open(messages, tally, first_by, **extra)
            try:
                got_output = False
                while True:
                    if got_output:
                        by = None if self.stall_s is None else loop.time() + self.stall_s
                        why = f"stream stalled: no chunk for {self.stall_s} s"
                    else:
                        by, why = first_by, f"no first token within {first_s} s"
                    async with _silence(by, why):
                        try:
                            chunk = await anext(stream)
                        except StopAsyncIteration:
                            chunk = None
                    if chunk is None:
                        if tally.reported is None:  # e.g. llama-cpp-python 0.3.36's streams
                            yield _estimated_usage(tally)
                        return
                    got_output = got_output or _has_output(chunk)
                    if _count(tally, chunk):
                        await tally.flush()
                    yield chunk
            finally:
                await stream.close()
        finally:
            await tally.flush()  # also for a call abandoned mid-stream (GeneratorExit, cancel)

    def first_token_deadline(self, prompt_tokens: int) -> float | None:
        """Seconds the provider may take to its first output for a prompt this size: the fixed
        deadline plus `prefill_s_per_1k` per 1,000 prompt tokens (a CPU model reads an
        800-token prompt in seconds; a hosted one in milliseconds, so the default adds 0)."""
        if self.first_token_s is None:
            return None
        return round(self.first_token_s + self.prefill_s_per_1k * prompt_tokens / 1000, 3)

    async def _open(
        self, messages: Sequence[Message], tally: Tally, first_by: float | None, **extra: Any
    ) -> openai.AsyncStream[Chunk]:
        """Send the request, its prompt charged first; a refused request is charged nothing."""
        await tally.sent()
        try:
            async with _silence(first_by, "no first token by the first-token deadline"):
                return await self._stream(messages, **extra)
        except Exception as exc:
            if _unbilled(exc):
                tally.refused()
            exc.add_note(BEFORE_HEADERS)  # not a stream that broke: see `refusal`
            raise

    async def call_tools(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]],
        *,
        meter: Meter | None = None,
        tool_choice: ToolChoice = "required",
    ) -> ToolCompletion:
        """Stream a tool-choice completion and reassemble tool calls from argument fragments.

        Raises ToolChoiceRefused when the endpoint refuses the request's form (`refusal`), so
        the router can try another (faqbot.llm.capabilities).
        """
        parts: dict[int, dict[str, str]] = {}
        text: list[str] = []
        usage = Usage()
        saw_choice = saw_chunk = False
        try:
            chunks = self._chunks(messages, meter, tools=list(tools), tool_choice=tool_choice)
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    saw_chunk = saw_chunk or "estimated" not in chunk
                    if chunk.get("usage"):
                        usage = self._usage(chunk["usage"])
                    if not chunk.get("choices"):
                        continue
                    saw_choice = True
                    delta = chunk["choices"][0].get("delta") or {}
                    if delta.get("content"):
                        text.append(delta["content"])
                    for call in delta.get("tool_calls") or []:
                        slot = parts.setdefault(
                            call["index"], {"id": "", "name": "", "arguments": ""}
                        )
                        if call.get("id"):
                            slot["id"] = call["id"]
                        function = call.get("function") or {}
                        slot["name"] = _name(slot["name"], function.get("name") or "")
                        slot["arguments"] += function.get("arguments") or ""
        except Exception as exc:
            why = None if saw_chunk else refusal(exc)
            if why is not None:
                raise ToolChoiceRefused(f"tool_choice {tool_choice!r} refused: {why}") from exc
            _translate(exc)
        if not saw_chunk:  # llama-cpp-python: "required" raises inside its stream
            raise ToolChoiceRefused(f"tool_choice {tool_choice!r} refused: an empty stream")
        if not saw_choice:
            raise LLMProtocolError("LLM returned no choices")
        calls = tuple(
            ToolCall(name=p["name"], arguments=p["arguments"], id=p["id"])
            for _, p in sorted(parts.items())
        )
        return ToolCompletion(calls, "".join(text), usage)

    async def stream_text(
        self, messages: Sequence[Message], usage_sink: list[Usage], *, meter: Meter | None = None
    ) -> AsyncIterator[str]:
        """Yield the answer's text pieces as they arrive; a stream without a finish is torn."""
        finished = False
        try:
            chunks = self._chunks(messages, meter)
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    if chunk.get("usage"):
                        usage_sink.append(self._usage(chunk["usage"]))
                    if not chunk.get("choices"):
                        continue
                    choice = chunk["choices"][0]
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        yield content
                    if choice.get("finish_reason"):
                        finished = True
        except Exception as exc:
            _translate(exc)
        if not finished:
            raise LLMProtocolError("LLM stream ended without a finish reason (torn stream)")

    async def probe_stream(self, messages: Sequence[Message], timeout_s: float) -> StreamProbe:
        """Stream one answer and describe the stream (for `python -m faqbot doctor`)."""
        started = time.perf_counter()
        probe = StreamProbe()
        try:
            async with asyncio.timeout(timeout_s):
                chunks = self._chunks(messages, None)
                async with contextlib.aclosing(chunks):
                    async for chunk in chunks:
                        if _has_output(chunk) and probe.first_output_s is None:
                            probe.first_output_s = time.perf_counter() - started
                        if chunk.get("usage"):
                            probe.usage = "estimated" if "estimated" in chunk else "provider"
                        for choice in chunk.get("choices") or ():
                            probe.chunks += 1
                            probe.text += (choice.get("delta") or {}).get("content") or ""
                            probe.finished = probe.finished or bool(choice.get("finish_reason"))
        except TimeoutError:
            raise LLMTimeoutError(f"no complete answer within {timeout_s} s") from None
        except Exception as exc:
            _translate(exc)
        return probe

    async def models(self, timeout_s: float) -> list[str]:
        """The ids the endpoint lists at /models (for `python -m faqbot doctor`)."""
        try:
            page = await self.client.with_options(timeout=timeout_s, max_retries=0).models.list()
        except Exception as exc:
            _translate(exc)
        return [m.id for m in page.data]

    async def complete(
        self, messages: Sequence[Message], timeout_s: float, max_tokens: int | None = None
    ) -> str:
        """One non-streamed completion's text (a plain chat call, for the doctor)."""
        body = {
            "model": self.name,
            "messages": list(messages),
            "max_tokens": max_tokens or self.max_tokens,
            "temperature": self.temperature,
        }
        try:
            reply = await self.client.with_options(timeout=timeout_s, max_retries=0).post(
                "/chat/completions", body=body, cast_to=object, options=_AUTH
            )
        except Exception as exc:
            _translate(exc)
        choices = reply.get("choices") if isinstance(reply, dict) else None
        if not choices:
            raise LLMProtocolError("LLM returned no choices")
        return str((choices[0].get("message") or {}).get("content") or "")

    async def warm_up(self, timeout_s: float) -> float:
        """One tiny call that makes a local server load and run its model; its seconds."""
        started = time.perf_counter()
        await self.complete([{"role": "user", "content": "Hi"}], timeout_s, max_tokens=4)
        return time.perf_counter() - started

    async def ping(self, timeout_s: float) -> None:
        try:
            await self.client.with_options(timeout=timeout_s, max_retries=0).models.list()
        except Exception as exc:
            _translate(exc)


@contextlib.asynccontextmanager
async def _silence(deadline: float | None, why: str) -> AsyncIterator[None]:
    """Raise LLMTimeoutError(why) if the block is still waiting at loop time `deadline`.

    `asyncio.timeout_at` runs in the caller's task (no extra task around the SDK's stream), and
    its `expired()` tells our timeout apart from a TimeoutError raised by anything inside.
    """
    if deadline is None:
        yield
        return
    timeout = asyncio.timeout_at(deadline)
    try:
        async with timeout:
            yield
    except TimeoutError:
        if timeout.expired():
            raise LLMTimeoutError(why) from None
        raise


def make_client(
    api_key: str,
    *,
    base_url: str | None,
    timeout: float,
    connect_timeout: float,
    max_retries: int,
    max_retry_wait: float,
) -> openai.AsyncOpenAI:
    """An AsyncOpenAI client with explicit timeouts, a bounded retry count, and no retry after a
    Retry-After longer than `max_retry_wait` seconds (see BoundedRetryClient).

    Every connection stays open for reuse (the SDK keeps 100 of its 1,000): with more answers
    streaming at once, each call beyond the 100th opened a new connection (a TCP and TLS
    handshake) and closed it after use (seen under load, bench/RESULTS.md "Load").
    """
    client = BoundedRetryClient(
        api_key=api_key,
        base_url=base_url,
        timeout=openai.Timeout(timeout, connect=connect_timeout),
        max_retries=max_retries,
        http_client=openai.DefaultAsyncHttpxClient(limits=KEEP_ALIVE),
    )
    client.max_retry_wait = max_retry_wait
    return client
