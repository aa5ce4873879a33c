"""OpenAIChatModel: the only module that imports `openai`.

Works with any OpenAI-compatible endpoint (OpenAI, Azure-style gateways, Ollama, vLLM, LM Studio)
through an injected AsyncOpenAI client; SDK exceptions are translated into faqbot's LLMError tree.

Retry-After: the SDK waits out a provider's Retry-After (up to two minutes) before each retry, so
one `Retry-After: 20` held every question 20 s before its offline fallback. `make_client` builds a
client that retries only when the wait is at most MAX_RETRY_WAIT_S (well inside the per-turn LLM
budget); a longer one fails at once with the wait in the error's `retry_after`, and the bot keeps
its circuit breaker open that long (faqbot.bot), so users get the offline answer without waiting.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, NoReturn

import httpx2
import openai

from faqbot.errors import (
    LLMAuthError,
    LLMError,
    LLMProtocolError,
    LLMRateLimitError,
    LLMTimeoutError,
    LLMUnavailableError,
)
from faqbot.events import Usage
from faqbot.llm.protocol import Message, ToolCall, ToolCompletion


def price_usage(
    model: str, prompt: int, completion: int, table: Mapping[str, tuple[float, float]]
) -> Usage:
    """Usage with its estimated cost from a USD-per-million-tokens price table (0 if unknown)."""
    rates = table.get(model)
    if rates is None:  # tolerate dated variants such as gpt-4o-mini-2024-07-18
        rates = next((v for k, v in table.items() if model.startswith(k + "-")), (0.0, 0.0))
    cost = (prompt * rates[0] + completion * rates[1]) / 1_000_000
    return Usage(prompt, completion, round(cost, 8))


MAX_RETRY_WAIT_S = 2.0  # the longest Retry-After the SDK may wait out before its retry


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
    Copies (`with_options`) fall back to the class default.
    """

    max_retry_wait: float = MAX_RETRY_WAIT_S

    def _should_retry(self, response: httpx2.Response) -> bool:
        wait = retry_after_seconds(response.headers)
        if wait is not None and wait > self.max_retry_wait:
            return False  # fail now: the breaker keeps the provider's time (faqbot.bot)
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


class OpenAIChatModel:
    """ChatModel over the Chat Completions API with streaming and usage reporting."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        model: str,
        max_tokens: int,
        temperature: float,
        prices: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self.client = client
        self.name = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.prices = dict(prices or {})

    def _usage(self, raw: Any) -> Usage:
        if raw is None:
            return Usage()
        return price_usage(
            self.name, int(raw.prompt_tokens or 0), int(raw.completion_tokens or 0), self.prices
        )

    async def _stream(self, messages: Sequence[Message], **extra: Any) -> Any:
        create: Any = self.client.chat.completions.create  # SDK overloads are too narrow here
        return await create(
            model=self.name,
            messages=list(messages),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            stream=True,
            stream_options={"include_usage": True},
            **extra,
        )

    async def call_tools(
        self, messages: Sequence[Message], tools: Sequence[dict[str, Any]]
    ) -> ToolCompletion:
        """Stream a tool-choice completion and reassemble tool calls from argument fragments."""
        parts: dict[int, dict[str, str]] = {}
        text: list[str] = []
        usage = Usage()
        saw_choice = False
        try:
            stream = await self._stream(messages, tools=list(tools), tool_choice="auto")
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = self._usage(chunk.usage)
                if not chunk.choices:
                    continue
                saw_choice = True
                delta = chunk.choices[0].delta
                if delta.content:
                    text.append(delta.content)
                for call in delta.tool_calls or []:
                    slot = parts.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                    if call.id:
                        slot["id"] = call.id
                    if call.function is not None:
                        slot["name"] += call.function.name or ""
                        slot["arguments"] += call.function.arguments or ""
        except Exception as exc:
            _translate(exc)
        if not saw_choice:
            raise LLMProtocolError("LLM returned no choices")
        calls = tuple(
            ToolCall(name=p["name"], arguments=p["arguments"], id=p["id"])
            for _, p in sorted(parts.items())
        )
        return ToolCompletion(calls, "".join(text), usage)

    async def stream_text(
        self, messages: Sequence[Message], usage_sink: list[Usage]
    ) -> AsyncIterator[str]:
        """Yield the answer's text pieces as they arrive; a stream without a finish is torn."""
        finished = False
        try:
            stream = await self._stream(messages)
            async for chunk in stream:
                if chunk.usage is not None:
                    usage_sink.append(self._usage(chunk.usage))
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.delta.content:
                    yield choice.delta.content
                if choice.finish_reason is not None:
                    finished = True
        except Exception as exc:
            _translate(exc)
        if not finished:
            raise LLMProtocolError("LLM stream ended without a finish reason (torn stream)")

    async def ping(self, timeout_s: float) -> None:
        try:
            await self.client.with_options(timeout=timeout_s, max_retries=0).models.list()
        except Exception as exc:
            _translate(exc)


def make_client(
    api_key: str,
    *,
    base_url: str | None,
    timeout: float,
    connect_timeout: float,
    max_retries: int,
    max_retry_wait: float = MAX_RETRY_WAIT_S,
) -> openai.AsyncOpenAI:
    """An AsyncOpenAI client with explicit timeouts, a bounded retry count, and no retry after a
    Retry-After longer than `max_retry_wait` seconds (see BoundedRetryClient)."""
    client = BoundedRetryClient(
        api_key=api_key,
        base_url=base_url,
        timeout=openai.Timeout(timeout, connect=connect_timeout),
        max_retries=max_retries,
    )
    client.max_retry_wait = max_retry_wait
    return client
