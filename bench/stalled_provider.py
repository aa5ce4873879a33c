"""What a stalled LLM provider costs each user: the wait before the offline answer, question by
question, with the shipped LLM settings.

    python bench/stalled_provider.py [--questions 5] [--skip-before]

The fake provider (tests/fake_openai.py, loopback) accepts every chat call and never answers.
Runs the questions one after another through FaqBot twice: "before", with
LLM_FIRST_TOKEN_SECONDS=600 (no first-token deadline: the SDK's 20 s read timeout, its one retry
and the 30 s budget decide, as before issue 14 item 6), and "after", with the shipped default.
Also one slow-but-healthy answer (first token 0.5 s, then slow tokens for longer than the
deadline), which must complete. Prints seconds per question, the worst wait and the provider
calls made.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from faqbot.answering.bot import collect
from faqbot.answering.factory import build_bot
from faqbot.config import Settings, load_settings
from faqbot.logs import configure_logging
from tests import fake_openai as fo

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Do you offer discounts for annual subscriptions?"
SLOW = " ".join(["Yes, annual plans are discounted by twenty percent."] * 6)


def settings(fake: fo.FakeOpenAI, data_dir: Path, **overrides: object) -> Settings:
    return load_settings(
        openai_api_key="bench",
        openai_base_url=fake.base_url,
        faq_dir=ROOT / "faqs",
        embeddings="off",
        data_dir=data_dir,
        answer_cache_size=0,
        **overrides,
    )


async def stalled_run(
    fake: fo.FakeOpenAI, data_dir: Path, questions: int, **overrides: object
) -> tuple[float, list[tuple[float, str | None]], int]:
    fake.reset()
    fake.stall_seconds = 600
    config = settings(fake, data_dir, **overrides)
    bot = build_bot(config)
    waits: list[tuple[float, str | None]] = []
    for _ in range(questions):
        started = time.monotonic()
        result = await collect(bot.answer(QUESTION))
        waits.append((time.monotonic() - started, result.fallback_reason))
    calls = len(fake.requests)
    fake.stall_seconds = None
    return config.llm_first_token_seconds, waits, calls


async def slow_run(fake: fo.FakeOpenAI, data_dir: Path) -> tuple[float, bool, bool]:
    fake.reset()
    bot = build_bot(settings(fake, data_dir))
    fake.script(
        fo.tools([("faq_sales", {"question": QUESTION})], first_token_delay=0.5),
        fo.text(SLOW, first_token_delay=0.5, tokens_per_second=6),
    )
    started = time.monotonic()
    result = await collect(bot.answer(QUESTION))
    return time.monotonic() - started, result.answer == SLOW, result.fallback


def show(label: str, deadline: float, waits: list[tuple[float, str | None]], calls: int) -> None:
    print(f"\n{label} (LLM_FIRST_TOKEN_SECONDS={deadline:g})")
    for n, (wait, reason) in enumerate(waits, 1):
        print(f"  question {n}: {wait:6.2f} s  fallback={reason}")
    worst = max(wait for wait, _ in waits)
    total = sum(wait for wait, _ in waits)
    print(f"  worst wait {worst:.2f} s, total {total:.1f} s, provider calls {calls}")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--skip-before", action="store_true", help="only the shipped default")
    args = parser.parse_args(argv)
    configure_logging("ERROR", "console")
    with fo.running() as fake, tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        if not args.skip_before:
            deadline, waits, calls = await stalled_run(
                fake, data_dir, args.questions, llm_first_token_seconds=600
            )
            show("before: no first-token deadline", deadline, waits, calls)
        deadline, waits, calls = await stalled_run(fake, data_dir, args.questions)
        show("after: shipped default", deadline, waits, calls)
        took, complete, fell_back = await slow_run(fake, data_dir)
        print(
            f"\nslow but streaming (first token 0.5 s, 6 tokens/s): {took:.2f} s, "
            f"complete={complete}, fallback={fell_back}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
