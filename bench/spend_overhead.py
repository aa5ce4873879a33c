"""What the token budgets cost per question: the checks and charges one LLM turn makes (check
before the router call; charge its prompt when it starts, settle to its usage; check before the
answer call; charge its prompt, its completion once while it streams, settle to its usage),
timed against process memory and against Redis (REDIS_URL, default the local 127.0.0.1:6379).

    python bench/spend_overhead.py [--turns 2000] [--keys 50000] [--redis-url redis://...]

Prints the mean and p95 per turn for each backend, and for memory again once `--keys` clients
and conversations have been counted (a busy day without Redis: the cost must not grow with it).
Keys go under a throwaway namespace, deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from faqbot.answering.events import Usage
from faqbot.spend import Spender, TokenBudgets

ROUTER, ANSWER = Usage(500, 10), Usage(700, 160)
ROUTER_GUESS, ANSWER_GUESS = 650, 900  # the prompt estimates (faqbot.llm.tokens), on the high side


async def turn(budgets: TokenBudgets, who: Spender) -> None:
    """The spend calls of one LLM turn, as FaqBot and the model make them."""
    tab = budgets.tab(who)
    await budgets.check(who)
    await tab.charge(ROUTER_GUESS)  # the router call starts
    await tab.charge(ROUTER.total_tokens - ROUTER_GUESS)  # its usage arrived
    await budgets.ensure(who)
    await tab.charge(ANSWER_GUESS)  # the answer call starts
    await tab.charge(128)  # streaming: every 128 tokens
    await tab.charge(ANSWER.total_tokens - ANSWER_GUESS - 128)  # its usage arrived


async def measure(
    redis_url: str | None, turns: int, namespace: str, preload: int = 0
) -> list[float]:
    budgets = TokenBudgets(
        conversation_tokens=10**12,
        client_daily_tokens=10**12,
        deployment_daily_tokens=10**12,
        redis_url=redis_url,
        namespace=namespace,
    )
    for i in range(preload):  # earlier visitors of the day
        await budgets.tab(Spender(f"ip:old-{i}", f"old-{i}")).charge(ROUTER.total_tokens)
    times = []
    for i in range(turns):
        who = Spender(f"ip:10.0.{i % 50}.1", f"conversation-{i % 200}")
        t0 = time.perf_counter()
        await turn(budgets, who)
        await asyncio.sleep(0)  # let background work run, as a server's loop would
        times.append((time.perf_counter() - t0) * 1000)
    if budgets.counters.degraded:
        print(f"  (store degraded: {budgets.counters.degraded})")
    return times


def report(name: str, times: list[float]) -> None:
    ordered = sorted(times)
    p95 = ordered[round(0.95 * (len(ordered) - 1))]
    print(f"{name:8s}: {statistics.mean(times):7.3f} ms/turn mean, {p95:7.3f} ms p95")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--keys", type=int, default=50_000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    namespace = f"bench-spend-{uuid.uuid4().hex}"
    print(f"{args.turns} LLM turns, 2 checks + 5 charges each (3 budgets on)")
    report("memory", await measure(None, args.turns, namespace))
    name = f"memory, {args.keys:,} clients and conversations counted"
    report(name, await measure(None, args.turns, namespace, args.keys))
    try:
        report("redis", await measure(args.redis_url, args.turns, namespace))
    finally:
        import redis

        try:
            client = redis.Redis.from_url(args.redis_url, socket_timeout=1)
            keys = list(client.scan_iter(match=f"*{namespace}*"))
            if keys:
                client.delete(*keys)
        except redis.RedisError:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
