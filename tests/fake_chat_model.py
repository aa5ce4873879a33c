"""An in-process fake `ChatModel` for the bot's decision logic: no sockets, no SDK, no clocks.

`tests/fake_openai.py` (a loopback HTTP server) stays the fake for the OpenAI adapter
(`faqbot/llm/openai_model.py`: SSE and usage parsing, HTTP errors, retries, torn streams,
first-token deadlines, capabilities) and for end-to-end tests. Tests of what the bot decides
(routing, grounding, follow-ups, fallback when the model raises, the circuit breaker, spend
charged through the `Meter`, local routing, speculative answers) script this one instead:

    model = ScriptedChatModel()
    model.script(tool("faq_sales", question="annual discount?"), text("Yes, 20%."))
    bot = build_bot(settings, model=model)
    ...  # model.calls records what the bot sent (messages, tools, tool_choice), in order

The vocabulary mirrors the HTTP fake's (`fo.tool`, `fo.tools`, `fo.text`, `fo.bad_args`,
`fo.unknown_tool`, `fo.torn`, `fo.hang`, `fo.rate_limited`, `fo.server_error`, ...), except that
a failure is the `faqbot.errors.LLMError` the adapter raises for it, not an HTTP status.
Steps are served FIFO to `call_tools` and `stream_text` alike, as the HTTP fake serves its
replies whatever the request: a `text` step given to `call_tools` is a reply without a tool call
(the router's "NONE"); a `tool` step given to `stream_text` streams its arguments as text.
A call with nothing scripted raises `UnscriptedCall` and is counted in `unscripted`
(`assert_all_scripted()` fails the test on it: the bot would otherwise turn it into a silent
fallback).

Gates instead of sleeps: `gated(step, event, after=n)` holds a step after `n` pieces (0: before
anything, a provider that has not answered yet) until `event` is set; `hang()` holds forever
(until the caller is cancelled or its deadline fires). `await model.wait_calls(n)` returns once
`n` calls have arrived.

Spend: each call charges its `meter` as `OpenAIChatModel` does (faqbot.llm.tokens.Tally): the
estimated prompt when the call starts, output as it streams (in FLUSH_TOKENS steps), and at the
end the step's usage (reported by the "provider") instead of the estimate; a call abandoned or
failed mid-way is charged what it spent. A failure the provider would not bill (rate limit,
unavailable, auth, ToolChoiceRefused: an error status or no connection) is charged nothing; a
timeout or a protocol error keeps the prompt, a torn stream what it sent (`fail(..., billed=...)`
overrides).

Usage: a step's `usage=(prompt, completion)`, else the prompt's estimate and one completion token
per streamed piece; its cost comes from `prices` (USD per million tokens, as
`Settings.llm_price_table`; none: 0).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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
from faqbot.llm.protocol import ChatModel, Message, Meter, ToolCall, ToolChoice, ToolCompletion
from faqbot.llm.tokens import Tally, estimate_prompt

__all__ = [
    "Call",
    "ScriptedChatModel",
    "Step",
    "UnscriptedCall",
    "auth_error",
    "bad_args",
    "empty_choices",
    "fail",
    "gated",
    "hang",
    "protocol_error",
    "rate_limited",
    "refused",
    "server_error",
    "text",
    "timeout",
    "tool",
    "tools",
    "torn",
    "unknown_tool",
]

Kind = Literal["text", "tool_calls", "fail"]
# failures a provider does not bill: an error status, or a request it never got
_UNBILLED = (LLMRateLimitError, LLMUnavailableError, LLMAuthError, ToolChoiceRefused)


@dataclass
class Step:
    """One scripted reply.

    `text` is the content of a text reply (streamed one word per piece); `tool_calls` holds
    `(name, raw arguments)` pairs (sent verbatim, so possibly invalid JSON). `error` is raised:
    at once for a `fail` step, after `raise_after` pieces for a text step that has one (a torn
    stream). `gate` holds the step after `gate_after` pieces until it is set. `billed` says
    whether a failure keeps its prompt charged (None: as the provider would, module docstring).
    """

    kind: Kind
    text: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    usage: tuple[int, int] | None = None
    error: LLMError | None = None
    raise_after: int | None = None
    gate: asyncio.Event | None = None
    gate_after: int = 0
    billed: bool | None = None


@dataclass(frozen=True)
class Call:
    """What the bot sent in one call: `kind` "tools" (call_tools) or "text" (stream_text)."""

    kind: Literal["tools", "text"]
    messages: list[Message]
    tools: list[dict[str, Any]] | None
    tool_choice: ToolChoice | None
    meter: Meter | None


class UnscriptedCall(LLMProtocolError):
    """The bot called the model with no step left in the script."""


def text(content: str, usage: tuple[int, int] | None = None) -> Step:
    """A text answer, streamed one word per piece (to `call_tools`: a reply with no tool call)."""
    return Step("text", text=content, usage=usage)


def tool(name: str, usage: tuple[int, int] | None = None, **arguments: Any) -> Step:
    """One tool call to `name` with `arguments` JSON-encoded."""
    return Step("tool_calls", tool_calls=[(name, json.dumps(arguments))], usage=usage)


def tools(
    calls: list[tuple[str, dict[str, Any] | str]], usage: tuple[int, int] | None = None
) -> Step:
    """Several tool calls, in order; a `str` argument is sent verbatim."""
    raw = [(n, a if isinstance(a, str) else json.dumps(a)) for n, a in calls]
    return Step("tool_calls", tool_calls=raw, usage=usage)


def bad_args(name: str = "faq_sales", raw: str = "{not json") -> Step:
    """A tool call whose arguments are not valid JSON."""
    return Step("tool_calls", tool_calls=[(name, raw)])


def unknown_tool(name: str = "faq_nope") -> Step:
    """A tool call to a function the request did not offer."""
    return Step("tool_calls", tool_calls=[(name, json.dumps({"question": "x"}))])


def fail(error: LLMError, *, billed: bool | None = None) -> Step:
    """The call raises `error` before any output."""
    return Step("fail", error=error, billed=billed)


def rate_limited(retry_after: float | None = 1) -> Step:
    """What the adapter raises for a 429 (with its Retry-After)."""
    return fail(LLMRateLimitError("LLM provider rate limit (429)", retry_after=retry_after))


def server_error(retry_after: float | None = None) -> Step:
    """What the adapter raises for a 500 (or a refused connection)."""
    return fail(LLMUnavailableError("LLM provider error 500", retry_after=retry_after))


def auth_error() -> Step:
    """What the adapter raises for a 401."""
    return fail(LLMAuthError("LLM provider rejected the credentials (401)"))


def timeout() -> Step:
    """What the adapter raises when the provider stays silent past its deadline."""
    return fail(LLMTimeoutError("no first token within the deadline"))


def protocol_error(message: str = "LLM returned no choices") -> Step:
    """What the adapter raises for a reply it cannot use (no choices, a broken stream)."""
    return fail(LLMProtocolError(message))


def empty_choices() -> Step:
    """What the adapter raises for a 200 whose chunks carry `"choices": []`."""
    return protocol_error("LLM returned no choices")


def refused(why: str = "HTTP 400") -> Step:
    """The endpoint refuses the request's tool_choice (the router tries its next form)."""
    return fail(ToolChoiceRefused(f"tool_choice refused: {why}"))


