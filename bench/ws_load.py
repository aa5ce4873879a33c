"""N concurrent Chainlit sessions over socket.io (the web UI's protocol) against one server.

    python bench/ws_load.py                      # 25 50 100 200 sessions, own server, offline
    python bench/ws_load.py 60 --repeat 3        # 60 sessions, three rounds
    python bench/ws_load.py 100 --url http://127.0.0.1:8000   # a server already running
    python bench/ws_load.py 50 --env UVICORN_WS_PROTOCOL=wsproto

Each session connects (handshake + `connection_successful` until on_chat_start's `task_end`),
asks `--questions` questions one after another, and disconnects; all sessions start together.
Prints, per size: successes, failures by kind, connect and answer latency (p50/p95/max), and how
many RecursionError tracebacks the server printed meanwhile (own server only).

By default every simulated user connects from its own loopback address (127.0.1.1, 127.0.1.2,
...), as distinct visitors would, so the default rate limit stays on without one bucket for all
(`--same-addr` connects them all from 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ws_sessions import Round
from ws_sessions import run_round as run_sessions

from tests.e2e_support import chainlit_server, server_log


@dataclass
class Result:
    round: Round
    recursion_errors: int | None = None


async def run_round(url: str, n: int, args: argparse.Namespace, own: bool) -> Result:
    before = server_log(url, tail=10**9).count("RecursionError") if own else 0
    r = await run_sessions(
        url, n, questions=args.questions, wait_s=args.timeout, same_addr=args.same_addr
    )
    result = Result(r)
    if own:
        await asyncio.sleep(0.5)  # let the server flush its log
        result.recursion_errors = server_log(url, tail=10**9).count("RecursionError") - before
    return result


def _ms(values: list[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.0f}"


def report(res: Result) -> str:
    r = res.round
    fails = sum(r.failures.values())
    p50c = f"{statistics.median(r.connect_s) * 1000:.0f}" if r.connect_s else "-"
    rec = "-" if res.recursion_errors is None else str(res.recursion_errors)
    line = (
        f"{r.sessions:>8} {r.ok:>4} {fails:>5}  connect p50/p95/max {p50c}/"
        f"{_ms(r.connect_s, 0.95)}/{_ms(r.connect_s, 1.0)} ms  answer p50/p95/max "
        f"{_ms(r.answer_s, 0.5)}/{_ms(r.answer_s, 0.95)}/{_ms(r.answer_s, 1.0)} ms  "
        f"wall {r.wall_s:.1f} s  RecursionError {rec}"
    )
    for kind, count in r.failures.most_common():
        line += f"\n{'':>14}{count} x {kind}"
    return line


@contextlib.contextmanager
def target(args: argparse.Namespace) -> Iterator[tuple[str, bool]]:
    if args.url:
        yield args.url.rstrip("/"), False
        return
    env = dict(item.split("=", 1) for item in args.env)
    if args.same_addr:  # one client for the server: no cap on its answers in progress
        env.setdefault("MAX_STREAMS_PER_CLIENT", "0")
    with chainlit_server(env, app=args.app) as url:
        yield url, True


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sessions", nargs="*", type=int, default=[25, 50, 100, 200])
    parser.add_argument("--questions", type=int, default=1, help="questions per session")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per size")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per wait")
    parser.add_argument("--url", help="use this running server instead of starting one")
    parser.add_argument("--app", default="chainlit_app.py", help="app file (own server)")
    parser.add_argument("--env", action="append", default=[], help="NAME=value for the server")
    parser.add_argument("--same-addr", action="store_true", help="all users from 127.0.0.1")
    parser.add_argument("--show-log", action="store_true", help="print the server log's tail")
    parser.add_argument("--save-log", help="write the whole server log to this file")
    args = parser.parse_args()
    failed = 0
    with target(args) as (url, own):
        addrs = "all from 127.0.0.1" if args.same_addr else "one loopback address per user"
        print(f"server {url} ({args.app})  questions/session {args.questions}  {addrs}")
        print(f"server env {args.env or '-'}")
        print(f"{'sessions':>8} {'ok':>4} {'fail':>5}")
        for n in args.sessions:
            for _ in range(args.repeat):
                res = await run_round(url, n, args, own)
                failed += sum(res.round.failures.values())
                print(report(res), flush=True)
                for kind, example in res.round.examples.items():
                    print(f"{'':>14}e.g. {kind}: {example[:200]!r}")
                await asyncio.sleep(1.0)  # let disconnects settle between rounds
        if args.show_log and own:
            print(server_log(url, tail=8000))
        if args.save_log and own:
            text = server_log(url, tail=10**9)
            await asyncio.to_thread(Path(args.save_log).write_text, text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
