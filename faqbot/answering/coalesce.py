"""Fewer, larger Token events for a face whose every message has a fixed cost (the chat UI).

Each `stream_token` the chat UI receives is one socket.io packet: encoded, queued and written
by the server, parsed and rendered by the browser. A fast model (or a cached or offline answer)
produces words far faster than anyone reads them, and under load the packets, not the words,
were the server's cost (profiled, bench/RESULTS.md "Load"). `coalesce_tokens` passes the first
Token of an answer on at once (time to first text is unchanged) and then joins the Tokens that
arrive within `interval_s` of the last one passed on; any other event, and the stream's end,
first flushes what is held, so the order of events and the text are unchanged.

A Token is held at most until the next event of the stream: a model that goes silent
mid-answer keeps the last few words (under `interval_s` worth) back until it speaks again.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from faqbot.answering.events import Event, Token


async def coalesce_tokens(
    events: AsyncIterator[Event],
    interval_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Event]:
    """`events` with the Tokens of each run joined into at most one per `interval_s`."""
    held: list[str] = []
    last: float | None = None  # when a Token was last passed on; None: next goes at once
    async for event in events:
        if isinstance(event, Token):
            held.append(event.text)
            now = clock()
            if last is None or now - last >= interval_s:
                yield Token("".join(held))
                held.clear()
                last = now
            continue
        if held:
            yield Token("".join(held))
            held.clear()
        last = None
        yield event
    if held:
        yield Token("".join(held))
