"""Soak: N minutes of mixed chat-UI and API traffic, with ~10% LLM faults, against one process.

    python bench/soak.py                          # 10 minutes, 4 UI + 4 API users, 10% faults
    python bench/soak.py --minutes 2 --ui-users 6 --api-users 2 --fault-rate 0.2

Bounded and loopback only. Starts one `chainlit run chainlit_app.py --headless` (via
tests/e2e_support.py) on the LLM path against the fake OpenAI server of tests/fake_openai.py
(run in this process), whose replies fail at `--fault-rate`: a 500, a 429 with Retry-After 1 s,
a hang (`--hang-seconds`, then a 504), a torn stream, a malformed tool call; the others are the
fake's normal answers. The answer cache is off so every message reaches the model path.

Traffic: UI users speak the web UI's socket.io protocol (connect, 2-4 questions, disconnect,
again); API users alternate POST /api/chat and /api/chat/stream, following up with their
conversation token now and then. Every simulated user has its own loopback address
(127.0.1.x, ...), so the default rate limit stays on, and paces itself like a person typing fast.

Every minute and at the end it prints messages served, what users saw (answered / fallback /
errors by class: a fallback answer is not an error), the server process's RSS and open file
descriptors (from /proc/<pid>/status and /proc/<pid>/fd), RSS per 1,000 messages, and the
least-squares slope of RSS over messages (MB per 1,000 messages): the trend, also over the
second half alone (after warm-up). Exit status 1 when any user saw an error.

Chainlit keeps every ended UI session `session_timeout` (600 s) for a reconnection, so within a
10-minute run the RSS of the UI sessions grows by design (about 45 KB each: see bench/RESULTS.md,
"Soak and session memory"); `--probe --env SOAK_SESSION_TIMEOUT=60` runs the same app with a
60 s timeout and prints how many sessions it keeps, which tells that retention from a leak.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e_support import ChatClient, chainlit_server, loopback_address, server_pid
from tests.fake_openai import (
    FakeOpenAI,
    Reply,
    auto_responder,
    bad_args,
    hang,
    rate_limited,
    server_error,
    torn,
)

QUESTIONS = (
    "Do you offer discounts for annual subscriptions?",
    "How do I reset my password?",
    "What payment methods do you accept?",
    "Can I cancel my subscription at any time?",
    "How long does it take to get lab results?",
    "Is my data secure?",
    "What is your refund policy?",
    "Can I share a report with my doctor?",
    "What's the weather like on Mars?",  # not covered: a refusal is a normal outcome
)
FOLLOW_UPS = ("and for annual plans?", "what about teams?", "how long does that take?")
UI_ERROR_TEXTS = {
    "rate_limited": "You're sending messages too quickly",
    "internal": "Sorry, something went wrong",
    "no_answer": "Sorry, no answer was produced",
    "llm_error": "The AI service is",
    "unavailable": "The FAQ is unavailable",
}


class FaultyResponder:
    """The fake's plausible model, failing `rate` of the calls with a rotating kind of fault."""

    def __init__(self, rate: float, hang_seconds: float, seed: int) -> None:
        self.rate = rate
        self.hang_seconds = hang_seconds
        self.random = random.Random(seed)
        self.injected: Counter[str] = Counter()
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.calls += 1
            roll = self.random.random()
            kind = self.random.choice(("500", "429", "hang", "torn", "bad_tool_args"))
            if roll >= self.rate:
                return auto_responder(body)
            self.injected[kind] += 1
        if kind == "500":
            return server_error()
        if kind == "429":
            return rate_limited(retry_after=1)
        if kind == "hang":
            return hang(self.hang_seconds)
        if kind == "torn":
            return torn("This answer will be cut off before it ends", after=2)
        return bad_args()


@dataclass
class Tally:
    """What users saw, counted as it happens; samples of the server's RSS and open fds."""

    served: Counter[str] = field(default_factory=Counter)  # answered / fallback / refused ...
    errors: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    samples: list[tuple[float, int, float, int]] = field(default_factory=list)  # t, msgs, MB, fds
    ui_sessions: int = 0  # chat-UI sessions opened (each is kept session_timeout after it ends)
    breaker: Counter[str] = field(default_factory=Counter)  # circuit state at each 5 s reading

    @property
    def messages(self) -> int:
        return sum(self.served.values()) + sum(self.errors.values())

    def ok(self, kind: str, elapsed: float) -> None:
        self.served[kind] += 1
        self.latencies.append(elapsed)

    def error(self, kind: str, example: str) -> None:
        self.errors[kind] += 1
        self.examples.setdefault(kind, example[:300])


