"""Simulated chat-UI users for the socket.io load benchmarks (bench/ws_load.py, bench/load.py).

Each user is one Chainlit session (tests/e2e_support.ChatClient, the web UI's protocol) on its
own loopback address, asking its questions one after another; `run_round` starts N of them at
the same moment and collects connect time, time to the first visible answer text, time to the
whole answer and failures by kind.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e_support import ChatClient, loopback_address

QUESTIONS = (
    "Do you offer discounts?",
    "How do I reset my password?",
    "What payment methods do you accept?",
    "Can I cancel my subscription?",
    "Where is my order?",
)
RATE_LIMITED = "You're sending messages too quickly"
FALLBACK = "The AI service is unavailable right now"  # faqbot.answering.bot.FALLBACK_MESSAGE


class TimedChat(ChatClient):
    """ChatClient noting when the first answer text of the current turn became visible."""

    first_text_at: float | None = None

    async def send(self, question: str) -> float:
        self.first_text_at = None
        return await super().send(question)

    async def _on_event(self, event: str, data: Any = None) -> None:
        if self.first_text_at is None and isinstance(data, dict):
            visible = (
                (event == "stream_start" and data.get("output"))
                or (event == "stream_token" and data.get("token"))
                or (
                    event in ("new_message", "update_message")
                    and data.get("type") == "assistant_message"
                    and data.get("output")
                )
            )
            if visible:
                self.first_text_at = time.monotonic()
        await super()._on_event(event, data)


@dataclass
class Round:
    """What one round of `sessions` simultaneous users saw."""

    sessions: int
    ok: int = 0  # sessions whose every question got a proper answer
    answers: int = 0  # questions answered properly
    failures: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    connect_s: list[float] = field(default_factory=list)
    first_text_s: list[float] = field(default_factory=list)  # per answer
    answer_s: list[float] = field(default_factory=list)  # per answer, until task_end
    wall_s: float = 0.0
    asking_s: float = 0.0  # first question sent -> last answer ended


def failure_kind(exc: BaseException) -> str:
    text = str(exc)
    if "connection_successful" in text:
        return "no task_end after connect"
    if "no task_end" in text:
        return "no task_end after question"
    name = type(exc).__name__
    return f"{name}: {text[:60]}" if text else name


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`; nan when empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def check_reply(chat: TimedChat, turn: Any) -> None:
    """Raise with a failure kind unless the turn is a proper answer."""
    if turn.errors:
        raise RuntimeError(f"server error message: {turn.errors[0][:60]}")
    if not turn.reply:
        raise RuntimeError("no assistant reply")
    if RATE_LIMITED in turn.reply:
        raise RuntimeError("rate limited")
    if FALLBACK in turn.reply:
        raise RuntimeError("offline fallback (the LLM call failed)")
    if chat.first_text_at is None:
        raise RuntimeError("no visible answer text")


async def one_session(
    url: str, i: int, questions: int, wait_s: float, same_addr: bool, result: Round,
    marks: list[float], think_s: float = 0.0, gap_s: float = 0.0,
) -> None:  # fmt: skip
    """One simulated user: connect, ask `questions` questions in turn, disconnect.

    `think_s` > 0: the user first waits a random 0-`think_s` s (users do not all arrive in the
    same millisecond), then 0.5-1.5 x `think_s` s after each answer before the next question
    (reading it, typing); 0 asks at once, all users together (saturation).
    `gap_s` > 0 (open loop): questions are due at random times, exponentially distributed gaps
    of mean `gap_s` from the previous one's due time, whatever the answers take (so N users
    offer N / `gap_s` questions/s together, a Poisson stream), for `questions` x `gap_s` seconds
    (`questions` per user on average); a question due while the last answer is still coming is
    asked when it ends.
    """
    addr = None if same_addr else loopback_address(i)
    chat = TimedChat(url, local_addr=addr, connect_timeout=wait_s)
    started = time.monotonic()
    try:
        async with chat:
            result.connect_s.append(time.monotonic() - started)
            due = opened = time.monotonic()
            # open loop: as many questions as fall due within `questions` mean gaps, so the
            # offered rate is the same from the first second to the last
            asks = range(10**9) if gap_s > 0 else range(questions)
            for q in asks:
                if gap_s > 0:
                    due += random.expovariate(1 / gap_s)
                    if due - opened > questions * gap_s:
                        break
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                elif think_s > 0:
                    await asyncio.sleep(
                        think_s * (random.random() if q == 0 else 0.5 + random.random())
                    )
                sent = await chat.send(QUESTIONS[(i + q) % len(QUESTIONS)])
                marks.append(sent)
                turn = await chat.wait_turn(wait_s, f"question {q + 1}", sent)
                marks.append(time.monotonic())
                check_reply(chat, turn)
                assert chat.first_text_at is not None
                result.first_text_s.append(chat.first_text_at - sent)
                result.answer_s.append(turn.elapsed_s)
                result.answers += 1
        result.ok += 1
    except Exception as exc:
        kind = failure_kind(exc)
        result.failures[kind] += 1
        result.examples.setdefault(kind, str(exc)[:300])


async def run_round(
    url: str, n: int, *, questions: int, wait_s: float, same_addr: bool = False,
    think_s: float = 0.0, rate: float = 0.0,
) -> Round:  # fmt: skip
    """N users at once; returns what they saw. `rate` > 0: an open loop offering `rate`
    questions/s in all (see `one_session`'s `gap_s`); else `think_s` (0: saturation)."""
    result = Round(n)
    marks: list[float] = []
    gap_s = n / rate if rate > 0 else 0.0
    started = time.monotonic()
    await asyncio.gather(
        *(
            one_session(url, i, questions, wait_s, same_addr, result, marks, think_s, gap_s)
            for i in range(n)
        )
    )
    result.wall_s = time.monotonic() - started
    result.asking_s = max(marks) - min(marks) if marks else 0.0
    return result
