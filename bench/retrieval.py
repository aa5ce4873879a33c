"""Retrieval benchmark for `faqbot.retrieval.Retriever`: CovidFAQ quality, latency, scale.

    python bench/retrieval.py [--data bench/data/covidfaq/query_answer_pairs.json] [--json]

Prints numbers; it is not a test and asserts nothing. Protocol, CovidFAQ:
- the 68 `faq` records are the entries (category "covid", id = record id, question stripped,
  `[[...]]` follow-up prompts removed from the answer);
- the 1,387 `user_query` records are grouped by distinct query text (1,078 queries); the gold set
  of a query is the union, over its records, of every entry whose stripped answer equals the
  record's stripped answer (a query seen with two answers has two gold entries; either counts);
- P@1, MRR@10 and MAP from `search(q, k=68)` (full ranking), one query at a time;
- latency: `search(q, k=10)`, time.perf_counter around each call, after a 20-query warm-up;
- index build: median of 5 builds.
Anchor: plain bm25s (k1=1.5, b=0.75) over the question field only, same tokenizer, no fusion.
Scale: synthetic FAQs of 1,000 and 10,000 entries (random.Random(42); 20,000-word vocabulary =
CovidFAQ words + pseudo-words, drawn Zipf-weighted; 6-14 word questions, 25-60 word answers,
10 categories), build time = median of 3 builds, 500 queries (3-6 words of a random entry's
question, 30% perturbed), latency with and without `category=` (the source entry's category).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from faqbot.domain import FaqEntry
from faqbot.retrieval import Retriever, Tokenizer

DEFAULT_DATA = Path(__file__).resolve().parent / "data" / "covidfaq" / "query_answer_pairs.json"
FOLLOW_UPS = re.compile(r"\[\[.*?\]\]", re.DOTALL)
WORD = re.compile(r"[^\W_]+", re.UNICODE)
WARM_UP = 20
SEED = 42
VOCABULARY_SIZE = 20_000
CATEGORIES = 10
SCALE_QUERIES = 500
SCALE_SIZES = (1_000, 10_000)

TARGET_P1 = 0.70
TARGET_MRR = 0.80
TARGET_P95_SMALL_MS = 2.0
TARGET_P95_10K_MS = 20.0

Ranker = Callable[[str], list[str]]  # query -> entry ids, best first


# --------------------------------------------------------------------------- CovidFAQ


def load_covidfaq(path: Path) -> tuple[list[FaqEntry], dict[str, set[str]], list[dict[str, Any]]]:
    """Entries, gold sets keyed by distinct query text, and the raw records."""
    records: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    faqs = [r for r in records if r["query_type"] == "faq"]
    entries = [
        FaqEntry(
            id=str(r["id"]),
            category="covid",
            question=r["question"].strip(),
            answer=FOLLOW_UPS.sub("", r["answer"]).strip(),
        )
        for r in faqs
    ]
    by_answer: dict[str, set[str]] = {}
    for r in faqs:
        by_answer.setdefault(r["answer"].strip(), set()).add(str(r["id"]))
    gold: dict[str, set[str]] = {}
    for r in records:
        if r["query_type"] == "user_query":
            gold.setdefault(r["question"], set()).update(by_answer.get(r["answer"].strip(), ()))
    return entries, gold, records


def quality(rank: Ranker, gold: dict[str, set[str]]) -> dict[str, float]:
    """P@1, MRR@10 and MAP (average precision over the gold set, full ranking)."""
    p1 = mrr = ap = 0.0
    scored = 0
    for query, relevant in gold.items():
        if not relevant:
            continue  # unlabelled query (none in CovidFAQ); excluded rather than counted as 0
        scored += 1
        ranking = rank(query)
        if ranking and ranking[0] in relevant:
            p1 += 1
        for pos, entry_id in enumerate(ranking[:10], start=1):
            if entry_id in relevant:
                mrr += 1 / pos
                break
        found = 0
        precision_sum = 0.0
        for pos, entry_id in enumerate(ranking, start=1):
            if entry_id in relevant:
                found += 1
                precision_sum += found / pos
        ap += precision_sum / len(relevant)
    n = max(1, scored)
    return {"p_at_1": p1 / n, "mrr_at_10": mrr / n, "map": ap / n, "queries": scored}


def retriever_ranker(retriever: Retriever) -> Ranker:
    k = len(retriever.entries)

    def rank(query: str) -> list[str]:
        return [hit.entry.id for hit in retriever.search(query, k=k).hits]

    return rank


def plain_bm25_question_field(entries: Sequence[FaqEntry]) -> Ranker:
    """Anchor: bm25s over the question field only, faqbot's tokenizer, no fusion or rerank."""
    tokenizer = Tokenizer()
    model = bm25s.BM25(k1=1.5, b=0.75)
    model.index([tokenizer.tokens(e.question) or ["\x00"] for e in entries], show_progress=False)
    ids = [e.id for e in entries]

    def rank(query: str) -> list[str]:
        known = [t for t in tokenizer.tokens(query) if t in model.vocab_dict]
        if not known:
            return []  # no query word in any question: nothing retrieved
        scores: np.ndarray = model.get_scores(known)[: len(ids)]
        return [ids[int(i)] for i in np.argsort(-scores, kind="stable")]

    return rank


