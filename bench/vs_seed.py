"""faqbot against the original design (bench/seed_baseline), both sides in the same run.

    python bench/vs_seed.py                 # full run (about 20 minutes)
    python bench/vs_seed.py --quick         # fewer repeats, shorter windows (under 9 minutes)
    python bench/vs_seed.py --json --quick  # ... and one JSON object as the LAST line

Starts, on loopback only: the fake OpenAI server (`python -m tests.fake_openai`, one latency model
for both sides: streamed and non-streamed replies are paced alike), the baseline (`uvicorn
app.main:app` in a temporary folder holding `faqs/*.txt` and the spec's `frontend/`) and faqbot
(`chainlit run chainlit_app.py --headless` via tests/e2e_support.py, with OPENAI_API_KEY=sk-test,
OPENAI_BASE_URL=the fake, ANSWER_CACHE_SIZE=0, RATE_LIMIT_REQUESTS=1000000, EMBEDDINGS=bundled).
Everything else is each side's default. Then measures:

1. time to first visible answer text and to the full answer, realistic model (300 ms first token,
   100 tokens/s, 150-token answers, 20-token tool calls), one question at a time: faqbot through
   `POST /api/chat/stream` (first `token` event, `done`) and through the Chainlit socket.io
   protocol (first streamed text, `task_end`); the baseline's one JSON response is both;
2. own overhead: `POST /api/chat` latency with a zero-latency model, one at a time;
3. throughput and latency p50/p95 with 50 concurrent clients on `POST /api/chat`: realistic model,
   a burst of one question per client timed to the last answer (answers/s = 50 / that time; the
   baseline's blocked event loop answers nobody within a short window, so a windowed count would
   read 0); zero-latency (CPU-bound) model, closed loops for a fixed window (requests still
   waiting when it closes count with their age so far, a lower bound marked ">=");
4. `GET /api/health` latency while every LLM call stalls (5 questions in flight);
5. prompt tokens per question (summed over the LLM calls of one answer, from the fake server's
   `usage` records) at 100, 1,000 and 10,000 synthetic FAQ entries, and where each side passes a
   128k-token context (linear fit).

Figures are medians with (min-max) over repeats; the last column is faqbot / baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ws_sessions import TimedChat  # noqa: E402

from tests.e2e_support import chainlit_server, free_port  # noqa: E402

SEED = ROOT / "bench" / "seed_baseline"
# Each names its category, so the fake's word-overlap router sends the baseline (whose tool
# descriptions are just "...the Sales FAQ knowledge base...") to the right file too.
QUESTIONS = [
    "What sales discounts do you offer for annual subscriptions?",
    "Which file formats can labs import?",
    "Can I schedule reports to run automatically?",
]
CONTEXT_LIMIT = 128_000
HEALTH_TIMEOUT = 5.0


# --- helpers ------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def spread(values: list[float], unit: str = "ms", digits: int = 0) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.{digits}f} {unit}"
    return f"{med:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f}) {unit}"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r: float | None, digits: int = 2) -> str:
    return "-" if r is None else f"{r:.{digits}f}x"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, load average {load}"
    )


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- the three processes ------------------------------------------------------------------


class Fake:
    """The fake OpenAI server as a child process, driven through its /_fake control routes."""

    def __init__(self) -> None:
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_openai", "--port", "0", "--quiet"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert self.proc.stdout is not None
        banner = self.proc.stdout.readline()
        if " at " not in banner:
            raise RuntimeError(f"fake OpenAI server did not start: {banner!r}")
        self.base_url = banner.split(" at ")[1].split()[0]
        self.root = self.base_url.removesuffix("/v1")

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            self.root + path, data=json.dumps(body).encode(), method="POST",
            headers={"content-type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def profile(self, preset: str, **fields: Any) -> None:
        self._post("/_fake/profile", {"preset": preset, **fields})

    def stall(self, seconds: float | None) -> None:
        self._post("/_fake/profile", {"stall_seconds": seconds})

    def reset(self) -> None:
        self._post("/_fake/reset", {})

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.root + "/_fake/stats", timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as resp:
            if resp.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def baseline(fake: Fake, faq_dir: Path) -> Iterator[str]:
    """The original design under uvicorn on a free loopback port; yields its URL."""
    with tempfile.TemporaryDirectory(prefix="seed-baseline-") as tmp:
        run = Path(tmp)
        (run / "faqs").mkdir()
        for f in faq_dir.glob("*.txt"):
            shutil.copy(f, run / "faqs" / f.name)
        (run / "frontend").symlink_to(SEED / "frontend")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        env |= {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": fake.base_url,
                "PYTHONPATH": str(SEED)}  # fmt: skip
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "app.main:app",
                 "--host", "127.0.0.1", "--port", str(port)],
                cwd=run, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            try:
                try:
                    wait_http(f"{url}/api/health", 30, proc)
                except RuntimeError:
                    out.seek(0)
                    sys.stderr.write(out.read().decode(errors="replace")[-4000:])
                    raise
                yield url
            finally:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def faqbot_env(fake: Fake, data_dir: Path, faq_dir: Path | None = None) -> dict[str, str]:
    env = {
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": fake.base_url,
        "ANSWER_CACHE_SIZE": "0",
        "RATE_LIMIT_REQUESTS": "1000000",
        # every simulated client is 127.0.0.1: no spend limits or answer cap per client
        "MAX_STREAMS_PER_CLIENT": "0",
        "SPEND_CONVERSATION_TOKENS": "0",
        "SPEND_CLIENT_DAILY_TOKENS": "0",
        "EMBEDDINGS": "bundled",
        "DATA_DIR": str(data_dir),
    }
    if faq_dir is not None:
        env["FAQ_DIR"] = str(faq_dir)
    return env


def wait_embeddings(url: str, timeout: float) -> str:
    """Wait until faqbot's bundled model has encoded the FAQ (hybrid ranking); its state."""
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(f"{url}/api/health", timeout=2) as resp:
                retrieval = json.loads(resp.read()).get("retrieval", {})
            emb = retrieval.get("embeddings")
            state = emb.get("state", "?") if isinstance(emb, dict) else str(emb)
            if state in ("ready", "off", "unavailable", "error"):
                return f"{retrieval.get('ranking')}, embeddings {state}"
        time.sleep(0.5)
    return f"embeddings still {state} after {timeout:.0f} s"


