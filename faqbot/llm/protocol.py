"""ChatModel: what the router and answerer need from a language model, nothing more.

Implementations raise only faqbot.errors.LLMError subclasses, so callers never see SDK types.
Each call charges its tokens to the `Meter` it is given while they are spent (faqbot.llm.tokens),
also when it fails or its caller goes away mid-stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from faqbot.domain import Usage

Message = dict[str, Any]
# "required", "auto", or {"type": "function", "function": {"name": ...}} (faqbot.llm.capabilities)
ToolChoice = str | dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call as sent by the model; `arguments` is the raw JSON text (may be invalid)."""

    name: str
    arguments: str
    id: str = ""


@dataclass(frozen=True, slots=True)
class ToolCompletion:
    """The router's reply: zero or more tool calls, any text, and the usage of the call."""

    tool_calls: tuple[ToolCall, ...]
    text: str = ""
    usage: Usage = field(default_factory=Usage)


class Meter(Protocol):
    """Where a call's tokens are charged as it spends them (faqbot.spend.Tab)."""

    async def charge(self, tokens: int) -> None:
        """Add `tokens` (negative: the provider counted less than was estimated). Never raises
        for a fault of its store, and the charge lands even if the caller is cancelled."""
        ...


class ChatModel(Protocol):
    """A chat-completions model. `name` is logged and used for pricing; `endpoint` (base URL
    and model) keys what the server was found to accept (faqbot.llm.capabilities)."""

    name: str
    endpoint: str

    async def call_tools(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]],
        *,
        meter: Meter | None = None,
        tool_choice: ToolChoice = "required",
    ) -> ToolCompletion:
        """One completion offering `tools`; returns the (reassembled) tool calls. Raises
        ToolChoiceRefused when the endpoint refuses `tool_choice`."""
        ...

    def stream_text(
        self, messages: Sequence[Message], usage_sink: list[Usage], *, meter: Meter | None = None
    ) -> AsyncIterator[str]:
        """Stream the completion's text pieces; append the call's Usage to `usage_sink`."""
        ...

    async def ping(self, timeout_s: float) -> None:
        """Cheap reachability check (lists models); raises LLMError when unreachable."""
        ...
