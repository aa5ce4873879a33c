"""LLM-path overhead under a realistic fake model: time to first token, total time, prompt size.

    python bench/llm_latency.py [--first-token-ms 300] [--tokens-per-second 40] [--turns 30]

Runs FaqBot against tests/fake_openai.py on loopback (no outside host). The fake adds the model's
latency (first-token delay on each call, tokens/s pacing); everything above it is our overhead.
Also prints prompt tokens per answer for growing FAQ sizes: top-k grounding keeps them flat.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from faqbot.answering.bot import FaqBot
from faqbot.answering.events import Done, Token
from faqbot.answering.factory import build_bot
from faqbot.config import load_settings
from faqbot.logs import configure_logging
from tests.fake_openai import FakeOpenAI

QUESTIONS = [
    "Do you offer discounts for annual subscriptions?",
    "What is your refund policy?",
    "Which file formats can I import?",
    "Can I schedule reports to run automatically?",
    "How do I reset my password?",
]
ROOT = Path(__file__).resolve().parent.parent


async def one_turn(bot: FaqBot, question: str) -> tuple[float, float, int]:
    start = time.perf_counter()
    first = None
    prompt_tokens = 0
    async for event in bot.answer(question):
        if isinstance(event, Token) and first is None:
            first = time.perf_counter() - start
        elif isinstance(event, Done):
            prompt_tokens = event.result.usage.prompt_tokens
    total = time.perf_counter() - start
    return first or total, total, prompt_tokens


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def latency(fake: FakeOpenAI, turns: int, concurrency: int) -> dict[str, float]:
    settings = load_settings(
        openai_api_key="bench", openai_base_url=fake.base_url, faq_dir=ROOT / "faqs",
        answer_cache_size=0, openai_max_retries=0,
    )  # fmt: skip
    bot = build_bot(settings)
    sem = asyncio.Semaphore(concurrency)

    async def run(i: int) -> tuple[float, float, int]:
        async with sem:
            return await one_turn(bot, QUESTIONS[i % len(QUESTIONS)])

    results = await asyncio.gather(*(run(i) for i in range(turns)))
    ttft = [r[0] * 1000 for r in results]
    total = [r[1] * 1000 for r in results]
    return {
        "ttft_p50": statistics.median(ttft),
        "ttft_p95": pct(ttft, 95),
        "total_p50": statistics.median(total),
        "total_p95": pct(total, 95),
        "prompt_tokens": statistics.mean(r[2] for r in results),
    }


def synthetic_faq(folder: Path, entries: int) -> None:
    lines = ["BIG FAQ", ""]
    for i in range(entries):
        lines += [f"Q: How do I configure module {i} for workflow {i * 7 % 97}?",
                  f"A: Module {i} is configured under Settings > Modules > {i}; it takes about "
                  f"{i % 9 + 1} minutes and needs the admin role.", ""]  # fmt: skip
    (folder / "big.txt").write_text("\n".join(lines), encoding="utf-8")


async def prompt_growth(fake: FakeOpenAI) -> list[tuple[int, float]]:
    rows = []
    for size in (10, 100, 1000):
        with tempfile.TemporaryDirectory() as tmp:
            synthetic_faq(Path(tmp), size)
            settings = load_settings(
                openai_api_key="bench", openai_base_url=fake.base_url, faq_dir=Path(tmp),
                answer_cache_size=0,
            )  # fmt: skip
            bot = build_bot(settings)
            _, _, tokens = await one_turn(bot, "How do I configure module 7 for workflow 49?")
            rows.append((size, tokens))
    return rows


async def main_async(args: argparse.Namespace) -> None:
    with FakeOpenAI(
        first_token_delay=args.first_token_ms / 1000, tokens_per_second=args.tokens_per_second
    ) as fake:
        print(
            f"fake model: first token {args.first_token_ms:.0f} ms per call, "
            f"{args.tokens_per_second:.0f} tokens/s; two calls per answer (router, answer)"
        )
        for concurrency in (1, 10):
            r = await latency(fake, args.turns, concurrency)
            floor = 2 * args.first_token_ms
            print(
                f"concurrency {concurrency:>2}: TTFT p50 {r['ttft_p50']:.0f} ms "
                f"(model floor {floor:.0f} ms, overhead {r['ttft_p50'] - floor:.0f} ms), "
                f"p95 {r['ttft_p95']:.0f} ms | total p50 {r['total_p50']:.0f} ms, "
                f"p95 {r['total_p95']:.0f} ms | prompt tokens/answer {r['prompt_tokens']:.0f}"
            )
        fake.first_token_delay = 0
        fake.tokens_per_second = None
        for size, tokens in await prompt_growth(fake):
            print(f"FAQ of {size:>5} entries in one category: {tokens} prompt tokens per answer")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first-token-ms", type=float, default=300)
    parser.add_argument("--tokens-per-second", type=float, default=40)
    parser.add_argument("--turns", type=int, default=30)
    configure_logging("WARNING")
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
