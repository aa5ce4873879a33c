"""What an LLM call costs while it runs: token estimates and the running tally of one call.

A provider bills the prompt as soon as it reads the request and each completion token as it
generates it, whether or not anyone reads the answer; its `usage` arrives only at the end of a
stream, so a client that leaves early never sees it. The tally therefore charges the call's
`Meter` (faqbot.spend.Tab) an estimate as the tokens are spent: the prompt when the request is
sent, the completion in steps while it streams, and at the end the provider's `usage` instead
of the estimate when it came, else what was received (an abandoned or failed call). A request
the provider refused (an error status) or never got (no connection) is charged nothing.

The estimate is one token per 3 bytes of UTF-8 (tiktoken's encodings cannot be downloaded
here, and each provider tokenizes its own way): English runs about 4 bytes a token, other
Latin and Cyrillic scripts 4-6, so this errs high there; CJK text, about one token per 3-byte
character, comes out near even. Per message a few tokens of framing are added, as providers
count them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from faqbot.llm.protocol import Message, Meter

BYTES_PER_TOKEN = 3
MESSAGE_TOKENS = 4  # each message's role and framing
REPLY_TOKENS = 3  # the assistant reply's priming
FLUSH_TOKENS = 128  # a streaming completion is charged in steps of this many tokens


def estimate_tokens(text: str) -> int:
    """Tokens of `text`, estimated high (see the module docstring)."""
    return -(-len(text.encode("utf-8", "replace")) // BYTES_PER_TOKEN)


def _text(content: Any) -> str:
    """A message's text, also for the list-of-parts content form."""
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def estimate_prompt(messages: Sequence[Message], tools: Sequence[dict[str, Any]] = ()) -> int:
    """Prompt tokens of a chat request: every message, and the tool schemas it offers."""
    total = REPLY_TOKENS + sum(
        MESSAGE_TOKENS + estimate_tokens(_text(m.get("content"))) for m in messages
    )
    if tools:
        total += estimate_tokens(json.dumps(list(tools), separators=(",", ":")))
    return total


class Tally:
    """One call's tokens, charged to `meter` as they are spent (None: counted, not charged)."""

    def __init__(self, meter: Meter | None, prompt_tokens: int) -> None:
        self.meter = meter
        self.prompt = prompt_tokens
        self.chunks = 0  # chunks that carried output
        self.output_bytes = 0
        self.reported: int | None = None  # the provider's total, once its usage arrived
        self.billed = True
        self.charged = 0

    @property
    def completion(self) -> int:
        """Completion tokens received so far: at least one per chunk of output."""
        return max(self.chunks, -(-self.output_bytes // BYTES_PER_TOKEN))

    @property
    def spent(self) -> int:
        """What the call has cost so far, as best known."""
        if not self.billed:
            return 0
        if self.reported is not None:
            return self.reported
        return self.prompt + self.completion

    async def sent(self) -> None:
        """The request is on its way: the provider bills its prompt once it reads it."""
        await self._charge_to(self.prompt)

    def refused(self) -> None:
        """The provider refused the request, or never got it: nothing was billed."""
        self.billed = False

    def received(self, output: str) -> bool:
        """A chunk of output arrived; True when enough is uncharged to charge it now (`flush`)."""
        self.chunks += 1
        self.output_bytes += len(output.encode("utf-8", "replace"))
        return self.spent - self.charged >= FLUSH_TOKENS

    def report(self, usage: dict[str, Any]) -> None:
        """The provider's own count of the call (its stream's last chunk)."""
        self.reported = int(usage.get("prompt_tokens") or 0) + int(
            usage.get("completion_tokens") or 0
        )

    async def flush(self) -> None:
        """Charge what was spent since the last charge (when the call ends: its final cost)."""
        await self._charge_to(self.spent)

    async def _charge_to(self, total: int) -> None:
        delta, self.charged = total - self.charged, total
        if delta and self.meter is not None:
            await self.meter.charge(delta)
