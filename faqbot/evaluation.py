"""`python -m faqbot eval FILE.yaml`: routing, top-1 entry and refusal quality on a labelled set.

File format:
    questions:
      - question: "is there a cheaper price if I pay yearly?"
        kind: paraphrase            # exact | paraphrase | out_of_scope
        category: sales             # null for out_of_scope
        expected: "Do you offer discounts for annual subscriptions?"   # gold FAQ question
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from faqbot.bot import collect
from faqbot.config import load_settings
from faqbot.errors import KnowledgeError
from faqbot.factory import build_bot


@dataclass
class EvalReport:
    total: int = 0
    in_scope: int = 0
    routed_right: int = 0
    top1_right: int = 0
    refused_oos: int = 0
    refused_in_scope: int = 0
    out_of_scope: int = 0
    mode: str = "offline"
    seconds: float = 0.0
    by_kind: dict[str, list[int]] = field(default_factory=dict)
    misses: list[str] = field(default_factory=list)

    @property
    def routing_accuracy(self) -> float:
        return self.routed_right / self.in_scope if self.in_scope else 0.0

    @property
    def top1_accuracy(self) -> float:
        return self.top1_right / self.in_scope if self.in_scope else 0.0

    @property
    def refusal_precision(self) -> float:
        refused = self.refused_oos + self.refused_in_scope
        return self.refused_oos / refused if refused else 0.0

    @property
    def refusal_recall(self) -> float:
        return self.refused_oos / self.out_of_scope if self.out_of_scope else 0.0


def load_questions(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise KnowledgeError(f"{path}: expected a mapping with a 'questions' list")
    items: list[dict[str, Any]] = data["questions"]
    return items


async def run_eval(path: Path, *, offline: bool = False) -> EvalReport:
    """Ask every labelled question (fresh history each) and score the answers."""
    settings = load_settings(openai_api_key=None) if offline else load_settings()
    bot = build_bot(settings)
    report = EvalReport(mode=bot.mode)
    started = time.perf_counter()
    for item in load_questions(path):
        result = await collect(bot.answer(str(item["question"])))
        kind = str(item.get("kind", "paraphrase"))
        stats = report.by_kind.setdefault(kind, [0, 0])
        stats[0] += 1
        report.total += 1
        if item.get("category") is None:
            report.out_of_scope += 1
            if result.refused:
                report.refused_oos += 1
                stats[1] += 1
            else:
                report.misses.append(f"answered OOS: {item['question']!r} -> {result.category}")
            continue
        report.in_scope += 1
        if result.refused:
            report.refused_in_scope += 1
            report.misses.append(f"refused: {item['question']!r} (conf {result.confidence:.2f})")
            continue
        if result.category == item["category"]:
            report.routed_right += 1
        top = result.sources[0].question if result.sources else None
        if top == item.get("expected"):
            report.top1_right += 1
            stats[1] += 1
        else:
            report.misses.append(f"wrong entry: {item['question']!r} -> {top!r}")
    report.seconds = time.perf_counter() - started
    return report


def format_report(r: EvalReport) -> str:
    lines = [
        f"mode: {r.mode}   questions: {r.total} ({r.in_scope} in scope, {r.out_of_scope} out)",
        f"routing accuracy (in scope):  {r.routing_accuracy:.3f}",
        f"top-1 entry accuracy:         {r.top1_accuracy:.3f}",
        f"refusal precision:            {r.refusal_precision:.3f}",
        f"refusal recall:               {r.refusal_recall:.3f}",
        f"in-scope wrongly refused:     {r.refused_in_scope}",
    ]
    for kind, (n, ok) in sorted(r.by_kind.items()):
        lines.append(f"  {kind:<13} {ok}/{n} correct")
    lines.append(f"time: {r.seconds:.2f} s ({r.seconds / max(1, r.total) * 1000:.1f} ms/question)")
    if r.misses:
        lines.append("misses:")
        lines.extend(f"  - {m}" for m in r.misses)
    return "\n".join(lines)
