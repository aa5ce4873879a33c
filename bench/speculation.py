"""Local routing vs speculative answer call vs router only, on the labelled sets.

    python bench/speculation.py            # all three labelled sets, 40 timed questions each
    python bench/speculation.py --timed 0  # path shares only (no fake model)

For every labelled question (bench/faq_eval.yaml, bench/faq_eval_hard.yaml on faqs/, CityRide's
bench/data/transitfaq/eval.yaml), with the bundled model's hybrid retrieval and default zones,
the path faqbot's LLM mode takes:
- local: answer zone, not a follow-up -> routed by retrieval, one LLM call (the default);
- speculative (only with SPECULATIVE_ANSWER=true): "Did you mean" zone -> the answer call for
  retrieval's best category starts with the router call; "kept" when a correct router picks that
  category (the labelled one), "wasted" when it picks another or says not covered
  (out-of-scope questions);
- router only: refuse zone (and every unsure question with speculation off).

Then time to the first answer token, through FaqBot in this process against the loopback fake
OpenAI server with the realistic profile (300 ms to a first token, 100 tokens/s, 20-token tool
calls): the "Did you mean"-zone questions of each set, speculation off and on, with an oracle
router (the fake's router picks the labelled category, or not_covered for out-of-scope).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faqbot.answering.bot import FaqBot  # noqa: E402
from faqbot.answering.events import Token  # noqa: E402
from faqbot.answering.factory import build_bot, build_semantic  # noqa: E402
from faqbot.config import load_settings  # noqa: E402
from faqbot.knowledge import load_knowledge_base  # noqa: E402
from tests import fake_openai as fo  # noqa: E402

SETS = [
    ("faq_eval", ROOT / "faqs", ROOT / "bench/faq_eval.yaml"),
    ("faq_eval_hard", ROOT / "faqs", ROOT / "bench/faq_eval_hard.yaml"),
    ("cityride", ROOT / "bench/data/transitfaq/faqs", ROOT / "bench/data/transitfaq/eval.yaml"),
]


def paths(bot: FaqBot, questions: list[dict[str, Any]]) -> Counter[str]:
    """How many questions take each path (see the module docstring)."""
    got: Counter[str] = Counter()
    for q in questions:
        found = bot.retriever.search(q["question"], k=1)
        zone = bot.offline.zones.zone(found.confidence)
        if zone == "answer":
            got["local"] += 1
            got["local, right category" if found.top and found.top.entry.category == q.get(
                "category") else "local, wrong category or out of scope"] += 1  # fmt: skip
        elif zone == "suggest":
            guess = found.top.entry.category if found.top else None
            got["speculative kept" if guess == q.get("category") else "speculative wasted"] += 1
        else:
            got["router only"] += 1
    return got


def oracle(labels: dict[str, str | None]) -> Any:
    """The fake's router picks the labelled category (not_covered when out of scope)."""

    def respond(body: dict[str, Any]) -> fo.Reply:
        if not body.get("tools"):
            return fo.auto_responder(body)
        asked = str(body["messages"][-1]["content"])
        category = next((c for q, c in labels.items() if q in asked), None)
        if category is None:
            return fo.tool("not_covered")
        return fo.tool(f"faq_{category}", question=asked)

    return respond


async def first_token(bot: FaqBot, question: str) -> float | None:
    started = time.perf_counter()
    async for event in bot.answer(question):
        if isinstance(event, Token):
            return time.perf_counter() - started
    return None  # a refusal without an answer call streams its text too; not reached


async def timed(
    faq_dir: Path, unsure: list[dict[str, Any]], fake: Any, data: Path
) -> dict[str, list[float]]:
    fake.responder = oracle({q["question"]: q.get("category") for q in unsure})
    out: dict[str, list[float]] = {}
    for on in (False, True):
        settings = load_settings(
            faq_dir=faq_dir, data_dir=data, openai_api_key="sk-test",
            openai_base_url=fake.base_url, answer_cache_size=0, speculative_answer=on,
        )  # fmt: skip
        bot = build_bot(settings)
        assert bot.wait_for_vectors(900)
        for q in unsure:
            t = await first_token(bot, q["question"])
            kept = q.get("category") is not None
            key = f"{'on' if on else 'off'} {'in scope' if kept else 'out of scope'}"
            if t is not None:
                out.setdefault(key, []).append(t)
    return out


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values) * 1000:.0f} ms (n={len(values)})"


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--timed", type=int, default=40, help="unsure questions timed per set")
    args = parser.parse_args(argv)
    data = Path(tempfile.mkdtemp(prefix="speculation-"))
    fake = fo.FakeOpenAI(profile=fo.PROFILES["realistic"]).start() if args.timed else None
    try:
        for name, faq_dir, eval_file in SETS:
            questions = yaml.safe_load(eval_file.read_text())["questions"]
            settings = load_settings(faq_dir=faq_dir, data_dir=data, openai_api_key=None)
            bot = FaqBot(load_knowledge_base(faq_dir), settings, semantic=build_semantic(settings))
            assert bot.wait_for_vectors(900)
            got = paths(bot, questions)
            n = len(questions)
            shares = ", ".join(f"{k} {v} ({v / n:.0%})" for k, v in sorted(got.items()))
            print(f"{name}: {n} questions: {shares}", flush=True)
            if fake is None:
                continue
            unsure = [
                q for q in questions
                if bot.offline.zones.zone(bot.retriever.search(q["question"], k=1).confidence)
                == "suggest"
            ][: args.timed]  # fmt: skip
            times = await timed(faq_dir, unsure, fake, data)
            for key in sorted(times):
                print(f"  first answer token, unsure questions, speculation {key}: "
                      f"{fmt(times[key])}", flush=True)  # fmt: skip
    finally:
        if fake is not None:
            fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
