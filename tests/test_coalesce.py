"""coalesce_tokens: fewer Token events for the chat UI; same text and order, first text at once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from faqbot.answering.coalesce import coalesce_tokens
from faqbot.answering.events import Event, Fallback, RouteDecided, Sources, Token


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def timed(clock: Clock, items: Sequence[tuple[float, Event]]) -> AsyncIterator[Event]:
    """Each event at its time (seconds from the start) on the fake clock."""
    for at, event in items:
        clock.now = at
        yield event


async def run(items: Sequence[tuple[float, Event]], interval: float = 0.04) -> list[Event]:
    clock = Clock()
    return [e async for e in coalesce_tokens(timed(clock, items), interval, clock)]


ROUTE = RouteDecided("sales", 0.9, "q", "retrieval")


async def test_the_first_token_goes_at_once_and_a_fast_burst_is_joined() -> None:
    words = [Token(w) for w in ("Yes", ", ", "we ", "offer ", "20% ", "off.")]
    items = [(0.0, ROUTE)] + [(0.001 * i, t) for i, t in enumerate(words)] + [(0.01, Sources(()))]
    out = await run(items)
    assert out == [ROUTE, Token("Yes"), Token(", we offer 20% off."), Sources(())]


async def test_tokens_slower_than_the_interval_pass_one_by_one() -> None:
    items: list[tuple[float, Event]] = [(0.05 * i, Token(f"w{i} ")) for i in range(5)]
    assert await run(items) == [t for _, t in items]


async def test_tokens_are_joined_per_interval_at_a_steady_rate() -> None:
    items: list[tuple[float, Event]] = [(0.01 * i, Token(f"{i} ")) for i in range(10)]
    out = await run(items)  # 100 tokens/s, 40 ms: the first, then one per 4 tokens
    assert out == [Token("0 "), Token("1 2 3 4 "), Token("5 6 7 8 "), Token("9 ")]


async def test_a_fallback_flushes_the_partial_answer_first_and_its_text_starts_at_once() -> None:
    fallback = Fallback("timeout", "offline now")
    items: list[tuple[float, Event]] = [
        (0.0, Token("Partial ")), (0.001, Token("words ")), (0.002, fallback),
        (0.003, Token("FAQ ")), (0.004, Token("answer")),
    ]  # fmt: skip
    out = await run(items)
    assert out == [Token("Partial "), Token("words "), fallback, Token("FAQ "), Token("answer")]


async def test_held_tokens_are_flushed_at_the_end_of_the_stream() -> None:
    items: list[tuple[float, Event]] = [(0.0, Token("a")), (0.001, Token("b")), (0.002, Token("c"))]
    assert await run(items) == [Token("a"), Token("bc")]


async def test_zero_interval_passes_every_token() -> None:
    items: list[tuple[float, Event]] = [(0.0, Token("a")), (0.0, Token("b")), (0.0, Token("c"))]
    assert await run(items, interval=0.0) == [t for _, t in items]
