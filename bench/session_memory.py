"""Where does the server's memory go when short chat sessions come one after another?

    python bench/session_memory.py                       # 3 rounds of 300 sessions
    python bench/session_memory.py --rounds 2 --sessions 100 --session-timeout 30
    python bench/session_memory.py --tracemalloc         # + the allocation sites that grew
    python bench/session_memory.py --cycles 2 --app-module old_app   # another chainlit_app.py

Runs the real app under tests/memory_probe.py (chainlit_app.py plus a debug-only memory route) on
loopback, offline (no LLM: the memory of a session, not of a provider). Each session connects
over socket.io (the web UI's protocol), asks one question, and disconnects, from its own
loopback address. After each round it prints the server's RSS, the sessions Chainlit still keeps
(by design it keeps a disconnected session `session_timeout` seconds for a reconnection) and
live objects; then it waits until the timeout has passed and prints the same again, before and
after giving freed heap back to the OS (malloc_trim), which tells a leak (memory still in use)
from retention (released at the timeout) and from allocator slack (released by the trim).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e_support import ChatClient, chainlit_server, loopback_address

QUESTIONS = ("Do you offer discounts?", "How do I reset my password?", "Where is my report?")


def line(label: str, probe: dict[str, Any]) -> str:
    objects = probe["objects"]
    return (
        f"{label:<28} RSS {probe['rss_kb'] / 1024:7.1f} MB  sessions kept "
        f"{probe['ws_sessions_id']:>5}  user_sessions {probe['user_sessions']:>5}  "
        f"chat_contexts {probe['chat_contexts']:>5}  "
        f"objects {objects['total']:>8}  WebsocketSession {objects['WebsocketSession']:>5}  "
        f"Message {objects['Message']:>5}  Task {objects['Task']:>4}"
    )


async def probe(url: str, trim: bool = False) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        resp = await http.get("/_probe/memory", params={"trim": "1"} if trim else {})
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result


async def one_session(url: str, i: int) -> None:
    async with ChatClient(url, local_addr=loopback_address(i % 60000)) as chat:
        turn = await chat.ask(QUESTIONS[i % len(QUESTIONS)], wait_s=30)
        if not turn.reply:
            raise RuntimeError("no reply")


async def run(args: argparse.Namespace, url: str) -> None:
    first = await probe(url)
    print(line("start", first), flush=True)
    counter = 0
    for cycle in range(1, args.cycles + 1):
        print(f"cycle {cycle}", flush=True)
        counter = await one_cycle(args, url, first["session_timeout"], counter)


async def one_cycle(args: argparse.Namespace, url: str, session_timeout: int, counter: int) -> int:
    """Rounds of sequential sessions, then the wait past the timeout; returns the count."""
    for r in range(1, args.rounds + 1):
        started = time.monotonic()
        for _ in range(args.sessions):
            await one_session(url, counter)
            counter += 1
        result = await probe(url)
        took = time.monotonic() - started
        print(line(f"after round {r} ({counter} sessions)", result) + f"  {took:.0f} s")
        for site in result["tracemalloc_growth"][: args.sites]:
            print(f"    {site}")
    print(f"waiting {session_timeout + 5} s (session_timeout {session_timeout} s) ...", flush=True)
    await asyncio.sleep(session_timeout + 5)
    print(line("after the timeout", await probe(url)))
    print(line("after malloc_trim", await probe(url, trim=True)))
    after = await probe(url)
    for site in after["tracemalloc_growth"][: args.sites]:
        print(f"    {site}")
    return counter


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=1, help="rounds + wait, repeated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=300, help="sessions per round")
    parser.add_argument("--session-timeout", type=int, help="override session_timeout (s)")
    parser.add_argument("--tracemalloc", action="store_true", help="trace allocations")
    parser.add_argument("--sites", type=int, default=8, help="allocation sites to print")
    parser.add_argument("--app-module", help="import this module instead of chainlit_app")
    parser.add_argument("--env", action="append", default=[], help="NAME=value for the server")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    if args.session_timeout is not None:
        env["SOAK_SESSION_TIMEOUT"] = str(args.session_timeout)
    if args.app_module:
        env["PROBE_APP_MODULE"] = args.app_module
    if args.tracemalloc:
        env["PYTHONTRACEMALLOC"] = "1"
    env.setdefault("RATE_LIMIT_REQUESTS", "60")
    with chainlit_server(env, app="tests/memory_probe.py", timeout=120) as url:
        print(f"server {url}  {args.rounds} rounds x {args.sessions} sequential sessions")
        asyncio.run(run(args, url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
