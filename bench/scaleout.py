"""API answers per second through nginx (the shipped config) with 1 and 2 replicas.

    python bench/scaleout.py                        # 10 s per run, 32 connections, 3 repeats
    python bench/scaleout.py --seconds 5 --repeats 1 --connections 64

Offline mode (retrieval answers, no LLM), lexical ranking by default (`--embeddings bundled`
for hybrid), loopback only. Each run starts the replicas (`chainlit run`, as in production) and
nginx with deploy/nginx/faqbot.conf (replicas and port rewritten as in tests/nginx_support.py),
warms up, then drives `POST /api/chat` with wrk (Debian's package: apt-get install wrk) from
one address, so the per-client limits are lifted for the run (RATE_LIMIT_REQUESTS,
MAX_STREAMS_PER_CLIENT=0): this measures serving capacity, not the limits. Errors (non-2xx,
timeouts) are counted and printed: a run with errors measures nothing. Prints answers/s,
p50/p95/p99 latency and errors per run, then medians with min/max over the repeats and the
2-replica/1-replica ratio.

On a 2-core machine the load generator and nginx share the cores with the replicas, so the
ratio shows what a second replica buys on the same box, not on a second machine.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e_support import chainlit_server
from tests.nginx_support import NGINX, nginx_in_front

QUESTIONS = (
    "Do you offer discounts for annual subscriptions?",
    "How do I reset my password?",
    "What payment methods do you accept?",
    "Can I export reports to PDF?",
    "How long do you keep raw instrument data?",
    "Is there a money-back guarantee?",
    "Which instruments can I connect?",
    "Can I schedule reports?",
)
WRK_SCRIPT = """
local questions = {%s}
local i = 0
request = function()
  i = i + 1
  local body = '{"question": "' .. questions[(i %% #questions) + 1] .. '"}'
  return wrk.format("POST", "/api/chat", {["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%.2f %%.2f %%.2f %%d\\n", summary.requests,
    summary.duration, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, e.status + e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass
class Run:
    replicas: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int


def wrk(
    url: str, seconds: int, connections: int, script: Path
) -> tuple[int, int, float, float, float, int]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
         "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    requests, duration_us, p50, p95, p99, errors = line.split()[1:]
    return int(requests), int(duration_us), float(p50), float(p95), float(p99), int(errors)


def one_run(replicas: int, args: argparse.Namespace, script: Path) -> Run:
    # one wrk address stands for many visitors: no per-client limits (rate, answers in progress)
    env = {
        "RATE_LIMIT_REQUESTS": "1000000",
        "MAX_STREAMS_PER_CLIENT": "0",
        "EMBEDDINGS": args.embeddings,
    }
    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(chainlit_server(env, timeout=120)) for _ in range(replicas)]
        front = stack.enter_context(nginx_in_front([u.removeprefix("http://") for u in urls]))
        for u in urls:  # warm-up: every replica answers (and, with hybrid, has its vectors)
            _wait_ready(u, args.embeddings)
        wrk(f"{front.url}/api/chat", 2, args.connections, script)
        requests, duration_us, p50, p95, p99, errors = wrk(
            f"{front.url}/api/chat", args.seconds, args.connections, script
        )
    return Run(replicas, requests / (duration_us / 1e6), p50, p95, p99, errors)


def _wait_ready(url: str, embeddings: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        health = httpx.get(f"{url}/api/health", timeout=10).json()
        if embeddings == "off" or health.get("retrieval", {}).get("ranking") == "hybrid":
            return
        time.sleep(0.5)
    raise RuntimeError(f"{url} never switched to hybrid ranking")


def summary(runs: list[Run]) -> str:
    rps = [r.rps for r in runs]
    p95 = [r.p95_ms for r in runs]
    return (
        f"{runs[0].replicas} replica(s): {statistics.median(rps):7.1f} answers/s "
        f"(min {min(rps):.1f}, max {max(rps):.1f}), p95 {statistics.median(p95):.1f} ms "
        f"(min {min(p95):.1f}, max {max(p95):.1f}), errors {sum(r.errors for r in runs)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--embeddings", choices=("off", "bundled"), default="off")
    args = parser.parse_args()
    if shutil.which("wrk") is None or NGINX is None:
        sys.exit("needs wrk and nginx (apt-get install wrk nginx)")
    folder = Path(tempfile.mkdtemp(prefix="faqbot-scaleout-"))
    script = folder / "chat.lua"
    script.write_text(WRK_SCRIPT % ", ".join(f'"{q}"' for q in QUESTIONS), encoding="utf-8")
    results: dict[int, list[Run]] = {1: [], 2: []}
    for repeat in range(args.repeats):
        for replicas in (1, 2):  # interleaved, so drift on the machine hits both alike
            run = one_run(replicas, args, script)
            results[replicas].append(run)
            print(
                f"repeat {repeat + 1}, {replicas} replica(s): {run.rps:.1f} answers/s, "
                f"p50 {run.p50_ms:.1f} ms, p95 {run.p95_ms:.1f} ms, p99 {run.p99_ms:.1f} ms, "
                f"errors {run.errors}",
                flush=True,
            )
    print()
    print(f"nginx + wrk, {args.connections} connections, {args.seconds} s per run, "
          f"embeddings={args.embeddings}, {args.repeats} repeat(s)")  # fmt: skip
    print(summary(results[1]))
    print(summary(results[2]))
    ratios = [b.rps / a.rps for a, b in zip(results[1], results[2], strict=True)]
    print(
        f"ratio 2/1: {statistics.median(ratios):.2f}x "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f})"
    )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
