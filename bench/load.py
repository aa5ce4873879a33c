"""N concurrent chat-UI users (socket.io) against one `chainlit run` process, offline and LLM.

    python bench/load.py                         # 50 200 500 sessions, offline then fake LLM
    python bench/load.py 200 --modes llm --repeat 3
    python bench/load.py 500 --profile-out /tmp/load.svg   # py-spy the server meanwhile
    python bench/load.py 200 --think 10          # users pause ~10 s before each question
    python bench/load.py 200 --rate 40           # open loop: 40 questions/s offered in all

Starts, on loopback only: the fake OpenAI server (`python -m tests.fake_openai`, zero-latency
profile unless `--fake-profile realistic`) and faqbot as `chainlit run chainlit_app.py --headless`
(tests/e2e_support.chainlit_server) with EMBEDDINGS=bundled (semantic retrieval on: the load
starts only once /api/health says `retrieval.ranking == "hybrid"`), the default rate limit and
every other setting at its default except ANSWER_CACHE_SIZE=0 (every question reaches the model;
`--cache` keeps the default cache). Mode `offline` has no OPENAI_API_KEY (retrieval answers);
mode `llm` points OPENAI_BASE_URL at the fake.

Each simulated user has its own Chainlit session on its own loopback address (127.0.1.1,
127.0.1.2, ...; the rate limit and the per-client caps count per address, as for real
visitors), connects, asks `--questions` questions one after another (the next when the previous
one's task_end arrives), and disconnects; all users start together and, by default, ask at once
(saturation: the server always has every user's next question; `--think S` makes each user wait
a random 0-S s before its first question and 0.5-1.5 x S s before each next one; `--rate R` is
an open loop: the users together offer R questions/s as a Poisson stream, whatever the answers
take, so latency can be read against a fixed offered load). Per round it
prints: users that got every answer, answers/s (answers / time from the first question sent to
the last answer), time to the first visible answer text (client_message sent -> first streamed
text) p50/p95/p99, time to the whole answer (-> task_end), failures by kind (a rate-limit reply
or an offline fallback counts as a failure), and the server's resident memory: before the
round, its peak during the round and (peak - before) / users. The client runs in this one
process on the same machine: its own CPU time is inside every latency figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vs_seed import Fake
from ws_sessions import Round, pct, run_round

from tests.e2e_support import chainlit_server, server_log, server_pid


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def sample_peak(pid: int, stop: asyncio.Event, peak: list[float]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], rss_mb(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)


def wait_hybrid(url: str, limit_s: float) -> str:
    """Block until /api/health reports hybrid ranking (the bundled model encoded the FAQ)."""
    deadline = time.monotonic() + limit_s
    seen = "?"
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(f"{url}/api/health", timeout=5) as resp:
                retrieval = json.loads(resp.read()).get("retrieval", {})
            seen = str(retrieval.get("ranking"))
            if seen == "hybrid":
                return seen
        time.sleep(0.5)
    raise RuntimeError(f"retrieval ranking still {seen!r} after {limit_s:.0f} s")


@contextlib.contextmanager
def server(mode: str, args: argparse.Namespace, fake: Fake | None) -> Iterator[str]:
    env = {"EMBEDDINGS": "bundled", "DATA_DIR": str(args.data_dir)}
    if not args.cache:
        env["ANSWER_CACHE_SIZE"] = "0"
    if mode == "llm":
        assert fake is not None
        env |= {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake.base_url}
    env |= dict(item.split("=", 1) for item in args.env)
    with chainlit_server(env, timeout=180) as url:
        yield url


def report(mode: str, r: Round, before: float, peak: float, llm_calls: int | None) -> str:
    fails = sum(r.failures.values())
    asked = r.answers + fails  # lower bound when a session fails before its last question
    rate = r.answers / r.asking_s if r.asking_s else 0.0
    ms = lambda v, q: f"{pct(v, q) * 1000:.0f}"  # noqa: E731
    lines = [
        f"{mode:>7} {r.sessions:>5} users: {r.ok} fully answered, {fails} failed; "
        f"{r.answers} answers in {r.asking_s:.1f} s = {rate:.1f} answers/s "
        f"(wall {r.wall_s:.1f} s)",
        f"{'':>14}first text p50/p95/p99 {ms(r.first_text_s, 50)}/{ms(r.first_text_s, 95)}/"
        f"{ms(r.first_text_s, 99)} ms; whole answer p50/p95/p99 {ms(r.answer_s, 50)}/"
        f"{ms(r.answer_s, 95)}/{ms(r.answer_s, 99)} ms; connect p50/p95 "
        f"{ms(r.connect_s, 50)}/{ms(r.connect_s, 95)} ms",
        f"{'':>14}server RSS {before:.0f} MiB before, {peak:.0f} MiB peak: "
        f"{(peak - before) * 1024 / r.sessions:.0f} KiB per user"
        + (f"; LLM calls {llm_calls} for {asked}+ questions" if llm_calls is not None else ""),
    ]
    for kind, count in r.failures.most_common():
        lines.append(f"{'':>14}{count} x {kind}: e.g. {r.examples[kind][:160]!r}")
    return "\n".join(lines)


async def one_round(url: str, n: int, args: argparse.Namespace) -> tuple[Round, float, float]:
    pid = server_pid(url)
    before = rss_mb(pid)
    peak = [before]
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_peak(pid, stop, peak))
    spy = None
    if args.profile_out and n == max(args.sessions):
        spy = subprocess.Popen(  # noqa: ASYNC220 (starts at once; not waited on here)
            ["py-spy", "record", "-o", f"{args.profile_out}", "--pid", str(pid), "-r", "100"]
            + (["-f", "raw"] if args.profile_out.endswith(".txt") else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(1.0)
    try:
        r = await run_round(
            url, n, questions=args.questions, wait_s=args.timeout, think_s=args.think,
            rate=args.rate,
        )  # fmt: skip
    finally:
        stop.set()
        await sampler
        if spy is not None:
            spy.send_signal(2)
            await asyncio.to_thread(spy.wait, 60)
    return r, before, peak[0]


def llm_failures(log_text: str) -> list[str]:
    """The server's `llm.*` warnings (failed, skipped, output rejected): code and detail."""
    found = []
    for line in log_text.splitlines():
        if '"event": "llm.' not in line or not line.startswith("{"):
            continue
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            found.append(f"{event['event']} {event.get('code', '')} {event.get('detail', '')}")
    return found