# --- one answer, each face ----------------------------------------------------------------


async def baseline_answer(http: httpx.AsyncClient, url: str, q: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    resp = await http.post(f"{url}/api/chat", json={"question": q})
    took = time.perf_counter() - t0
    resp.raise_for_status()
    return took, took  # nothing is visible before the whole response


async def sse_answer(http: httpx.AsyncClient, url: str, q: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    first: float | None = None
    event = ""
    async with http.stream("POST", f"{url}/api/chat/stream", json={"question": q}) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "token" and first is None:
                if json.loads(line[6:]).get("text"):
                    first = time.perf_counter() - t0
            elif line.startswith("data: ") and event == "error":
                raise RuntimeError(f"faqbot stream error: {line}")
            elif line.startswith("data: ") and event == "done":
                break
    total = time.perf_counter() - t0
    return (first if first is not None else total), total


async def socket_answer(url: str, q: str) -> tuple[float, float]:
    async with TimedChat(url) as chat:  # its clock is time.monotonic
        t0 = time.monotonic()
        turn = await chat.ask(q, wait_s=30)
        total = time.monotonic() - t0
        if turn.errors:
            raise RuntimeError(f"chainlit error: {turn.errors}")
        first = chat.first_text_at - t0 if chat.first_text_at is not None else total
    return first, total


# --- the measurements ---------------------------------------------------------------------


@dataclass
class Results:
    first: dict[str, list[float]] = field(default_factory=dict)  # face -> seconds
    full: dict[str, list[float]] = field(default_factory=dict)
    calls: dict[str, list[int]] = field(default_factory=dict)
    overhead: dict[str, list[float]] = field(default_factory=dict)
    load: dict[tuple[str, str], list[dict[str, float]]] = field(default_factory=dict)
    health: dict[str, list[float | None]] = field(default_factory=dict)
    tokens: dict[str, dict[int, float]] = field(default_factory=dict)
    max_call_tokens: dict[str, dict[int, int]] = field(default_factory=dict)


async def measure_latency(fake: Fake, base: str, bot: str, repeats: int, res: Results) -> None:
    fake.profile("realistic")
    faces = {
        "baseline": lambda h, q: baseline_answer(h, base, q),
        "faqbot SSE": lambda h, q: sse_answer(h, bot, q),
        "faqbot socket.io": lambda h, q: socket_answer(bot, q),
    }
    async with httpx.AsyncClient(timeout=60) as http:
        for warm in faces.values():  # warm-up, not counted
            await warm(http, QUESTIONS[0])
        for i in range(repeats):
            q = QUESTIONS[i % len(QUESTIONS)]
            for face, run in faces.items():
                fake.reset()
                first, total = await run(http, q)
                calls = fake.stats()["chat_calls"]
                res.first.setdefault(face, []).append(first)
                res.full.setdefault(face, []).append(total)
                res.calls.setdefault(face, []).append(calls)
            log(f"  latency repeat {i + 1}/{repeats}")


async def measure_overhead(fake: Fake, base: str, bot: str, n: int, res: Results) -> None:
    fake.profile("zero")
    async with httpx.AsyncClient(timeout=60) as http:
        for face, url in (("baseline", base), ("faqbot", bot)):
            for i in range(5):
                (
                    await http.post(f"{url}/api/chat", json={"question": QUESTIONS[i % 3]})
                ).raise_for_status()
            times = []
            for i in range(n):
                t0 = time.perf_counter()
                resp = await http.post(f"{url}/api/chat", json={"question": QUESTIONS[i % 3]})
                times.append(time.perf_counter() - t0)
                resp.raise_for_status()
            res.overhead[face] = times


async def load_window(url: str, clients: int, window: float) -> dict[str, float]:
    """`clients` loop on POST /api/chat for `window` seconds: answers/s, p50/p95, errors.

    Requests still waiting at the end count in the percentiles with their age so far.
    """
    done: list[float] = []
    errors = 0
    waiting_since: dict[int, float] = {}
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    async with httpx.AsyncClient(timeout=window + 120, limits=limits) as http:
        t_end = time.perf_counter() + window

        async def client(c: int) -> None:
            nonlocal errors
            i = c
            while True:
                started = waiting_since[c] = time.perf_counter()
                try:
                    resp = await http.post(
                        f"{url}/api/chat", json={"question": QUESTIONS[i % len(QUESTIONS)]}
                    )
                    ok = resp.status_code == 200
                except httpx.HTTPError:
                    ok = False
                finished = time.perf_counter()
                if finished > t_end:
                    return  # after the window: counted below as waiting at the end
                del waiting_since[c]
                if ok:
                    done.append(finished - started)
                else:
                    errors += 1
                i += 1

        tasks = [asyncio.create_task(client(c)) for c in range(clients)]
        await asyncio.sleep(window)
        now = time.perf_counter()
        waiting = [now - t for t in waiting_since.values()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    every = done + waiting
    p95 = pct(every, 95)
    return {
        "throughput": len(done) / window,
        "p50": pct(every, 50),
        "p95": p95,
        "censored": float(bool(waiting) and p95 <= max(waiting) and p95 in waiting),
        "waiting": float(len(waiting)),
        "errors": float(errors),
        "answers": float(len(done)),
    }


async def load_burst(url: str, clients: int, patience: float) -> dict[str, float]:
    """`clients` ask one question each at the same moment; answers/s = clients / last answer."""
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    async with httpx.AsyncClient(timeout=patience, limits=limits) as http:
        t0 = time.perf_counter()

        async def one(c: int) -> float | None:
            try:
                q = QUESTIONS[c % len(QUESTIONS)]
                resp = await http.post(f"{url}/api/chat", json={"question": q})
            except httpx.HTTPError:
                return None
            return time.perf_counter() - t0 if resp.status_code == 200 else None

        got = await asyncio.gather(*(one(c) for c in range(clients)))
        makespan = time.perf_counter() - t0
    ok = [x for x in got if x is not None]
    return {
        "throughput": len(ok) / makespan,
        "p50": pct(ok, 50),
        "p95": pct(ok, 95),
        "censored": 0.0,
        "waiting": 0.0,
        "errors": float(clients - len(ok)),
        "answers": float(len(ok)),
    }


async def measure_health_stalled(fake: Fake, url: str, samples: int) -> list[float | None]:
    """GET /api/health latencies (None: no answer within HEALTH_TIMEOUT) with 5 stalled asks."""
    fake.stall(120)
    out: list[float | None] = []
    async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT) as http:
        stalled = [
            asyncio.create_task(http.post(f"{url}/api/chat", json={"question": q}, timeout=300))
            for q in QUESTIONS + QUESTIONS[:2]
        ]
        await asyncio.sleep(1.0)  # the questions reach the (stalled) model
        for _ in range(samples):
            t0 = time.perf_counter()
            try:
                (await http.get(f"{url}/api/health")).raise_for_status()
                out.append(time.perf_counter() - t0)
            except httpx.HTTPError:
                out.append(None)
            await asyncio.sleep(0.2)
        for t in stalled:
            t.cancel()
        await asyncio.gather(*stalled, return_exceptions=True)
    fake.stall(None)
    return out


def synthetic_faq(folder: Path, entries: int) -> None:
    """`entries` FAQ entries over the spec's three files (sales, labs, reports), ~35 words each."""
    cats = ["sales", "labs", "reports"]
    per = {c: [f"{c.upper()} FAQ", ""] for c in cats}
    for i in range(entries):
        c = cats[i % 3]
        per[c] += [
            f"Q: How do I configure {c} module {i} for workflow {i * 7 % 97}?",
            f"A: The {c} module {i} is configured under Settings > Modules > {i}. It takes about "
            f"{i % 9 + 1} minutes, needs the admin role, and applies to workflow {i * 7 % 97} "
            f"from the next run; earlier runs keep their settings.",
            "",
        ]
    folder.mkdir(parents=True, exist_ok=True)
    for c in cats:
        (folder / f"{c}.txt").write_text("\n".join(per[c]), encoding="utf-8")


def token_questions(entries: int) -> list[str]:
    picks = [
        min(entries - 1, k) for k in (entries // 2 - entries // 2 % 3, 1 + 3 * (entries // 7), 2)
    ]
    cats = ["sales", "labs", "reports"]
    return [
        f"How do I configure {cats[i % 3]} module {i} for workflow {i * 7 % 97}?" for i in picks
    ]


async def prompt_tokens_for(
    fake: Fake, url: str, ask: Any, questions: list[str]
) -> tuple[float, int]:
    """Mean prompt tokens per answer (all its LLM calls), and the largest single call."""
    per_answer, biggest = [], 0
    async with httpx.AsyncClient(timeout=120) as http:
        for q in questions:
            fake.reset()
            await ask(http, url, q)
            usage = fake.stats()["usage"]
            per_answer.append(sum(u["prompt_tokens"] for u in usage))
            biggest = max([biggest, *(u["prompt_tokens"] for u in usage)])
    return statistics.mean(per_answer), biggest


async def measure_tokens(fake: Fake, sizes: list[int], work: Path, res: Results) -> None:
    fake.profile("zero")
    for n in sizes:
        folder = work / f"faq-{n}"
        synthetic_faq(folder, n)
        questions = token_questions(n)
        with baseline(fake, folder) as base:
            mean, big = await prompt_tokens_for(fake, base, baseline_answer, questions)
        res.tokens.setdefault("baseline", {})[n] = mean
        res.max_call_tokens.setdefault("baseline", {})[n] = big
        with chainlit_server(faqbot_env(fake, work / f"data-{n}", folder), timeout=180) as bot:
            mean, big = await prompt_tokens_for(fake, bot, sse_answer, questions)
        res.tokens.setdefault("faqbot", {})[n] = mean
        res.max_call_tokens.setdefault("faqbot", {})[n] = big
        log(f"  tokens at {n} entries: baseline {res.tokens['baseline'][n]:.0f}, "
            f"faqbot {res.tokens['faqbot'][n]:.0f}")  # fmt: skip


def passes_context(points: dict[int, float]) -> str:
    """Where a linear fit of tokens per answer over entries reaches CONTEXT_LIMIT."""
    xs, ys = list(points), list(points.values())
    if len(xs) < 2:
        return "-"
    slope = (ys[-1] - ys[0]) / (xs[-1] - xs[0])
    if slope <= 0:
        return "never (flat)"
    at = xs[0] + (CONTEXT_LIMIT - ys[0]) / slope
    if at > 10_000_000:
        return "beyond 10 million entries"
    return f"about {at:,.0f} entries"


# --- report -------------------------------------------------------------------------------


def report(res: Results, args: argparse.Namespace, started: float) -> dict[str, Any]:
    ms = 1000.0
    lines = []
    add = lines.append
    add(f"\nmachine: {machine()}")
    add(
        f"mode: {'quick' if args.quick else 'full'}; wall time {time.monotonic() - started:.0f} s\n"
    )

    add("1. One question at a time, realistic model (300 ms first token, 100 tokens/s, "
        "150-token answers, 20-token tool calls)")  # fmt: skip
    add(f"{'measure':<34}{'faqbot SSE':>24}{'faqbot socket.io':>24}{'baseline':>24}{'ratio':>16}")
    b_first = statistics.median(res.first["baseline"])
    b_full = statistics.median(res.full["baseline"])
    for name, data, bref in (("first visible answer text", res.first, b_first),
                             ("full answer", res.full, b_full)):  # fmt: skip
        cells = [spread([x * ms for x in data[f]]) for f in ("faqbot SSE", "faqbot socket.io",
                                                             "baseline")]  # fmt: skip
        r1 = ratio(statistics.median(data["faqbot SSE"]), bref)
        r2 = ratio(statistics.median(data["faqbot socket.io"]), bref)
        add(f"{name:<34}{cells[0]:>24}{cells[1]:>24}{cells[2]:>24}"
            f"{fmt_ratio(r1) + ' / ' + fmt_ratio(r2):>16}")  # fmt: skip
    calls = {f: statistics.mean(v) for f, v in res.calls.items()}
    add(
        f"{'LLM calls per answer (mean)':<34}{calls['faqbot SSE']:>24.2f}"
        f"{calls['faqbot socket.io']:>24.2f}{calls['baseline']:>24.2f}"
    )
    add("(ratio: faqbot SSE / baseline, faqbot socket.io / baseline)\n")

    add("2. Own overhead, zero-latency model, POST /api/chat one at a time")
    fo_ = [x * ms for x in res.overhead["faqbot"]]
    bo = [x * ms for x in res.overhead["baseline"]]
    add(f"{'measure':<34}{'faqbot':>24}{'baseline':>24}{'ratio':>16}")
    for q in (50, 95):
        add(f"{'p' + str(q):<34}{pct(fo_, q):>21.1f} ms{pct(bo, q):>21.1f} ms"
            f"{fmt_ratio(ratio(pct(fo_, q), pct(bo, q))):>16}")  # fmt: skip
    add("")

    add(
        f"3. {args.clients} concurrent clients looping on POST /api/chat "
        f"(realistic: one question per client at once, timed to the last answer, "
        f"{args.bursts * args.faqbot_bursts_per_baseline} bursts faqbot / {args.bursts} baseline; "
        f"zero: closed loops, {args.windows} windows of {args.cpu_window:.0f} s, requests still "
        "waiting at the end count with their age so far, '>=')"
    )
    add(f"{'model / measure':<34}{'faqbot':>24}{'baseline':>24}{'ratio':>16}")
    ratios: dict[str, float | None] = {}
    for model in ("realistic", "zero"):
        f_runs, b_runs = res.load[("faqbot", model)], res.load[("baseline", model)]
        ft = [r["throughput"] for r in f_runs]
        bt = [r["throughput"] for r in b_runs]
        ratios[model] = ratio(statistics.median(ft), statistics.median(bt))
        add(
            f"{model + ': answers/s':<34}{spread(ft, '/s', 1):>24}{spread(bt, '/s', 2):>24}"
            f"{fmt_ratio(ratios[model], 1):>16}"
        )
        for key in ("p50", "p95"):
            fv = [r[key] * ms for r in f_runs]
            bv = [r[key] * ms for r in b_runs]
            # ">=": the percentile is the age of a request still waiting when the window closed
            mark = ">=" if key == "p95" and any(r["censored"] for r in b_runs) else ""
            fmark = ">=" if key == "p95" and any(r["censored"] for r in f_runs) else ""
            add(
                f"{model + ': latency ' + key:<34}{fmark + spread(fv):>24}{mark + spread(bv):>24}"
                f"{fmt_ratio(ratio(statistics.median(fv), statistics.median(bv))):>16}"
            )
        fe = sum(r["errors"] for r in f_runs)
        be = sum(r["errors"] for r in b_runs)
        fw = max(r["waiting"] for r in f_runs)
        bw = max(r["waiting"] for r in b_runs)
        add(
            f"{model + ': errors / still waiting':<34}{f'{fe:.0f} / {fw:.0f}':>24}"
            f"{f'{be:.0f} / {bw:.0f}':>24}"
        )
    add("")

    add(
        f"4. GET /api/health while every LLM call stalls (5 questions in flight; "
        f"timeout {HEALTH_TIMEOUT:.0f} s)"
    )
    hv: dict[str, str] = {}
    for side in ("faqbot", "baseline"):
        got = [x * ms for x in res.health[side] if x is not None]
        lost = sum(1 for x in res.health[side] if x is None)
        hv[side] = (spread(got, "ms", 1) if got else "no answer") + (
            f", {lost}/{len(res.health[side])} timed out" if lost else ""
        )
    add(f"{'faqbot':<12}{hv['faqbot']}")
    add(f"{'baseline':<12}{hv['baseline']}\n")

    add("5. Prompt tokens per answer (all LLM calls of one answer; fake's usage estimate)")
    add(f"{'FAQ entries':<34}{'faqbot':>24}{'baseline':>24}{'ratio':>16}")
    for n in args.sizes:
        f, b = res.tokens["faqbot"][n], res.tokens["baseline"][n]
        add(f"{n:<34,}{f:>24,.0f}{b:>24,.0f}{fmt_ratio(ratio(f, b), 3):>16}")
    for side in ("faqbot", "baseline"):
        biggest = res.max_call_tokens[side]
        over = [n for n in args.sizes if biggest[n] > CONTEXT_LIMIT]
        add(f"{side}: passes a 128k context at {passes_context(res.tokens[side])}"
            + (f" (largest single call at {max(args.sizes):,}: {biggest[max(args.sizes)]:,} "
               f"tokens{'; over 128k already at ' + f'{over[0]:,}' if over else ''})"))  # fmt: skip
    print("\n".join(lines), flush=True)

    t100, t10k = res.tokens["faqbot"].get(100), res.tokens["faqbot"].get(10_000)
    fh = [x for x in res.health["faqbot"] if x is not None]
    bh = [x for x in res.health["baseline"] if x is not None]
    return {
        "first_text_ratio": ratio(statistics.median(res.first["faqbot SSE"]), b_first),
        "first_text_ratio_socketio": ratio(
            statistics.median(res.first["faqbot socket.io"]), b_first
        ),
        "first_text_ms": {f: statistics.median(v) * ms for f, v in res.first.items()},
        "full_answer_ms": {f: statistics.median(v) * ms for f, v in res.full.items()},
        "llm_calls_per_answer": calls,
        "throughput_ratio_50": ratios["realistic"],
        "cpu_throughput_ratio_50": ratios["zero"],
        "throughput_50": {
            f"{side}_{model}": statistics.median(r["throughput"] for r in res.load[(side, model)])
            for side in ("faqbot", "baseline")
            for model in ("realistic", "zero")
        },
        "overhead_p50_ms": pct(fo_, 50),
        "overhead_p95_ms": pct(fo_, 95),
        "baseline_overhead_p50_ms": pct(bo, 50),
        "baseline_overhead_p95_ms": pct(bo, 95),
        "health_stalled_ms": (
            max(fh) * ms if fh and len(fh) == len(res.health["faqbot"]) else None
        ),
        "health_stalled_p50_ms": statistics.median(fh) * ms if fh else None,
        "baseline_health_stalled_ms": (
            max(bh) * ms if bh and len(bh) == len(res.health["baseline"]) else None
        ),
        "baseline_health_timeouts": sum(1 for x in res.health["baseline"] if x is None),
        "tokens_growth_100_to_10k": ratio(t10k, t100),
        "prompt_tokens": {
            side: {str(n): v for n, v in d.items()} for side, d in res.tokens.items()
        },
        "baseline_passes_128k": passes_context(res.tokens["baseline"]),
        "quick": bool(args.quick),
    }


# --- main ---------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    res = Results()
    fake = Fake()
    work = Path(tempfile.mkdtemp(prefix="vs-seed-"))
    try:
        log(f"fake OpenAI at {fake.base_url}; starting faqbot (chainlit) and the baseline...")
        with chainlit_server(faqbot_env(fake, work / "data"), timeout=120) as bot:
            log(f"faqbot at {bot}: {wait_embeddings(bot, 180)}")
            with baseline(fake, ROOT / "faqs") as base:
                log(f"baseline at {base}")
                log("1. first text / full answer (realistic)")
                await measure_latency(fake, base, bot, args.repeats, res)
                log("2. own overhead (zero latency)")
                await measure_overhead(fake, base, bot, args.overhead_n, res)
            # Realistic model: a burst of one question per client, timed until the last answer
            # (the baseline answers nobody within a short window: its blocked loop holds every
            # response until many calls later, so a windowed count reads 0).
            fake.profile("realistic")
            for w in range(args.bursts):
                log(f"3. {args.clients} clients, realistic, burst {w + 1}/{args.bursts}")
                for _ in range(args.faqbot_bursts_per_baseline):
                    r = await load_burst(bot, args.clients, 300)
                    res.load.setdefault(("faqbot", "realistic"), []).append(r)
                with baseline(fake, ROOT / "faqs") as base:
                    r = await load_burst(base, args.clients, 300)
                res.load.setdefault(("baseline", "realistic"), []).append(r)
            # Zero-latency (CPU-bound) model: closed loops for a fixed window.
            fake.profile("zero")
            for w in range(args.windows):
                log(f"3. {args.clients} clients, zero latency, window {w + 1}/{args.windows}")
                r = await load_window(bot, args.clients, args.cpu_window)
                res.load.setdefault(("faqbot", "zero"), []).append(r)
                await asyncio.sleep(1)  # let stragglers end
                # a fresh baseline per window: its blocked loop may still be draining a queue
                with baseline(fake, ROOT / "faqs") as base:
                    r = await load_window(base, args.clients, args.cpu_window)
                res.load.setdefault(("baseline", "zero"), []).append(r)
            log("4. health while the model stalls")
            fake.profile("realistic")
            res.health["faqbot"] = await measure_health_stalled(fake, bot, args.health_samples)
        with baseline(fake, ROOT / "faqs") as base:
            res.health["baseline"] = await measure_health_stalled(fake, base, 3)
        log("5. prompt tokens vs FAQ size")
        await measure_tokens(fake, args.sizes, work, res)
        return report(res, args, started)
    finally:
        fake.close()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, shorter windows")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args(argv)
    args.repeats = 6 if args.quick else 15
    args.overhead_n = 60 if args.quick else 300
    args.windows = 2 if args.quick else 3
    args.bursts = 1 if args.quick else 2
    args.faqbot_bursts_per_baseline = 3
    args.cpu_window = 6.0 if args.quick else 15.0
    args.health_samples = 10 if args.quick else 30
    args.sizes = [100, 1_000, 10_000]
    summary = asyncio.run(run(args))
    if args.json:
        print(json.dumps(summary, default=float), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