def proc_reading(pid: int) -> tuple[float, int]:
    """(RSS in MB, open file descriptors) of process `pid`."""
    rss_kb = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
    return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def slope_per_1000(points: list[tuple[float, int, float, int]]) -> float | None:
    """Least-squares slope of RSS (MB) over messages, per 1,000 messages."""
    xs = [p[1] for p in points]
    ys = [p[2] for p in points]
    if len(points) < 3 or len(set(xs)) < 2:
        return None
    return statistics.linear_regression(xs, ys).slope * 1000


# --- simulated users ---------------------------------------------------------------------


def classify_ui(reply: str, errors: list[str]) -> tuple[bool, str]:
    """(is an error, kind) of one chat-UI turn as the visitor saw it.

    A finished answer ends with its meta line ("_category · confidence 80% · 0.12 s ·
    fallback: quoted from the FAQ_"); a fallback's notice ("The AI service is unavailable right
    now, so this answer is quoted ...") is part of a served answer, not an error.
    """
    if errors:
        return True, "chainlit_error"
    if not reply:
        return True, "no_reply"
    meta = reply.rstrip().rsplit("\n", 1)[-1]
    if meta.startswith("_") and "confidence" in meta:
        if "fallback:" in meta:
            return False, "fallback"
        if "not in the FAQ" in meta or "no FAQ entry" in meta:
            return False, "refused"
        return False, "suggested" if "closest FAQ questions" in meta else "answered"
    for kind, marker in UI_ERROR_TEXTS.items():
        if marker in reply:
            return True, kind
    return True, "unrecognised_reply"


