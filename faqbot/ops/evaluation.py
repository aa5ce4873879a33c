"""`python -m faqbot eval FILE.yaml`: routing, top-1 entry and answer/suggest/refuse quality.

File format:
    questions:
      - question: "is there a cheaper price if I pay yearly?"
        kind: paraphrase            # exact | paraphrase | non_english | out_of_scope
        category: sales             # null for out_of_scope
        expected: "Do you offer discounts for annual subscriptions?"   # gold FAQ question
        split: tune                 # optional: tune | holdout (reported apart)

Scores per kind (and split): answered with the right entry; right entry answered or among the
"Did you mean" suggestions; for out-of-scope questions, never answered (refused or suggested).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from faqbot.answering.bot import FaqBot, collect
from faqbot.answering.events import TurnResult
from faqbot.answering.factory import build_bot
from faqbot.config import load_settings
from faqbot.errors import KnowledgeError


@dataclass
class KindScore:
    total: int = 0
    answered_right: int = 0
    right_answered_or_suggested: int = 0
    not_answered: int = 0
    routed_right: int = 0


@dataclass
class EvalReport:
    total: int = 0
    in_scope: int = 0
    out_of_scope: int = 0
    mode: str = "offline"
    ranking: str = "lexical"
    seconds: float = 0.0
    by_kind: dict[str, KindScore] = field(default_factory=dict)
    misses: list[str] = field(default_factory=list)

    def _sum(self, name: str, scope: bool) -> int:
        return sum(
            getattr(s, name) for k, s in self.by_kind.items() if k.startswith("out_of") != scope
        )

    @property
    def routing_accuracy(self) -> float:
        return self._sum("routed_right", True) / self.in_scope if self.in_scope else 0.0

    @property
    def top1_accuracy(self) -> float:
        return self._sum("answered_right", True) / self.in_scope if self.in_scope else 0.0

    @property
    def refusal_recall(self) -> float:
        """Out-of-scope questions never answered (refused or only suggested)."""
        return self._sum("not_answered", False) / self.out_of_scope if self.out_of_scope else 0.0


def load_questions(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise KnowledgeError(f"{path}: expected a mapping with a 'questions' list")
    items: list[dict[str, Any]] = data["questions"]
    return items


def score(report: EvalReport, item: dict[str, Any], result: TurnResult) -> None:
    """Add one answered question to the report."""
    kind = str(item.get("kind", "paraphrase"))
    if item.get("split"):
        kind = f"{kind} ({item['split']})"
    stats = report.by_kind.setdefault(kind, KindScore())
    stats.total += 1
    report.total += 1
    q = item["question"]
    if item.get("category") is None:
        report.out_of_scope += 1
        if result.outcome != "answered":
            stats.not_answered += 1
        else:
            report.misses.append(f"answered OOS: {q!r} -> {result.sources[0].question!r}")
        return
    report.in_scope += 1
    expected = item.get("expected")
    top = result.sources[0].question if result.sources else None
    offered = {s.question for s in result.suggestions}
    stats.routed_right += int(result.category == item["category"])
    if result.outcome == "answered" and top == expected:
        stats.answered_right += 1
        stats.right_answered_or_suggested += 1
        return
    if expected in offered:
        stats.right_answered_or_suggested += 1
    report.misses.append(
        f"{result.outcome}: {q!r} -> {top or sorted(offered)!r} (conf {result.confidence:.2f})"
    )


async def run_eval(path: Path, *, offline: bool = False) -> EvalReport:
    """Ask every labelled question (fresh history each) and score the answers."""
    settings = load_settings(openai_api_key=None) if offline else load_settings()
    return await evaluate(build_bot(settings), path)


async def evaluate(bot: FaqBot, path: Path) -> EvalReport:
    """Score `bot` on a labelled file, once its vectors are ready (hybrid when it can be)."""
    bot.wait_for_vectors(timeout=3600)
    report = EvalReport(mode=bot.mode, ranking=bot.retriever.mode)
    started = time.perf_counter()
    for item in load_questions(path):
        score(report, item, await collect(bot.answer(str(item["question"]))))
    report.seconds = time.perf_counter() - started
    return report


def format_report(r: EvalReport) -> str:
    lines = [
        f"mode: {r.mode} ({r.ranking} ranking)   questions: {r.total} "
        f"({r.in_scope} in scope, {r.out_of_scope} out)",
        f"routing accuracy (in scope):        {r.routing_accuracy:.3f}",
        f"answered with the right entry:      {r.top1_accuracy:.3f}",
        f"out-of-scope never answered:        {r.refusal_recall:.3f}",
        f"  {'kind':<26} {'n':>4} {'answered':>9} {'ans|sugg':>9} {'not ans':>8}",
    ]
    for kind, s in sorted(r.by_kind.items()):
        n = max(1, s.total)
        lines.append(
            f"  {kind:<26} {s.total:>4} {s.answered_right / n:>9.3f} "
            f"{s.right_answered_or_suggested / n:>9.3f} {s.not_answered / n:>8.3f}"
        )
    lines.append(f"time: {r.seconds:.2f} s ({r.seconds / max(1, r.total) * 1000:.1f} ms/question)")
    if r.misses:
        lines.append("misses:")
        lines.extend(f"  - {m}" for m in r.misses)
    return "\n".join(lines)
