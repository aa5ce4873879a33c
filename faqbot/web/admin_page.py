"""The /admin page: the FAQ owners' report as HTML with server-drawn SVG charts.

No script and nothing from another host (the app's CSP allows neither, and an air-gapped install
has no CDN): the charts are inline SVG drawn here, with a <title> per bar as its tooltip. Every
text that came from users or the FAQ is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from html import escape

from faqbot.analytics.report import Report, Summary

_OUTCOME_COLORS = (("answered", "#0f766e"), ("suggested", "#d97706"), ("refused", "#b91c1c"))
_PERIODS = ("24h", "7d", "30d", "90d")
MAX_DAYS = 120  # days drawn in the daily chart (the most recent)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem;
  color: #1f2937; line-height: 1.45; }
h1 { font-size: 1.4rem; margin-bottom: .2rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
.meta, .muted { color: #6b7280; font-size: .9rem; }
.tiles { display: flex; flex-wrap: wrap; gap: .75rem; margin: 1rem 0; }
.tile { border: 1px solid #e5e7eb; border-radius: .5rem; padding: .6rem .9rem; min-width: 8rem; }
.tile b { display: block; font-size: 1.3rem; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e5e7eb;
  vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.chart { display: block; max-width: 100%; height: auto; }
.legend span { display: inline-block; margin-right: 1rem; font-size: .85rem; }
.legend i { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem;
  vertical-align: -.1rem; }
.examples { color: #6b7280; font-size: .85rem; }
nav { display: inline; } nav a { margin-right: .6rem; color: #0f766e; }
nav a.current { font-weight: bold; }
"""


def _pct(summary: Summary, count: int) -> str:
    return f"{summary.rate(count) * 100:.0f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _tiles(t: Summary) -> str:
    tiles = [
        ("Questions", str(t.questions)),
        ("Answered", _pct(t, t.answered)),
        ("Suggested", _pct(t, t.suggested)),
        ("Refused", _pct(t, t.refused)),
        ("Fallback", _pct(t, t.fallback)),
        ("Latency p50 / p95", f"{_ms(t.p50_ms)} / {_ms(t.p95_ms)}"),
        ("Tokens", f"{t.tokens:,}"),
        ("Cost", f"${t.cost_usd:.4f}"),
    ]
    cells = "".join(f'<div class="tile">{escape(k)}<b>{escape(v)}</b></div>' for k, v in tiles)
    return f'<div class="tiles" id="totals">{cells}</div>'


def _legend() -> str:
    items = "".join(
        f'<span><i style="background:{color}"></i>{name}</span>' for name, color in _OUTCOME_COLORS
    )
    return f'<p class="legend">{items}</p>'


def every_day(days: Sequence[Summary], since: str, until: str) -> list[Summary]:
    """One entry per calendar day from `since` to `until` (days without questions included)."""
    have = {d.key: d for d in days}
    try:
        first, last = date.fromisoformat(since[:10]), date.fromisoformat(until[:10])
    except ValueError:
        return list(days)
    count = min((last - first).days + 1, MAX_DAYS)
    keys = [(last - timedelta(days=n)).isoformat() for n in range(count)][::-1]
    return [have.get(k, Summary(k)) for k in keys]