async def warm_up(url: str) -> None:
    """A few sessions first, so imports and first-use caches do not land on the round."""
    await run_round(url, 3, questions=2, wait_s=60)


async def run_mode(mode: str, args: argparse.Namespace, fake: Fake | None) -> int:
    failed = 0
    with server(mode, args, fake) as url:
        started = time.monotonic()
        ranking = await asyncio.to_thread(wait_hybrid, url, args.encode_wait)
        print(f"{mode}: {url}, ranking {ranking} after {time.monotonic() - started:.0f} s")
        await warm_up(url)
        for n in args.sessions:
            for _ in range(args.repeat):
                if fake is not None:
                    fake.reset()
                r, before, peak = await one_round(url, n, args)
                calls = fake.stats()["chat_calls"] if fake is not None else None
                failed += sum(r.failures.values())
                print(report(mode, r, before, peak, calls), flush=True)
                if r.failures:  # why: the server's own account of each fallback
                    for line in llm_failures(server_log(url, tail=50_000_000))[-5:]:
                        print(f"              server: {line}")
                await asyncio.sleep(2.0)  # let disconnects settle between rounds
        if args.show_log:
            print(server_log(url, tail=8000))
    return failed


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sessions", nargs="*", type=int, default=[50, 200, 500])
    parser.add_argument("--modes", default="offline,llm", help="offline, llm or both")
    parser.add_argument("--questions", type=int, default=5, help="questions per user")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per size")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per wait")
    parser.add_argument(
        "--think", type=float, default=0.0,
        help="seconds a user waits before each question (random 0.5-1.5x; 0: none, saturation)",
    )  # fmt: skip
    parser.add_argument(
        "--rate", type=float, default=0.0,
        help="open loop: questions/s offered by all users together (Poisson); 0: off",
    )  # fmt: skip
    parser.add_argument("--fake-profile", default="zero", help="zero or realistic")
    parser.add_argument("--cache", action="store_true", help="keep the answer cache on")
    parser.add_argument("--env", action="append", default=[], help="NAME=value for the server")
    parser.add_argument("--data-dir", help="faqbot DATA_DIR (reuse to skip re-encoding)")
    parser.add_argument("--encode-wait", type=float, default=600, help="seconds for hybrid")
    parser.add_argument("--profile-out", help="py-spy record the largest round into this file")
    parser.add_argument("--show-log", action="store_true", help="print the server log's tail")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    print(
        f"{platform.python_version()} on {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; users {args.sessions}, "
        f"{args.questions} questions each, think {args.think:g} s, rate {args.rate:g}/s, "
        f"fake {args.fake_profile}, "
        f"answer cache {'on' if args.cache else 'off'}, env {args.env or '-'}"
    )
    tmp = None
    if args.data_dir is None:
        tmp = tempfile.mkdtemp(prefix="faqbot-load-")
        args.data_dir = tmp
    fake = Fake() if "llm" in modes else None
    failed = 0
    try:
        if fake is not None:
            fake.profile(args.fake_profile)
        for mode in modes:
            failed += await run_mode(mode, args, fake if mode == "llm" else None)
    finally:
        if fake is not None:
            fake.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
