"""OpenAIChatModel: the only module that imports `openai`.

Works with any OpenAI-compatible endpoint (OpenAI, Azure-style gateways, Ollama, vLLM, LM Studio)
through an injected AsyncOpenAI client; SDK exceptions are translated into faqbot's LLMError tree.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, NoReturn

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


def _translate(exc: Exception) -> NoReturn:
    """Map an SDK/transport exception to the faqbot LLMError tree (never leaks the key)."""
    if isinstance(exc, LLMError):
        raise exc
    if isinstance(exc, openai.APITimeoutError):
        raise LLMTimeoutError("LLM request timed out") from exc
    if isinstance(exc, openai.RateLimitError):
        raise LLMRateLimitError("LLM provider rate limit (429)") from exc
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        raise LLMAuthError(f"LLM provider rejected the credentials ({exc.status_code})") from exc
    if isinstance(exc, openai.APIStatusError):
        raise LLMUnavailableError(f"LLM provider error {exc.status_code}") from exc
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
) -> openai.AsyncOpenAI:
    """An AsyncOpenAI client with explicit timeouts and a bounded retry count."""
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        timeout=openai.Timeout(timeout, connect=connect_timeout),
        max_retries=max_retries,
    )