def daily_chart(days: Sequence[Summary]) -> str:
    """Stacked bars per day: answered, suggested, refused."""
    width, height, pad = 720, 220, 28
    top = max((d.questions for d in days), default=0) or 1
    slot = (width - pad) / max(len(days), 1)
    bar = min(max(slot * 0.8, 2), 48)
    parts = [
        f'<svg class="chart" id="chart-daily" role="img" viewBox="0 0 {width} {height + pad}" '
        f'width="{width}" height="{height + pad}" aria-label="Questions per day by outcome">',
        f'<line x1="{pad}" y1="{height}" x2="{width}" y2="{height}" stroke="#9ca3af"/>',
        f'<text x="0" y="12" font-size="11" fill="#6b7280">{top}</text>',
    ]
    for i, day in enumerate(days):
        x = pad + i * slot
        y = float(height)
        for name, color in _OUTCOME_COLORS:
            count = getattr(day, name)
            if not count:
                continue
            h = count / top * (height - 16)
            y -= h
            parts.append(
                f'<rect class="bar bar-{name}" data-day="{escape(day.key)}" x="{x:.1f}" '
                f'y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{escape(day.key)}: {count} {name}</title></rect>"
            )
        if (len(days) <= 16 or i % max(len(days) // 8, 1) == 0) and x < width - 36:
            parts.append(
                f'<text class="day" x="{x:.1f}" y="{height + 16}" font-size="11" fill="#6b7280">'
                f"{escape(day.key[5:])}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def category_chart(categories: Sequence[Summary]) -> str:
    """One horizontal stacked bar per category: answered, suggested, refused."""
    width, row, label = 720, 26, 150
    height = row * max(len(categories), 1) + 8
    top = max((c.questions for c in categories), default=0) or 1
    parts = [
        f'<svg class="chart" id="chart-categories" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-label="Questions per category by outcome">'
    ]
    for i, cat in enumerate(categories):
        y = 4 + i * row
        name = cat.key or "(not covered)"
        parts.append(
            f'<text x="0" y="{y + 15}" font-size="12" fill="#1f2937">{escape(name[:22])}</text>'
        )
        x = float(label)
        for outcome, color in _OUTCOME_COLORS:
            count = getattr(cat, outcome)
            if not count:
                continue
            w = count / top * (width - label - 50)
            parts.append(
                f'<rect class="bar bar-{outcome}" data-category="{escape(name)}" x="{x:.1f}" '
                f'y="{y}" width="{w:.1f}" height="{row - 8}" fill="{color}">'
                f"<title>{escape(name)}: {count} {outcome}</title></rect>"
            )
            x += w
        parts.append(
            f'<text x="{x + 6:.1f}" y="{y + 15}" font-size="11" fill="#6b7280">'
            f"{cat.questions}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _summary_table(summaries: Sequence[Summary], key: str, table_id: str) -> str:
    head = "".join(
        f'<th class="num">{h}</th>'
        for h in ("Questions", "Answered", "Suggested", "Refused", "Fallback", "p50", "p95",
                  "Tokens", "Cost")
    )  # fmt: skip
    rows = []
    for s in summaries:
        cells = [
            str(s.questions), _pct(s, s.answered), _pct(s, s.suggested), _pct(s, s.refused),
            _pct(s, s.fallback), _ms(s.p50_ms), _ms(s.p95_ms), f"{s.tokens:,}",
            f"${s.cost_usd:.4f}",
        ]  # fmt: skip
        tds = "".join(f'<td class="num">{escape(c)}</td>' for c in cells)
        rows.append(f"<tr><td>{escape(s.key or '(not covered)')}</td>{tds}</tr>")
    body = "".join(rows) or '<tr><td colspan="10" class="muted">No questions.</td></tr>'
    return f'<table id="{table_id}"><tr><th>{key}</th>{head}</tr>{body}</table>'


def _unanswered(report: Report) -> str:
    if not report.unanswered:
        return '<p class="muted" id="unanswered">Every question in this period was answered.</p>'
    top = max(g.count for g in report.unanswered)
    rows = []
    for g in report.unanswered:
        w = max(g.count / top * 120, 2)
        outcomes = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in g.outcomes.most_common())
        examples = "".join(f"<div>~ {escape(e)}</div>" for e in g.examples[:3])
        cats = ", ".join(escape(c) for c in g.categories) or "-"
        rows.append(
            f'<tr class="group"><td class="num">{g.count}</td><td>'
            f'<svg class="countbar" width="124" height="12" role="img" aria-label="{g.count}">'
            f'<rect class="bar bar-count" x="0" y="1" width="{w:.1f}" height="10" '
            f'fill="#b91c1c"/></svg></td><td>{escape(g.question)}'
            f'<div class="examples">{examples}</div></td><td>{escape(outcomes)}</td>'
            f"<td>{cats}</td><td>{escape(g.last_asked[:16].replace('T', ' '))}</td></tr>"
        )
    return (
        '<table id="unanswered"><tr><th class="num">Count</th><th></th><th>Question (and other '
        "phrasings)</th><th>How it ended</th><th>Category</th><th>Last asked (UTC)</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _disliked(report: Report) -> str:
    if not report.disliked:
        return '<p class="muted" id="disliked">No thumbs down in this period.</p>'
    rows = "".join(
        f'<tr><td class="num">{e.down}</td><td class="num">{e.up}</td>'
        f'<td><a href="/api/faq/{escape(e.entry_id, quote=True)}">{escape(e.entry_id)}</a></td>'
        f"<td>{'<br>'.join(escape(c) for c in e.comments)}</td></tr>"
        for e in report.disliked
    )
    return (
        '<table id="disliked"><tr><th class="num">Down</th><th class="num">Up</th><th>Entry</th>'
        f"<th>Comments</th></tr>{rows}</table>"
    )


def admin_page(report: Report, *, app_name: str, path: str = "/admin") -> str:
    """The whole page for one report."""
    nav = " ".join(
        f'<a href="{escape(path)}?since={p}"{" class=current" if p == report.period else ""}>'
        f"{p}</a>"
        for p in _PERIODS
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Analytics - {escape(app_name)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{escape(app_name)}: what users asked</h1>
<div class="meta">{escape(report.since)} to {escape(report.until)} (last
{escape(report.period)}) &middot; <nav>{nav}</nav> &middot;
<a id="learn-link" href="{escape(path.rstrip("/"))}/learn">Learn from visitors</a></div>
{_tiles(report.totals)}
<h2>Questions to write new FAQ entries from</h2>
<p class="muted">Refused, "did you mean" only, or answered with confidence below
{report.low_confidence:.2f}; similar questions grouped ({escape(report.grouping)}).</p>
{_unanswered(report)}
<h2>Questions per day</h2>
{_legend()}
{daily_chart(every_day(report.by_day, report.since, report.until))}
<h2>Questions per category</h2>
{category_chart(report.by_category)}
{_summary_table(report.by_category, "Category", "by-category")}
<h2>FAQ entries with the most thumbs down</h2>
{_disliked(report)}
<h2>Per day</h2>
{_summary_table(report.by_day, "Day (UTC)", "by-day")}
</body>
</html>
"""
