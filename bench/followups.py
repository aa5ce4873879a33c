"""Follow-up questions on the shipped FAQ: multi-turn conversations through POST /api/chat.

    python bench/followups.py [--cache DIR] [--show] [--json OUT]

Each conversation of bench/faq_eval_followups.yaml is asked turn by turn through the HTTP API
(in-process ASGI, offline, default settings: the bundled embedder), sending back the
conversation id and token as a client does. A `choose:` turn is the user picking an offered
"Did you mean" entry; it is sent as that entry's question, the text the chat UI shows for the
pick. Printed per turn kind and split (tune / holdout, the holdout never used for tuning):
answered right, answered wrong, right entry answered or offered ("Did you mean"), out-of-scope
never answered; plus the /api/chat latency of the follow-up turns.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
import yaml  # noqa: E402
from retrieval import percentiles_ms  # noqa: E402

from faqbot.answering.bot import FaqBot  # noqa: E402
from faqbot.answering.factory import build_semantic  # noqa: E402
from faqbot.config import load_settings  # noqa: E402
from faqbot.domain import KnowledgeBase  # noqa: E402
from faqbot.knowledge import load_knowledge_base  # noqa: E402
from faqbot.logs import configure_logging  # noqa: E402
from faqbot.state.conversations import ConversationStore  # noqa: E402
from faqbot.state.ratelimit import RateLimiter  # noqa: E402
from faqbot.web.app import create_api  # noqa: E402

SET = ROOT / "bench/faq_eval_followups.yaml"
KINDS = ("first", "continuation", "same", "switch", "language", "after_choice", "out_of_scope")
FOLLOW_UPS = ("continuation", "same", "switch", "language", "after_choice")


@dataclass
class Turn:
    """One scored turn: what was asked, what is right, what came back."""

    conversation: str
    split: str
    kind: str
    question: str
    gold: set[str]
    outcome: str = ""
    top: str | None = None
    offered: tuple[str, ...] = ()
    confidence: float = 0.0

    @property
    def answered_right(self) -> bool:
        return self.outcome == "answered" and self.top in self.gold

    @property
    def answered_wrong(self) -> bool:
        return self.outcome == "answered" and self.top not in self.gold

    @property
    def right_answered_or_offered(self) -> bool:
        return self.answered_right or (
            self.outcome == "suggested" and bool(self.gold & set(self.offered))
        )


@dataclass
class Run:
    turns: list[Turn] = field(default_factory=list)
    follow_up_ms: list[float] = field(default_factory=list)


def gold_ids(kb: KnowledgeBase, expected: Any) -> set[str]:
    by_question = {e.question: e.id for e in kb.entries}
    if not expected:
        return set()
    wanted = expected if isinstance(expected, list) else [expected]
    return {by_question[q] for q in wanted}


async def converse(
    client: httpx.AsyncClient, kb: KnowledgeBase, conv: dict[str, Any], run: Run
) -> None:
    ids: dict[str, str] = {}
    by_question = {e.question: e for e in kb.entries}
    for n, spec in enumerate(conv["turns"]):
        question = spec.get("ask") or by_question[spec["choose"]].question
        start = time.perf_counter()
        response = await client.post("/chat", json={"question": question, **ids})
        elapsed = (time.perf_counter() - start) * 1000
        body = response.json()
        assert response.status_code == 200, body
        ids = {"conversation_id": body["conversation_id"]}
        ids["conversation_token"] = body["conversation_token"]
        if n:
            run.follow_up_ms.append(elapsed)
        kind = spec.get("kind")
        if kind is None or kind == "vague":  # a pick, or an opening that is not scored
            continue
        turn = Turn(conv["id"], conv["split"], kind, question, gold_ids(kb, spec.get("expected")))
        turn.outcome = body["outcome"]
        turn.confidence = body["confidence"]
        turn.top = body["sources"][0]["id"] if body["sources"] else None
        turn.offered = tuple(s["id"] for s in body["suggestions"])
        run.turns.append(turn)


def build(cache: Path) -> tuple[FaqBot, KnowledgeBase]:
    settings = load_settings(
        openai_api_key=None, faq_dir=ROOT / "faqs", data_dir=cache, rate_limit_requests=10**6
    )
    kb = load_knowledge_base(ROOT / "faqs")
    bot = FaqBot(kb, settings, semantic=build_semantic(settings))
    bot.wait_for_vectors(900)
    return bot, kb


async def run_all(bot: FaqBot, kb: KnowledgeBase, conversations: list[dict[str, Any]]) -> Run:
    settings = load_settings(openai_api_key=None, rate_limit_requests=10**6)
    api = create_api(lambda: bot, RateLimiter(10**6, 60, None), settings, ConversationStore())
    run = Run()
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        # warm-up, not counted: the first encodings wait for start-up work holding the model
        await converse(client, kb, conversations[0], Run())
        for conv in conversations:
            await converse(client, kb, conv, run)
    return run


def rates(turns: list[Turn]) -> dict[str, float]:
    n = len(turns)
    covered = [t for t in turns if t.gold]
    oos = [t for t in turns if not t.gold]
    out: dict[str, float] = {"n": n}
    if covered:
        out["answered_right"] = sum(t.answered_right for t in covered) / len(covered)
        out["answered_wrong"] = sum(t.answered_wrong for t in covered) / len(covered)
        out["right_answered_or_offered"] = sum(t.right_answered_or_offered for t in covered) / len(
            covered
        )
    if oos:
        out["never_answered"] = sum(t.outcome != "answered" for t in oos) / len(oos)
    return out


def table(turns: list[Turn]) -> dict[str, dict[str, dict[str, float]]]:
    groups: dict[str, dict[str, list[Turn]]] = defaultdict(lambda: defaultdict(list))
    for t in turns:
        groups[t.kind][t.split].append(t)
        groups[t.kind]["all"].append(t)
        if t.kind in FOLLOW_UPS:
            groups["covered follow-ups"][t.split].append(t)
            groups["covered follow-ups"]["all"].append(t)
    return {kind: {s: rates(ts) for s, ts in splits.items()} for kind, splits in groups.items()}


def _cell(r: dict[str, float], key: str, width: int) -> str:
    return f"{r[key]:>{width}.3f}" if key in r else f"{'-':>{width}}"


def print_table(result: dict[str, dict[str, dict[str, float]]]) -> None:
    print(
        f"{'kind':<20} {'split':<8} {'n':>4} {'right':>7} {'wrong':>7} {'ans|off':>8} "
        f"{'oos never':>9}"
    )
    order = [*KINDS, "covered follow-ups"]
    for kind in sorted(result, key=lambda k: order.index(k) if k in order else 99):
        for split in ("tune", "holdout", "all"):
            r = result[kind].get(split)
            if not r:
                continue

            print(
                f"{kind:<20} {split:<8} {int(r['n']):>4} {_cell(r, 'answered_right', 7)} "
                f"{_cell(r, 'answered_wrong', 7)} {_cell(r, 'right_answered_or_offered', 8)} "
                f"{_cell(r, 'never_answered', 9)}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/faqbot-bench-vectors"))
    parser.add_argument("--split", choices=("tune", "holdout", "all"), default="all")
    parser.add_argument("--show", action="store_true", help="print every turn not answered right")
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    configure_logging("WARNING")  # one `turn` line per question would bury the table
    data = yaml.safe_load(SET.read_text(encoding="utf-8"))
    conversations = [c for c in data["conversations"] if args.split in ("all", c["split"])]
    bot, kb = build(args.cache)
    run = asyncio.run(run_all(bot, kb, conversations))
    result = table(run.turns)
    print_table(result)
    lat = percentiles_ms(run.follow_up_ms)
    print(
        f"\n/api/chat follow-up turns: n={len(run.follow_up_ms)} p50 {lat['p50']:.1f} ms, "
        f"p95 {lat['p95']:.1f} ms, p99 {lat['p99']:.1f} ms"
    )
    if args.show:
        for t in run.turns:
            if not (t.answered_right or (not t.gold and t.outcome != "answered")):
                print(
                    f"{t.conversation} {t.split:<7} {t.kind:<13} {t.outcome:<9} "
                    f"{t.confidence:.2f} top={t.top} offered={list(t.offered)} "
                    f"gold={sorted(t.gold)} | {t.question}"
                )
    if args.json:
        args.json.write_text(json.dumps({"figures": result, "latency_ms": lat}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
