"""Replay of the learning loop (issue 22): does attaching visitors' questions help later visitors?

    python bench/learning_replay.py [--only lablens|covid] [--cache DIR] [--seed 22] [--json]

Prints numbers; it is not a test. Protocol, per FAQ (LabLens = faqs/ with bench/faq_eval.yaml,
faq_eval_hard.yaml, faq_eval_multilingual.yaml; CovidFAQ = bench/data/covidfaq, 68 entries,
its distinct user queries, loaded as bench/retrieval.py does):

1. The labelled questions, deduplicated (case, accents, punctuation aside), are grouped by the
   entry that answers them (a CovidFAQ query with two right entries: by the first id). For every
   entry with 2 or more, a seeded shuffle puts half (rounded down) into "traffic", the rest into
   "later"; an entry's single question is "later". Out-of-scope questions: half each, seeded.
   Exact copies of FAQ questions (faq_eval.yaml `kind: exact`) are left out.
2. Before: the offline default engine (bundled embedding model, calibrated zones, no API key)
   answers every question, one at a time, no history.
3. The simulated owner goes through the traffic in order. An in-scope question the bot did not
   answer with a right entry (refused, "Did you mean", or wrong) is attached to its entry unless
   `faqbot.answering.learning_check.conflicts` flags it; its probes are every other entry's own
   questions and alternates plus the other entries' traffic questions (never a "later" one).
   Each accepted phrasing is served at once (`FaqBot.reload(apply_learned(...))`), so the next
   check sees it. An out-of-scope traffic question the bot did not refuse is marked out of scope.
4. After: the bot with the learned phrasings answers the "later" questions. The script asserts
   that no "later" question is an attached phrasing (nor an out-of-scope mark).

Outcomes: right = answered with a right entry; wrong = answered with another entry (for
out-of-scope questions: answered at all); offered = "Did you mean" (how often a right entry is
among the 2-3 offered is shown apart); refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from retrieval import DEFAULT_DATA, load_covidfaq  # noqa: E402

from faqbot.answering.bot import FaqBot, collect  # noqa: E402
from faqbot.answering.factory import build_semantic  # noqa: E402
from faqbot.answering.learning_check import Probe, conflicts, default_probes  # noqa: E402
from faqbot.config import load_settings  # noqa: E402
from faqbot.domain import Category, KnowledgeBase  # noqa: E402
from faqbot.errors import InputError  # noqa: E402
from faqbot.knowledge import load_knowledge_base  # noqa: E402
from faqbot.knowledge.learned import (  # noqa: E402
    LearnedPhrasing,
    PhrasingError,
    apply_learned,
    clean_phrasing,
    out_of_scope_texts,
    phrasing_key,
)
from faqbot.logs import configure_logging  # noqa: E402

SEED = 22
MAX_CHARS = 1000  # the API's question cap (CovidFAQ has no longer query; kept for safety)
LABLENS_SETS = {  # file -> {label kind: replay kind}; a kind left out is not replayed
    "faq_eval.yaml": {"paraphrase": "paraphrase", "out_of_scope": "out-of-scope"},
    "faq_eval_hard.yaml": {
        "paraphrase": "hard",
        "non_english": "multilingual",
        "out_of_scope": "out-of-scope",
    },
    "faq_eval_multilingual.yaml": {"non_english": "multilingual", "out_of_scope": "out-of-scope"},
}
OUTCOMES = ("right", "wrong", "offered", "refused")


@dataclass(frozen=True, slots=True)
class Item:
    """One labelled question; `right` is empty for an out-of-scope one."""

    text: str
    kind: str
    right: frozenset[str]

    @property
    def entry(self) -> str:
        return min(self.right) if self.right else ""


@dataclass
class Tally:
    """Outcomes of one kind of question."""

    counts: Counter[str] = field(default_factory=Counter)
    offered_right: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# ------------------------------------------------------------------------------ data


def lablens_items(kb: KnowledgeBase) -> list[Item]:
    by_question = {e.question: e.id for e in kb.entries}
    items = []
    for name, kinds in LABLENS_SETS.items():
        data = yaml.safe_load((ROOT / "bench" / name).read_text(encoding="utf-8"))
        for q in data["questions"]:
            kind = kinds.get(str(q.get("kind")))
            if kind is None:
                continue
            right = frozenset() if q.get("category") is None else {by_question[q["expected"]]}
            items.append(Item(str(q["question"]), kind, frozenset(right)))
    return items


def covid_faq() -> tuple[KnowledgeBase, list[Item]]:
    entries, gold, _ = load_covidfaq(DEFAULT_DATA)
    kb = KnowledgeBase.build([Category("covid", tuple(entries), Path("covid.txt"))])
    items = [Item(q[:MAX_CHARS], "CovidFAQ", frozenset(g)) for q, g in gold.items() if g]
    return kb, items


def distinct(items: Sequence[Item]) -> list[Item]:
    """The first item of each phrasing key (one text labelled twice is one question)."""
    seen: set[str] = set()
    out = []
    for item in items:
        key = phrasing_key(item.text)
        if key and key not in seen:
            seen.add(key)
            out.append(item)
    return out


def split(items: Sequence[Item], seed: int) -> tuple[list[Item], list[Item]]:
    """(traffic, later): per entry with >= 2 questions half (rounded down) to traffic, seeded;
    out-of-scope questions half each."""
    groups: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        groups[item.entry].append(item)
    traffic: list[Item] = []
    later: list[Item] = []
    for entry_id in sorted(groups):
        group = list(groups[entry_id])
        random.Random(f"{seed}:{entry_id}").shuffle(group)
        half = len(group) // 2
        traffic += group[:half]
        later += group[half:]
    random.Random(seed).shuffle(traffic)  # visitors do not arrive grouped by entry
    return traffic, later


# ----------------------------------------------------------------------------- replay


def make_bot(kb: KnowledgeBase, cache: Path) -> FaqBot:
    settings = load_settings(openai_api_key=None, data_dir=cache)
    bot = FaqBot(kb, settings, semantic=build_semantic(settings))
    if not bot.wait_for_vectors(3600):
        raise SystemExit("the bundled embedding model is unavailable: the replay needs it")
    return bot


def warm(bot: FaqBot, texts: Sequence[str]) -> None:
    """Encode the questions in batches once (the bot would encode them one by one)."""
    queries = bot.retriever.queries
    assert queries is not None
    todo = [t for t in dict.fromkeys(texts) if queries.cached(t) is None]
    for start in range(0, len(todo), 32):
        batch = todo[start : start + 32]
        queries.remember(batch, queries.embedder.embed(batch, kind="query"))


async def outcome(bot: FaqBot, item: Item) -> tuple[str, bool]:
    """(right | wrong | offered | refused, a right entry among those offered)."""
    try:
        result = await collect(bot.answer(item.text))
    except InputError:
        return "refused", False
    if result.outcome == "suggested":
        return "offered", any(s.id in item.right for s in result.suggestions)
    if result.outcome == "refused":
        return "refused", False
    right = bool(result.sources) and result.sources[0].id in item.right
    return ("right" if right else "wrong"), False


async def tally(bot: FaqBot, items: Sequence[Item]) -> tuple[dict[str, Tally], dict[str, str]]:
    by_kind: dict[str, Tally] = defaultdict(Tally)
    seen: dict[str, str] = {}
    for item in items:
        result, offered_right = await outcome(bot, item)
        by_kind[item.kind].counts[result] += 1
        by_kind[item.kind].offered_right += offered_right
        seen[item.text] = result
    return by_kind, seen


@dataclass
class Owner:
    """What the simulated owner did with the traffic."""

    learned: list[LearnedPhrasing] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    check_seconds: list[float] = field(default_factory=list)
    reload_seconds: list[float] = field(default_factory=list)


def review(
    bot: FaqBot, base: KnowledgeBase, traffic: Sequence[Item], before: dict[str, str]
) -> Owner:
    owner = Owner()
    probes_of_traffic: list[Probe] = [(i.text, i.entry) for i in traffic if len(i.right) == 1]
    for item in traffic:
        result = before[item.text]
        if not item.right:
            if result == "refused":
                owner.counts["out-of-scope: already refused"] += 1
            else:
                owner.learned.append(LearnedPhrasing("", item.text, "out_of_scope"))
                owner.counts["out-of-scope: marked"] += 1
            continue
        if result == "right":
            owner.counts["in scope: already answered right"] += 1
            continue
        try:
            clean_phrasing(item.text)
        except PhrasingError:
            owner.counts["in scope: not a valid phrasing"] += 1
            continue
        candidate = LearnedPhrasing(item.entry, item.text)
        probes = default_probes(bot.kb, item.entry) + [
            p for p in probes_of_traffic if p[1] != item.entry and p[0] != item.text
        ]
        started = time.perf_counter()
        found = conflicts(bot, bot.kb, candidate, probes)
        owner.check_seconds.append(time.perf_counter() - started)
        if found:
            owner.counts[f"in scope: flagged ({found[0].reason})"] += 1
            continue
        owner.learned.append(candidate)
        owner.counts["in scope: attached"] += 1
        started = time.perf_counter()
        bot.reload(apply_learned(base, owner.learned))
        bot.wait_for_vectors(600)
        owner.reload_seconds.append(time.perf_counter() - started)
    bot.out_of_scope = out_of_scope_texts(owner.learned)
    return owner


async def replay(
    name: str, kb: KnowledgeBase, items: list[Item], cache: Path, seed: int
) -> dict[str, Any]:
    started = time.perf_counter()
    items = distinct(items)
    traffic, later = split(items, seed)
    bot = make_bot(kb, cache)
    warm(bot, [i.text for i in items])
    before_later, _ = await tally(bot, later)
    _, before_traffic = await tally(bot, traffic)
    owner = review(bot, kb, traffic, before_traffic)
    attached = {phrasing_key(p.text) for p in owner.learned}
    applied = apply_learned(kb, owner.learned)
    alternates = {phrasing_key(a) for e in applied.entries for a in e.alternate_questions}
    for item in later:  # never evaluated on an attached phrasing
        assert phrasing_key(item.text) not in attached, item.text
        assert item.text not in {p.text for p in owner.learned}, item.text
    in_file = {phrasing_key(a) for e in kb.entries for a in (e.question, *e.alternate_questions)}
    assert not ({phrasing_key(i.text) for i in later} & (alternates - in_file))
    after_later, _ = await tally(bot, later)
    attached_items = [i for i in traffic if phrasing_key(i.text) in attached and i.right]
    _, attached_after = await tally(bot, attached_items)  # a sanity check, not the evaluation
    return {
        "faq": name,
        "entries": len(kb.entries),
        "questions": len(items),
        "traffic": len(traffic),
        "later": len(later),
        "owner": dict(sorted(owner.counts.items())),
        "attached": sum(1 for p in owner.learned if p.kind == "phrasing"),
        "check_seconds": _spread(owner.check_seconds),
        "apply_reload_seconds": _spread(owner.reload_seconds),
        "before": _as_dict(before_later),
        "after": _as_dict(after_later),
        "attached_now_right": sum(1 for r in attached_after.values() if r == "right"),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _spread(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "n": len(values),
        "median": round(ordered[len(values) // 2], 3),
        "p95": round(ordered[min(len(values) - 1, int(len(values) * 0.95))], 3),
        "max": round(ordered[-1], 3),
    }


def _as_dict(tallies: dict[str, Tally]) -> dict[str, dict[str, int]]:
    return {
        kind: {**{o: t.counts[o] for o in OUTCOMES}, "offered_right": t.offered_right}
        for kind, t in sorted(tallies.items())
    }


def format_run(run: dict[str, Any]) -> str:
    lines = [
        f"## {run['faq']}: {run['entries']} entries, {run['questions']} distinct labelled "
        f"questions -> traffic {run['traffic']}, later {run['later']} ({run['seconds']} s)",
        "owner: " + ", ".join(f"{k} {v}" for k, v in run["owner"].items()),
        f"attached traffic questions answered right once served: {run['attached_now_right']} of "
        f"{run['attached']} (a sanity check; never part of the figures below)",
        f"conflict check (s): {run['check_seconds']}   apply+reload+vectors (s): "
        f"{run['apply_reload_seconds']}",
        "| later questions | n | right before -> after | wrong before -> after | offered "
        "before -> after (right among them) | refused before -> after |",
        "|---|---|---|---|---|---|",
    ]
    for kind, b in run["before"].items():
        a = run["after"][kind]
        n = sum(b[o] for o in OUTCOMES)

        def cell(o: str, b: dict[str, int] = b, a: dict[str, int] = a, n: int = n) -> str:
            return f"{b[o]} ({b[o] / n:.1%}) -> {a[o]} ({a[o] / n:.1%})"

        offered = f"{cell('offered')} ({b['offered_right']} -> {a['offered_right']})"
        lines.append(
            f"| {kind} | {n} | {cell('right')} | {cell('wrong')} | {offered} | {cell('refused')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("lablens", "covid"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/faqbot-bench-learning"))
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    configure_logging("WARNING")  # one log line per answered question would bury the figures
    runs = []
    if args.only in (None, "lablens"):
        kb = load_knowledge_base(ROOT / "faqs")
        runs.append(asyncio.run(replay("LabLens", kb, lablens_items(kb), args.cache, args.seed)))
    if args.only in (None, "covid"):
        kb, items = covid_faq()
        runs.append(asyncio.run(replay("CovidFAQ", kb, items, args.cache, args.seed)))
    for run in runs:
        print(json.dumps(run) if args.json else format_run(run) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