# --------------------------------------------------------------------------- timing


def percentiles_ms(times_ms: Sequence[float]) -> dict[str, float]:
    values = np.asarray(times_ms, dtype=float)
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "p99": float(np.percentile(values, 99)),
    }


def latency_ms(
    retriever: Retriever,
    queries: Sequence[str],
    categories: Sequence[str | None] | None = None,
) -> dict[str, float]:
    """Per-query latency of `search(q, k=10)`, one at a time, after a warm-up."""
    cats: Sequence[str | None] = categories if categories is not None else [None] * len(queries)
    for q, c in zip(queries[:WARM_UP], cats[:WARM_UP], strict=True):
        retriever.search(q, k=10, category=c)
    times: list[float] = []
    for q, c in zip(queries, cats, strict=True):
        start = time.perf_counter()
        retriever.search(q, k=10, category=c)
        times.append((time.perf_counter() - start) * 1000)
    return percentiles_ms(times)


def build_ms(entries: Sequence[FaqEntry], repeats: int) -> float:
    """Median wall time (ms) of building a Retriever over `entries`."""
    times: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        Retriever(entries)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


# --------------------------------------------------------------------------- synthetic scale


def _fold_words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return WORD.findall(folded)


def build_vocabulary(records: Sequence[dict[str, Any]], rng: random.Random) -> list[str]:
    """CovidFAQ words (most frequent first) plus pseudo-words, VOCABULARY_SIZE in all."""
    counts: Counter[str] = Counter()
    for r in records:
        counts.update(_fold_words(r["question"] + " " + FOLLOW_UPS.sub("", r["answer"])))
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    seen = set(words)
    consonants, vowels = "bcdfghjklmnprstvwz", "aeiou"
    while len(words) < VOCABULARY_SIZE:
        syllables = rng.randint(2, 4)
        word = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables))
        if rng.random() < 0.5:
            word += rng.choice(consonants)
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words[:VOCABULARY_SIZE]


class WordSampler:
    """Zipf-weighted (1/rank) draws from the vocabulary, like natural text."""

    def __init__(self, vocabulary: Sequence[str], rng: random.Random) -> None:
        self.vocabulary = list(vocabulary)
        self.cum_weights = list(accumulate(1 / (r + 1) for r in range(len(self.vocabulary))))
        self.rng = rng

    def words(self, k: int) -> list[str]:
        return self.rng.choices(self.vocabulary, cum_weights=self.cum_weights, k=k)


def synthetic_faq(n: int, sampler: WordSampler, rng: random.Random) -> list[FaqEntry]:
    entries: list[FaqEntry] = []
    for i in range(n):
        question = " ".join(sampler.words(rng.randint(6, 14))).capitalize() + "?"
        answer = " ".join(sampler.words(rng.randint(25, 60))).capitalize() + "."
        entries.append(
            FaqEntry(id=f"s{i}", category=f"cat{i % CATEGORIES}", question=question, answer=answer)
        )
    return entries


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def synthetic_queries(
    entries: Sequence[FaqEntry], sampler: WordSampler, rng: random.Random
) -> list[tuple[str, FaqEntry]]:
    """3-6 words of a random entry's question; 30% perturbed (typo, foreign word or both)."""
    queries: list[tuple[str, FaqEntry]] = []
    for _ in range(SCALE_QUERIES):
        source = rng.choice(entries)
        words = _fold_words(source.question)
        picked = rng.sample(words, k=min(len(words), rng.randint(3, 6)))
        if rng.random() < 0.3:
            kind = rng.randrange(3)
            if kind in (0, 2):
                j = rng.randrange(len(picked))
                picked[j] = _typo(picked[j], rng)
            if kind in (1, 2):
                picked.insert(rng.randrange(len(picked) + 1), sampler.words(1)[0])
        queries.append((" ".join(picked), source))
    return queries


def scale_run(n: int, vocabulary: Sequence[str], rng: random.Random) -> dict[str, Any]:
    sampler = WordSampler(vocabulary, rng)
    entries = synthetic_faq(n, sampler, rng)
    queries = synthetic_queries(entries, sampler, rng)
    texts = [q for q, _ in queries]
    build_times: list[float] = []
    retriever: Retriever | None = None
    for _ in range(3):
        start = time.perf_counter()
        retriever = Retriever(entries)
        build_times.append(time.perf_counter() - start)
    assert retriever is not None
    top1 = sum(
        1 for q, src in queries if (r := retriever.search(q, k=1)).top and r.top.entry is src
    )
    return {
        "entries": n,
        "vocabulary_words": len(vocabulary),
        "index_terms": len(
            {t for e in entries for t in retriever.tokenizer.tokens(f"{e.question} {e.answer}")}
        ),
        "queries": len(queries),
        "build_s": statistics.median(build_times),
        "all": latency_ms(retriever, texts),
        "one_category": latency_ms(retriever, texts, [src.category for _, src in queries]),
        "source_entry_top1": top1 / len(queries),
    }


