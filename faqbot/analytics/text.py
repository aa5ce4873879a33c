"""The report as plain text tables for the terminal (`python -m faqbot report`)."""

from __future__ import annotations

from collections.abc import Sequence

from faqbot.analytics.report import Report, Summary

_OUTCOMES = (("refused", "refused"), ("suggested", "suggested"), ("low_confidence", "unsure"))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """Columns padded to their widest cell; `align` has one letter per column, l or r."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if a == "l" else c.rjust(w)
            for c, w, a in zip(cells, widths, align, strict=True)
        ]
        return "  " + "  ".join(parts).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def _pct(summary: Summary, count: int) -> str:
    return f"{summary.rate(count) * 100:.0f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _summary_rows(summaries: Sequence[Summary]) -> list[list[str]]:
    return [
        [
            s.key or "(none)",
            str(s.questions),
            _pct(s, s.answered),
            _pct(s, s.suggested),
            _pct(s, s.refused),
            _pct(s, s.fallback),
            _ms(s.p50_ms),
            _ms(s.p95_ms),
            f"{s.tokens:,}",
            f"${s.cost_usd:.4f}",
        ]
        for s in summaries
    ]


_SUMMARY_HEADERS = (
    "questions", "answered", "suggested", "refused", "fallback", "p50 ms", "p95 ms", "tokens",
    "cost",
)  # fmt: skip


def format_report(report: Report) -> str:
    """The unanswered questions first (the list to write new entries from), then the numbers."""
    out = [f"faqbot report: {report.since} .. {report.until} (last {report.period})", ""]
    out.append(
        f"Unanswered and low-confidence questions ({len(report.unanswered)} groups, "
        f"grouped by {report.grouping}; 'unsure' = answered below confidence "
        f"{report.low_confidence:.2f}):"
    )
    if report.unanswered:
        rows = []
        for g in report.unanswered:
            counts = [str(g.outcomes.get(key, 0)) for key, _ in _OUTCOMES]
            rows.append([str(g.count), *counts, g.question])
            rows += [["", "", "", "", f"  ~ {example}"] for example in g.examples[:3]]
        headers = ["count", *(label for _, label in _OUTCOMES), "question"]
        out += _table(headers, rows, "rrrrl")
    else:
        out.append("  (none: every question in this period was answered confidently)")
    t = report.totals
    out += [
        "",
        f"Totals: {t.questions} questions | answered {_pct(t, t.answered)} | suggested "
        f"{_pct(t, t.suggested)} | refused {_pct(t, t.refused)} | fallback {_pct(t, t.fallback)}"
        f" | p50 {_ms(t.p50_ms)} ms | p95 {_ms(t.p95_ms)} ms | tokens {t.tokens:,} | "
        f"cost ${t.cost_usd:.4f}",
    ]
    for title, summaries, key in (
        ("By category", report.by_category, "category"),
        ("By day (UTC)", report.by_day, "day"),
    ):
        out += ["", f"{title}:"]
        if summaries:
            out += _table([key, *_SUMMARY_HEADERS], _summary_rows(summaries), "l" + "r" * 9)
        else:
            out.append("  (no questions)")
    out += ["", "FAQ entries with the most thumbs down:"]
    if report.disliked:
        rows = [
            [str(e.down), str(e.up), e.entry_id, " | ".join(e.comments)] for e in report.disliked
        ]
        out += _table(["down", "up", "entry", "comments"], rows, "rrll")
    else:
        out.append("  (no thumbs down)")
    return "\n".join(out) + "\n"
