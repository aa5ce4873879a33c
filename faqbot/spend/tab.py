"""A turn's tab: charges a spender's budgets as the turn's LLM calls spend tokens.

The provider bills a call while it runs, whether or not anyone reads the answer, so the model
charges its `Meter` (this tab) as it goes (faqbot.llm.tokens), and the last charge of a call is
made in a `finally` while its task is being cancelled (a closed tab, the chat's Stop) or its
stream closed. So a write that waits (Redis) runs in a task of its own that the caller awaits
through `asyncio.shield`: a second cancellation while it waits does not lose the charge. A write
to process memory never waits, so nothing can interrupt it: it runs inline (a task per charge
cost ~40 us, bench/spend_overhead.py).

The keys are fixed when the tab is opened: every charge of the turn, corrections included, goes
to the same day's counts even if the turn runs past midnight UTC.
"""

from __future__ import annotations

import asyncio
from typing import Literal, Protocol

Scope = Literal["deployment", "client", "conversation"]
Keys = list[tuple[Scope, str, int]]  # (scope, counter key, expiry in seconds), broadest first


class Counts(Protocol):
    async def add(self, keys: Keys, tokens: int) -> None: ...


_WRITING: set[asyncio.Task[None]] = set()  # charges in flight, held until they land


class Tab:
    """Charges `keys` through `counts`; `tokens` is what it charged so far (for logs and tests)."""

    def __init__(self, counts: Counts, keys: Keys, *, waits: bool = True) -> None:
        self._counts = counts
        self._keys = keys
        self._waits = waits  # False: `counts.add` never suspends (process memory)
        self.tokens = 0

    async def charge(self, tokens: int) -> None:
        """Add `tokens` (negative: the provider counted less than the estimate) to each count;
        returns once written. A fault of the counters is logged by them, never raised."""
        if not tokens:
            return
        self.tokens += tokens
        if not self._waits:
            await self._counts.add(self._keys, tokens)
            return
        write = asyncio.ensure_future(self._counts.add(self._keys, tokens))
        _WRITING.add(write)
        write.add_done_callback(_WRITING.discard)
        await asyncio.shield(write)