# --------------------------------------------------------------------------- report


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(
        c.ljust(w) if i == 0 else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def report(results: dict[str, Any]) -> None:
    cov = results["covidfaq"]
    ours, anchor = cov["retriever"], cov["anchor_bm25_question_field"]
    print(
        f"CovidFAQ: {cov['entries']} entries, {ours['queries']} distinct queries "
        f"({cov['multi_gold_queries']} with 2-4 gold entries)"
    )
    widths = (52, 6, 7, 6)
    print(_row(("engine", "P@1", "MRR@10", "MAP"), widths))
    print(_row(("-" * 52, "-" * 6, "-" * 7, "-" * 6), widths))
    for name, m in (
        ("plain bm25s, question field only (anchor)", anchor),
        ("faqbot Retriever", ours),
    ):
        print(
            _row((name, f"{m['p_at_1']:.3f}", f"{m['mrr_at_10']:.3f}", f"{m['map']:.3f}"), widths)
        )
    print(_row(("published Elasticsearch BM25 (question field)", "-", "-", "0.742"), widths))
    lat = cov["latency_ms"]
    print(
        f"index build {cov['build_ms']:.1f} ms (median of 5); search(k=10) latency "
        f"p50 {lat['p50']:.3f} ms, p95 {lat['p95']:.3f} ms, p99 {lat['p99']:.3f} ms"
    )
    print()
    print(f"Synthetic FAQs ({SCALE_QUERIES} queries, seed {SEED}, {CATEGORIES} categories)")
    scale_widths = (8, 8, 9, 9, 9, 9, 9, 9)
    header = ("entries", "build s", "p50 all", "p95 all", "p99 all", "p50 cat", "p95 cat", "top-1")
    print(_row(header, scale_widths))
    print(_row(tuple("-" * w for w in scale_widths), scale_widths))
    for s in results["scale"]:
        a, c = s["all"], s["one_category"]
        print(
            _row(
                (
                    f"{s['entries']:,}",
                    f"{s['build_s']:.2f}",
                    f"{a['p50']:.3f}",
                    f"{a['p95']:.3f}",
                    f"{a['p99']:.3f}",
                    f"{c['p50']:.3f}",
                    f"{c['p95']:.3f}",
                    f"{s['source_entry_top1']:.2f}",
                ),
                scale_widths,
            )
        )
    print("(latencies in ms; 'cat' = category= filter on the source entry's category;")
    print(" top-1 = share of queries whose source entry ranks first, a sanity check)")
    print()
    print("Targets")
    for t in results["targets"]:
        print(f"  {'PASS' if t['pass'] else 'MISS'}  {t['target']:<34} {t['value']}")


def run(data: Path) -> dict[str, Any]:
    entries, gold, records = load_covidfaq(data)
    retriever = Retriever(entries)
    ours = quality(retriever_ranker(retriever), gold)
    anchor = quality(plain_bm25_question_field(entries), gold)
    queries = list(gold)
    lat = latency_ms(retriever, queries)
    build = build_ms(entries, repeats=5)

    rng = random.Random(SEED)
    vocabulary = build_vocabulary(records, rng)
    scaled = [scale_run(n, vocabulary, rng) for n in SCALE_SIZES]
    at_10k = next(s for s in scaled if s["entries"] == 10_000)

    targets = [
        ("P@1 >= 0.70 (CovidFAQ)", ours["p_at_1"] >= TARGET_P1, f"{ours['p_at_1']:.3f}"),
        (
            "MRR@10 >= 0.80 (CovidFAQ)",
            ours["mrr_at_10"] >= TARGET_MRR,
            f"{ours['mrr_at_10']:.3f}",
        ),
        (
            "p95 <= 2 ms at 68 entries",
            lat["p95"] <= TARGET_P95_SMALL_MS,
            f"{lat['p95']:.3f} ms",
        ),
        (
            "p95 <= 20 ms at 10,000 entries",
            at_10k["all"]["p95"] <= TARGET_P95_10K_MS,
            f"{at_10k['all']['p95']:.3f} ms (no filter)",
        ),
    ]
    return {
        "covidfaq": {
            "entries": len(entries),
            "multi_gold_queries": sum(1 for g in gold.values() if len(g) > 1),
            "retriever": ours,
            "anchor_bm25_question_field": anchor,
            "published_es_bm25_map": 0.742,
            "latency_ms": lat,
            "build_ms": build,
        },
        "scale": scaled,
        "targets": [{"target": n, "pass": ok, "value": v} for n, ok, v in targets],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Retrieval benchmark (CovidFAQ + synthetic).")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="query_answer_pairs.json")
    parser.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        parser.error(f"no such data file: {args.data}")
    started = time.perf_counter()
    results = run(args.data)
    results["total_s"] = time.perf_counter() - started
    report(results)
    print(f"\n(total {results['total_s']:.1f} s)")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