def torn(content: str, after: int = 3, error: LLMError | None = None) -> Step:
    """Stream `after` words of `content`, then raise: by default what the adapter raises when
    the connection drops mid-stream (the SDK's APIConnectionError). What was streamed stays
    charged, as a provider bills it."""
    cut = error or LLMUnavailableError("LLM connection failed: APIConnectionError")
    return Step("text", text=content, error=cut, raise_after=after)


def gated(step: Step, event: asyncio.Event, after: int = 0) -> Step:
    """`step`, held after `after` pieces (0: before anything) until `event` is set."""
    return dataclasses.replace(step, gate=event, gate_after=after)


def hang() -> Step:
    """A provider that never answers: the call waits until it is cancelled."""
    return gated(text(""), asyncio.Event())


def _pieces(content: str) -> list[str]:
    """One piece per word, each with its leading whitespace (as the HTTP fake's chunks)."""
    return re.findall(r"\s*\S+\s*$|\s*\S+", content) or [content]


class ScriptedChatModel:
    """A `ChatModel` that replays scripted steps in process (module docstring)."""

    def __init__(
        self,
        *steps: Step,
        name: str = "gpt-4o-mini",
        endpoint: str | None = None,
        prices: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self.name = name
        # unique per instance: capabilities learnt in one test never leak into another
        self.endpoint = endpoint or f"scripted://{id(self):x}#{name}"
        self.prices = dict(prices or {})
        self.calls: list[Call] = []
        self.pings: list[float] = []
        self.ping_error: LLMError | None = None
        self.unscripted = 0
        self._queue: deque[Step] = deque(steps)
        self._arrived = asyncio.Event()

    def script(self, *steps: Step) -> None:
        """Queue steps, served FIFO."""
        self._queue.extend(steps)

    def reset(self) -> None:
        """Clear the script and the records (as the HTTP fake's `reset`)."""
        self._queue.clear()
        self.calls.clear()
        self.pings.clear()

    @property
    def pending(self) -> int:
        """Steps not served yet."""
        return len(self._queue)

    def assert_all_scripted(self) -> None:
        assert not self.unscripted, f"{self.unscripted} call(s) found no scripted step"

    async def wait_calls(self, count: int) -> None:
        """Return once `count` calls have arrived (bound it with asyncio.timeout)."""
        while len(self.calls) < count:
            self._arrived.clear()
            await self._arrived.wait()

    def _next(self, call: Call) -> Step:
        self.calls.append(call)
        self._arrived.set()
        if not self._queue:
            self.unscripted += 1
            raise UnscriptedCall(f"no scripted step for {call.kind} call #{len(self.calls)}")
        return self._queue.popleft()

    def _usage(self, step: Step, tally: Tally, completion: int) -> Usage:
        prompt, completion = step.usage or (tally.prompt, completion)
        rates = self.prices.get(self.name, (0.0, 0.0))
        cost = (prompt * rates[0] + completion * rates[1]) / 1_000_000
        return Usage(prompt, completion, round(cost, 8))

    @staticmethod
    async def _hold(step: Step, done: int) -> None:
        if step.gate is not None and step.gate_after == done:
            await step.gate.wait()

    @staticmethod
    def _failed(step: Step, tally: Tally, error: LLMError, *, midway: bool = False) -> LLMError:
        """`error`, the call charged nothing if the provider would not bill it: a failure
        before any output that is an error status or no connection (a stream cut `midway`
        is billed what it sent)."""
        billed = step.billed
        if billed is None:
            billed = midway or not isinstance(error, _UNBILLED)
        if not billed:
            tally.refused()
        return error

    async def call_tools(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]],
        *,
        meter: Meter | None = None,
        tool_choice: ToolChoice = "required",
    ) -> ToolCompletion:
        step = self._next(Call("tools", list(messages), list(tools), tool_choice, meter))
        tally = Tally(meter, estimate_prompt(messages, tools))
        await tally.sent()
        try:
            await self._hold(step, 0)
            if step.kind == "fail":
                assert step.error is not None
                raise self._failed(step, tally, step.error)
            output = step.text if step.kind == "text" else ""
            pieces = _pieces(output) if output else []
            calls: list[ToolCall] = []
            for i, (name, raw) in enumerate(step.tool_calls):
                calls.append(ToolCall(name=name, arguments=raw, id=f"call_{i + 1}"))
                pieces.append(name + raw)
            for piece in pieces:
                tally.received(piece)
            if step.error is not None:  # a torn reply
                raise self._failed(step, tally, step.error, midway=True)
            usage = self._usage(step, tally, tally.completion)
            tally.report(_reported(usage))
            return ToolCompletion(tuple(calls), output, usage)
        finally:
            await tally.flush()

    async def stream_text(
        self, messages: Sequence[Message], usage_sink: list[Usage], *, meter: Meter | None = None
    ) -> AsyncIterator[str]:
        step = self._next(Call("text", list(messages), None, None, meter))
        tally = Tally(meter, estimate_prompt(messages))
        await tally.sent()
        try:
            if step.kind == "fail":
                await self._hold(step, 0)
                assert step.error is not None
                raise self._failed(step, tally, step.error)
            content = step.text or "".join(n + a for n, a in step.tool_calls)
            pieces = _pieces(content) if content else []
            for n, piece in enumerate(pieces):
                await self._hold(step, n)
                if step.raise_after is not None and n >= step.raise_after:
                    break
                if tally.received(piece):
                    await tally.flush()
                yield piece
            else:
                await self._hold(step, len(pieces))
            if step.error is not None:
                raise self._failed(step, tally, step.error, midway=True)
            usage = self._usage(step, tally, len(pieces))
            tally.report(_reported(usage))
            usage_sink.append(usage)
        finally:
            await tally.flush()  # also for a stream closed early or cancelled

    async def ping(self, timeout_s: float) -> None:
        self.pings.append(timeout_s)
        if self.ping_error is not None:
            raise self.ping_error


def _reported(usage: Usage) -> dict[str, int]:
    """`usage` as a provider reports it at the end of a call."""
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}


def _is_chat_model(model: ScriptedChatModel) -> ChatModel:
    """Never called: mypy checks here that ScriptedChatModel satisfies the ChatModel Protocol."""
    return model