async def ui_user(url: str, n: int, stop: float, tally: Tally, rng: random.Random) -> None:
    address = loopback_address(n)
    while time.monotonic() < stop:
        try:
            async with ChatClient(url, local_addr=address, connect_timeout=30) as chat:
                tally.ui_sessions += 1
                for _ in range(rng.randint(2, 4)):
                    if time.monotonic() >= stop:
                        break
                    question = rng.choice(QUESTIONS)
                    try:
                        turn = await chat.ask(question, wait_s=60)
                    except AssertionError as exc:  # no task_end in time
                        tally.error("ui_timeout", str(exc))
                        continue
                    is_error, kind = classify_ui(turn.reply, turn.errors)
                    if is_error:
                        tally.error(f"ui_{kind}", turn.reply or str(turn.errors))
                    else:
                        tally.ok(f"ui_{kind}", turn.elapsed_s)
                    await asyncio.sleep(rng.uniform(0.5, 1.5))
        except Exception as exc:  # connect failed or the socket dropped
            tally.error("ui_connection", f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(1.0)


def _api_body(rng: random.Random, conversation: dict[str, str] | None) -> dict[str, Any]:
    if conversation and rng.random() < 0.3:
        return {"question": rng.choice(FOLLOW_UPS), **conversation}
    return {"question": rng.choice(QUESTIONS)}


def _api_outcome(body: dict[str, Any]) -> str:
    if body.get("fallback"):
        return f"api_fallback:{body.get('fallback_reason') or '?'}"
    return f"api_{body.get('outcome', 'answered')}"


async def api_chat(http: httpx.AsyncClient, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """("ok"/error kind, response body) of one POST /api/chat."""
    resp = await http.post("/api/chat", json=payload)
    if resp.status_code != 200:
        return f"api_http_{resp.status_code}", {"detail": resp.text[:300]}
    return "ok", resp.json()


async def api_stream(
    http: httpx.AsyncClient, payload: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """("ok"/error kind, the `done` event's data) of one POST /api/chat/stream."""
    event = ""
    async with http.stream("POST", "/api/chat/stream", json=payload) as resp:
        if resp.status_code != 200:
            await resp.aread()
            return f"sse_http_{resp.status_code}", {"detail": resp.text[:300]}
        async for line in resp.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event in ("done", "error"):
                data: dict[str, Any] = json.loads(line.removeprefix("data: "))
                return ("ok" if event == "done" else "sse_error_event"), data
    return "sse_incomplete", {"detail": "stream ended without a done event"}


async def api_user(url: str, n: int, stop: float, tally: Tally, rng: random.Random) -> None:
    transport = httpx.AsyncHTTPTransport(local_address=loopback_address(n))
    conversation: dict[str, str] | None = None
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=60) as http:
        while time.monotonic() < stop:
            payload = _api_body(rng, conversation)
            call = api_stream if rng.random() < 0.5 else api_chat
            started = time.monotonic()
            try:
                status, body = await call(http, payload)
            except httpx.HTTPError as exc:
                tally.error(f"api_{type(exc).__name__}", str(exc))
                await asyncio.sleep(1.0)
                continue
            if status != "ok":
                tally.error(status, json.dumps(body)[:300])
            else:
                tally.ok(_api_outcome(body), time.monotonic() - started)
                conversation = {
                    "conversation_id": body["conversation_id"],
                    "conversation_token": body["conversation_token"],
                }
            await asyncio.sleep(rng.uniform(0.5, 1.5))


# --- reporting -----------------------------------------------------------------------------


def report_line(tally: Tally, started: float, pid: int) -> str:
    rss, fds = proc_reading(pid)
    t = time.monotonic() - started
    tally.samples.append((t, tally.messages, rss, fds))
    first = tally.samples[0]
    grown = rss - first[2]
    per_1000 = grown / (tally.messages / 1000) if tally.messages else 0.0
    slope = slope_per_1000(tally.samples)
    trend = "-" if slope is None else f"{slope:+.2f}"
    errors = sum(tally.errors.values())
    fallback = sum(v for k, v in tally.served.items() if "fallback" in k)
    return (
        f"{t / 60:5.1f} min  messages {tally.messages:>6}  errors {errors:>3}  "
        f"fallback {fallback:>4}  RSS {rss:6.1f} MB ({grown:+.1f}, {per_1000:+.2f} MB/1k msgs)  "
        f"fds {fds:>4} ({fds - first[3]:+d})  RSS trend {trend} MB/1k msgs  "
        f"UI sessions {tally.ui_sessions}"
    )


async def breaker_state(url: str) -> str:
    """The LLM circuit breaker's state from /api/health (GETs are not rate-limited)."""
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            health = (await http.get("/api/health")).json()
        return str(health.get("circuit_breaker", {}).get("state", "?"))
    except (httpx.HTTPError, ValueError):
        return "health unreachable"


async def probe_line(url: str) -> str:
    """With tests/memory_probe.py as the app: the sessions the server keeps right now."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        state = (await http.get("/_probe/memory")).json()
    return (
        f"{'':>10}server keeps {state['ws_sessions_id']} sessions "
        f"(session_timeout {state['session_timeout']} s), chat_contexts "
        f"{state['chat_contexts']}, live objects {state['objects']['total']}"
    )


async def sampler(
    tally: Tally, started: float, stop: float, pid: int, args: argparse.Namespace, url: str
) -> None:
    """A reading every 5 s (for the regression); a printed line every `--report-every` s."""
    next_print = started + args.report_every
    while time.monotonic() < stop:
        await asyncio.sleep(5.0)
        tally.breaker[await breaker_state(url)] += 1
        line = report_line(tally, started, pid)
        if time.monotonic() >= next_print:
            print(line, flush=True)
            if args.probe:
                print(await probe_line(url), flush=True)
            next_print += args.report_every


def per_thousand_table(tally: Tally) -> list[str]:
    """RSS and fds at each 1,000 messages (the first sample at or past each thousand)."""
    rows, mark = [], 1000
    for t, msgs, rss, fds in tally.samples:
        while msgs >= mark:
            rows.append(f"  {mark:>6} msgs  {t / 60:5.1f} min  RSS {rss:6.1f} MB  fds {fds}")
            mark += 1000
    return rows


def summary(tally: Tally, faults: FaultyResponder, llm_calls: int) -> list[str]:
    served = sum(tally.served.values())
    errors = sum(tally.errors.values())
    half = tally.samples[len(tally.samples) // 2 :]
    whole, second = slope_per_1000(tally.samples), slope_per_1000(half)
    ordered = sorted(tally.latencies) or [0.0]
    out = [
        f"messages {tally.messages}: served {served}, user-visible errors {errors} "
        f"({100 * errors / max(1, tally.messages):.2f}%)",
        "  served by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.served.items())),
        "  errors by kind: "
        + (", ".join(f"{k} {v}" for k, v in sorted(tally.errors.items())) or "none"),
        f"LLM calls {llm_calls}, faults injected {sum(faults.injected.values())} "
        f"({100 * sum(faults.injected.values()) / max(1, llm_calls):.1f}%): "
        + ", ".join(f"{k} {v}" for k, v in sorted(faults.injected.items())),
        "circuit breaker at the 5 s readings: "
        + ", ".join(f"{k} {v}" for k, v in sorted(tally.breaker.items())),
        f"answer latency p50 {ordered[len(ordered) // 2]:.2f} s, "
        f"p95 {ordered[int(0.95 * (len(ordered) - 1))]:.2f} s, max {ordered[-1]:.2f} s",
        "RSS trend (least squares over messages): "
        + ("-" if whole is None else f"{whole:+.2f} MB/1k msgs whole run")
        + ("" if second is None else f", {second:+.2f} MB/1k msgs second half"),
        "RSS and open fds per 1,000 messages:",
        *per_thousand_table(tally),
    ]
    for kind, example in tally.examples.items():
        out.append(f"  e.g. {kind}: {example[:200]!r}")
    return out


async def drive(args: argparse.Namespace, url: str, pid: int) -> Tally:
    tally = Tally()
    started = time.monotonic()
    stop = started + args.minutes * 60
    print(report_line(tally, started, pid), flush=True)
    rng = random.Random(args.seed)
    users = [
        *(ui_user(url, i, stop, tally, random.Random(rng.random())) for i in range(args.ui_users)),
        *(
            api_user(url, args.ui_users + i, stop, tally, random.Random(rng.random()))
            for i in range(args.api_users)
        ),
    ]
    await asyncio.gather(sampler(tally, started, stop, pid, args, url), *users)
    await asyncio.sleep(1.0)  # let the last disconnects settle before the closing reading
    print(report_line(tally, started, pid), flush=True)
    if args.settle:
        print(f"traffic stopped; waiting {args.settle:g} s", flush=True)
        await asyncio.sleep(args.settle)
        rss, fds = proc_reading(pid)
        print(f"{'':>10}after {args.settle:g} s idle: RSS {rss:6.1f} MB  fds {fds}", flush=True)
    if args.probe:
        print(await probe_line(url), flush=True)
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--ui-users", type=int, default=4)
    parser.add_argument("--api-users", type=int, default=4)
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--hang-seconds", type=float, default=8.0)
    parser.add_argument("--report-every", type=float, default=60.0, help="seconds")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--app", default="chainlit_app.py")
    parser.add_argument(
        "--probe",
        action="store_true",
        help="run tests/memory_probe.py (the app plus a debug route) and print the sessions it "
        "keeps; with --env SOAK_SESSION_TIMEOUT=60 they are kept 60 s instead of 600 s",
    )
    parser.add_argument("--settle", type=float, default=0.0, help="idle seconds, then a reading")
    parser.add_argument("--env", action="append", default=[], help="NAME=value for the server")
    args = parser.parse_args()
    if not 0 < args.minutes <= 120:
        parser.error("--minutes must be in (0, 120]")
    if args.probe:
        args.app = "tests/memory_probe.py"
    faults = FaultyResponder(args.fault_rate, args.hang_seconds, args.seed)
    with FakeOpenAI(responder=faults, first_token_delay=0.1, tokens_per_second=200) as fake:
        env = {
            "OPENAI_API_KEY": "sk-soak-not-a-real-key",
            "OPENAI_BASE_URL": fake.base_url,
            "ANSWER_CACHE_SIZE": "0",  # every message takes the model path
            # each simulated user asks for the whole run: no token budgets (they would turn the
            # model path offline after a few hundred questions per user)
            "SPEND_CONVERSATION_TOKENS": "0",
            "SPEND_CLIENT_DAILY_TOKENS": "0",
            "EMBEDDINGS": "off",
            "LOG_LEVEL": "WARNING",
            **dict(item.split("=", 1) for item in args.env),
        }
        with chainlit_server(env, app=args.app, timeout=120) as url:
            pid = server_pid(url)
            print(
                f"soak {args.minutes:g} min against {url} (pid {pid}, {args.app}): "
                f"{args.ui_users} UI + {args.api_users} API users, one loopback address each; "
                f"LLM faults {args.fault_rate:.0%} (500, 429, hang {args.hang_seconds:g} s, "
                f"torn stream, bad tool args); server env {args.env or '-'}",
                flush=True,
            )
            tally = asyncio.run(drive(args, url, pid))
            llm_calls = len(fake.requests)
    print("\n".join(summary(tally, faults, llm_calls)))
    return 1 if tally.errors else 0


if __name__ == "__main__":
    sys.exit(main())
