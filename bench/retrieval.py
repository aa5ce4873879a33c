"""Retrieval benchmark: quality on CovidFAQ, latency and build time at 68, 1,000 and 10,000 entries.

    python bench/retrieval.py [--data bench/data/covidfaq/query_answer_pairs.json] [--json]

Protocol (CovidFAQ): the 68 `faq` records are the entries; the 1,387 `user_query` records are
grouped by distinct text (1,078 queries); a query's gold set is every entry whose answer equals the
answer of any of its records. P@1, MRR@10 and MAP are computed over the full ranking, one query at
a time; latency is `Retriever.search(q, k=10)` after a warm-up. No training on the queries.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from faqbot.domain import FaqEntry
from faqbot.retrieval import Retriever, Tokenizer

DEFAULT_DATA = Path(__file__).resolve().parent / "data" / "covidfaq" / "query_answer_pairs.json"
FOLLOW_UPS = re.compile(r"\[\[.*?\]\]")


def load_covidfaq(path: Path) -> tuple[list[FaqEntry], dict[str, set[int]]]:
    records: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    faqs = [r for r in records if r["query_type"] == "faq"]
    entries = [
        FaqEntry(
            id=f"covid-{i}",
            category="covid",
            question=r["question"].strip(),
            answer=FOLLOW_UPS.sub("", r["answer"]).strip(),
        )
        for i, r in enumerate(faqs)
    ]
    by_answer: dict[str, list[int]] = {}
    for i, r in enumerate(faqs):
        by_answer.setdefault(r["answer"].strip(), []).append(i)
    gold: dict[str, set[int]] = {}
    for r in records:
        if r["query_type"] == "user_query":
            gold.setdefault(r["question"], set()).update(by_answer.get(r["answer"].strip(), []))
    return entries, {q: g for q, g in gold.items() if g}


def quality(rank: Callable[[str], list[int]], gold: dict[str, set[int]]) -> dict[str, float]:
    p1 = mrr = ap = 0.0
    for query, relevant in gold.items():
        ranking = rank(query)
        if ranking and ranking[0] in relevant:
            p1 += 1
        for pos, idx in enumerate(ranking[:10]):
            if idx in relevant:
                mrr += 1 / (pos + 1)
                break
        found = 0
        precision_sum = 0.0
        for pos, idx in enumerate(ranking):
            if idx in relevant:
                found += 1
                precision_sum += found / (pos + 1)
        ap += precision_sum / len(relevant)
    n = len(gold)
    return {"p_at_1": p1 / n, "mrr_at_10": mrr / n, "map": ap / n, "queries": n}


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def latency_ms(retriever: Retriever, queries: Sequence[str], category: str | None = None) -> dict:
    for q in queries[:20]:
        retriever.search(q, k=10, category=category)
    times = []
    for q in queries:
        start = time.perf_counter()
        retriever.search(q, k=10, category=category)
        times.append((time.perf_counter() - start) * 1000)
    return {
        "p50": percentile(times, 50),
        "p95": percentile(times, 95),
        "p99": percentile(times, 99),
    }


def build_ms(entries: Sequence[FaqEntry], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        Retriever(entries)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def plain_bm25_question_field(entries: Sequence[FaqEntry]) -> Callable[[str], list[int]]:
    """Anchor: plain bm25s over the question field only, stemmed, no fusion, no stopwords."""
    tok = Tokenizer()
    model = bm25s.BM25(k1=1.5, b=0.75)
    model.index([tok.tokens(e.question) or ["\x00"] for e in entries], show_progress=False)

    def rank(query: str) -> list[int]:
        tokens = [t for t in tok.tokens(query) if t in model.vocab_dict]
        if not tokens:
            return list(range(len(entries)))
        scores = model.get_scores(tokens)[: len(entries)]
        return [int(i) for i in np.argsort(-scores, kind="stable")]

    return rank


def synthetic(n: int, vocabulary: list[str], rng: random.Random) -> list[FaqEntry]:
    entries = []
    for i in range(n):
        q = " ".join(rng.choices(vocabulary, k=rng.randint(6, 14))) + "?"
        a = " ".join(rng.choices(vocabulary, k=rng.randint(25, 60))) + "."
        entries.append(FaqEntry(id=f"s-{i}", category=f"cat{i % 10}", question=q, answer=a))
    return entries


def scale(n: int, base_words: list[str], rng: random.Random) -> dict[str, Any]:
    pseudo = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(4, 9)))
        for _ in range(20_000)
    ]
    vocabulary = base_words + pseudo
    entries = synthetic(n, vocabulary, rng)
    start = time.perf_counter()
    retriever = Retriever(entries)
    build_s = time.perf_counter() - start
    queries = []
    for _ in range(500):
        words = rng.choice(entries).question.rstrip("?").split()
        picked = rng.sample(words, k=min(len(words), rng.randint(3, 6)))
        if rng.random() < 0.3:
            picked.append(rng.choice(vocabulary))
        queries.append(" ".join(picked))
    return {
        "entries": n,
        "build_s": build_s,
        "all": latency_ms(retriever, queries),
        "one_category": latency_ms(retriever, queries, category="cat3"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    args = parser.parse_args(argv)

    entries, gold = load_covidfaq(args.data)
    retriever = Retriever(entries)
    ours = quality(
        lambda q: [int(h.entry.id[6:]) for h in retriever.search(q, k=len(entries)).hits], gold
    )
    anchor = quality(plain_bm25_question_field(entries), gold)
    lat = latency_ms(retriever, list(gold))
    build = build_ms(entries)
    rng = random.Random(42)
    base_words = sorted(
        {w for e in entries for w in Tokenizer().tokens(e.question + " " + e.answer)}
    )
    scaled = [scale(1_000, base_words, rng), scale(10_000, base_words, rng)]

    print(f"CovidFAQ: {len(entries)} entries, {ours['queries']} distinct queries")
    print(f"{'engine':<44} {'P@1':>6} {'MRR@10':>7} {'MAP':>6}")
    print(
        f"{'plain bm25s, question field (anchor)':<44} {anchor['p_at_1']:>6.3f} {anchor['mrr_at_10']:>7.3f} {anchor['map']:>6.3f}"
    )
    print(
        f"{'faqbot Retriever (fusion + coverage)':<44} {ours['p_at_1']:>6.3f} {ours['mrr_at_10']:>7.3f} {ours['map']:>6.3f}"
    )
    print("published Elasticsearch BM25 baseline: MAP 0.742")
    print(f"index build: {build:.1f} ms (median of 5)")
    print(
        f"query latency at 68 entries: p50 {lat['p50']:.3f} ms  p95 {lat['p95']:.3f} ms  p99 {lat['p99']:.3f} ms"
    )
    for s in scaled:
        print(
            f"synthetic {s['entries']:>6,} entries: build {s['build_s']:.2f} s | all: p50 "
            f"{s['all']['p50']:.2f} ms p95 {s['all']['p95']:.2f} ms | one category: p50 "
            f"{s['one_category']['p50']:.2f} ms p95 {s['one_category']['p95']:.2f} ms"
        )
    targets = [
        ("P@1 >= 0.70", ours["p_at_1"] >= 0.70, f"{ours['p_at_1']:.3f}"),
        ("MRR@10 >= 0.80", ours["mrr_at_10"] >= 0.80, f"{ours['mrr_at_10']:.3f}"),
        ("p95 <= 2 ms at 68 entries", lat["p95"] <= 2.0, f"{lat['p95']:.3f} ms"),
        (
            "p95 <= 20 ms at 10,000 entries",
            scaled[1]["all"]["p95"] <= 20.0,
            f"{scaled[1]['all']['p95']:.2f} ms",
        ),
    ]
    print("targets:")
    for name, ok, value in targets:
        print(f"  {'PASS' if ok else 'MISS'}  {name:<32} ({value})")
    if args.json:
        print(
            json.dumps(
                {
                    "covidfaq": ours,
                    "anchor": anchor,
                    "latency_ms": lat,
                    "build_ms": build,
                    "scale": scaled,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
