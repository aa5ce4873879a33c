"""Persistence under load: N chat sessions asking without pause for S seconds, then count rows.

    python bench/persist.py                       # 20 sessions, 30 s, SQLite then PostgreSQL
    python bench/persist.py --sessions 20 --seconds 30 --backend sqlite
    python bench/persist.py --backend none        # the same load with PERSISTENCE=false

Each session (its own loopback address, as a distinct visitor) asks question after question over
socket.io against its own `chainlit run`; every answer is checked to be the real one. Then the
database is read: a turn row, a question step and an answer step must exist for every answer
received ("lost rows" = answers without them), and the server's failed-write count must be 0.
Prints answers per second and the rows found. tests/test_persistence.py runs the same for 5 s.
PostgreSQL needs 127.0.0.1:5432 (database `test`, user postgres); a fresh schema is dropped after.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e_support import chainlit_server
from tests.store_support import fresh_backend, postgres_missing
from tests.test_persistence import concurrent_writers


def run(kind: str, sessions: int, seconds: float) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="faqbot-persist-"))
    backend_kind = "sqlite" if kind == "none" else kind
    backends = fresh_backend(backend_kind, tmp)
    backend = next(backends)
    env = {**backend.env, "RATE_LIMIT_REQUESTS": "1000000", "MAX_STREAMS_PER_CLIENT": "0"}
    if kind == "none":
        env["PERSISTENCE"] = "false"
    try:
        with chainlit_server(env) as url:
            answered, elapsed = concurrent_writers(url, sessions, seconds)
            health = httpx.get(f"{url}/api/health", timeout=30).json()
        line = f"{kind:10s} {sessions} sessions {elapsed:5.1f} s: {answered} answers"
        line += f" ({answered / elapsed:.1f}/s)"
        if kind != "none":
            turns = backend.query("SELECT count(*) FROM faqbot_turns")[0][0]
            steps = dict(
                backend.query(
                    'SELECT "type", count(*) FROM steps WHERE "type" IN (?, ?) GROUP BY "type"',
                    ("assistant_message", "user_message"),
                )
            )
            lost = answered - min(
                turns, steps.get("assistant_message", 0), steps.get("user_message", 0)
            )
            failed = health["persistence"]["failed_writes"]
            line += (
                f"; rows: {turns} turns, {steps.get('user_message', 0)} questions, "
                f"{steps.get('assistant_message', 0)} answers; lost {lost}; failed writes {failed}"
            )
        print(line, flush=True)
    finally:
        backends.close()  # drops the PostgreSQL schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "none", "all"], default="all")
    args = parser.parse_args()
    kinds = ["none", "sqlite", "postgresql"] if args.backend == "all" else [args.backend]
    for kind in kinds:
        if kind == "postgresql" and (reason := postgres_missing()):
            print(f"postgresql skipped: {reason}")
            continue
        run(kind, args.sessions, args.seconds)


if __name__ == "__main__":
    main()
