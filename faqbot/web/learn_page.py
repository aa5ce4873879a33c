"""The "Learn from visitors" page of /admin (issue 22): HTML only, no script (the CSP allows none).

Every row of the suggestion list is its own plain form (POST to the same path, with the page's
CSRF token): an entry picker pre-set to the proposed entry, "Attach as phrasing" and "Out of
scope". Attached phrasings are listed under their entry with "Remove"; so are the out-of-scope
marks. Everything that came from visitors or the FAQ is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from faqbot.analytics.learning import Suggestion
from faqbot.domain import KnowledgeBase
from faqbot.store.learned import LearnedRow

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem;
  color: #1f2937; line-height: 1.45; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
.muted { color: #6b7280; font-size: .9rem; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e5e7eb;
  vertical-align: top; }
select { max-width: 26rem; } button { margin: .1rem .2rem; }
.error { color: #991b1b; background: #fef2f2; border: 1px solid #fca5a5; padding: .6rem .9rem; }
.notice { color: #065f46; background: #ecfdf5; border: 1px solid #6ee7b7; padding: .6rem .9rem; }
.warn { color: #92400e; background: #fffbeb; border: 1px solid #fcd34d; padding: .6rem .9rem; }
"""
DONE = {
    "attached": "Attached. Every replica answers with it within seconds.",
    "out_of_scope": "Marked out of scope. Every replica refuses that question within seconds.",
    "removed": "Removed. Every replica stops using it within seconds.",
}


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{name}" value="{escape(value, quote=True)}">'


def entry_picker(kb: KnowledgeBase, selected: str | None, field_id: str) -> str:
    """A select of every entry, by category; `selected` pre-chosen (else "choose")."""
    groups = []
    for category in kb.categories.values():
        options = "".join(
            f'<option value="{escape(e.id, quote=True)}"'
            f"{' selected' if e.id == selected else ''}>{escape(e.question)}</option>"
            for e in category.entries
        )
        groups.append(f'<optgroup label="{escape(category.name, quote=True)}">{options}</optgroup>')
    none = "" if selected in kb.by_id else " selected"
    return (
        f'<select name="entry_id" id="{field_id}" aria-label="FAQ entry" required>'
        f'<option value=""{none}>(choose the entry that answers it)</option>'
        + "".join(groups)
        + "</select>"
    )


def _suggestions(kb: KnowledgeBase, rows: Sequence[Suggestion], action: str, csrf: str) -> str:
    if not rows:
        return '<p class="muted" id="suggestions">Nothing to review: no unanswered question.</p>'
    out = []
    for i, s in enumerate(rows):
        why = ", ".join(f"{n} {k}" for k, n in s.why.most_common())
        comments = "".join(f"<div class=muted>&ldquo;{escape(c)}&rdquo;</div>" for c in s.comments)
        out.append(
            f'<tr class="suggestion" data-question="{escape(s.question, quote=True)}">'
            f"<td>{s.count}</td><td>{escape(s.question)}{comments}</td><td>{escape(why)}</td><td>"
            f'<form method="post" action="{escape(action, quote=True)}">'
            f"{_hidden('csrf', csrf)}{_hidden('question', s.question)}"
            f"{entry_picker(kb, s.proposed_entry, f'entry-{i}')}"
            '<button type="submit" name="do" value="attach">Attach as phrasing</button>'
            '<button type="submit" name="do" value="out_of_scope" formnovalidate>'
            "Out of scope</button></form></td></tr>"
        )
    return (
        '<table id="suggestions"><tr><th>Asked</th><th>Question</th><th>Why listed</th>'
        "<th>Decision</th></tr>" + "".join(out) + "</table>"
    )


def _remove(action: str, csrf: str, row: LearnedRow) -> str:
    return (
        f'<form method="post" action="{escape(action, quote=True)}" style="display:inline">'
        f"{_hidden('csrf', csrf)}{_hidden('id', row.id)}"
        '<button type="submit" name="do" value="remove">Remove</button></form>'
    )


def _attached(kb: KnowledgeBase, rows: Sequence[LearnedRow], action: str, csrf: str) -> str:
    phrasings = [r for r in rows if r.kind == "phrasing"]
    if not phrasings:
        return '<p class="muted" id="attached">No phrasing attached yet.</p>'
    by_entry: dict[str, list[LearnedRow]] = {}
    for r in phrasings:
        by_entry.setdefault(r.entry_id, []).append(r)
    out = []
    for entry_id, items in by_entry.items():
        entry = kb.by_id.get(entry_id)
        title = escape(entry.question) if entry else f"{escape(entry_id)} (no longer in the FAQ)"
        lines = "".join(
            f'<li class="phrasing" data-id="{escape(r.id, quote=True)}">{escape(r.text)} '
            f'<span class="muted">({escape(r.created_by or "?")}, {escape(r.created_at[:16])})'
            f"</span> {_remove(action, csrf, r)}</li>"
            for r in items
        )
        out.append(
            f'<tr><td><b>{title}</b><div class="muted">{escape(entry_id)}</div></td>'
            f"<td><ul>{lines}</ul></td></tr>"
        )
    return (
        '<table id="attached"><tr><th>Entry</th><th>Attached phrasings</th></tr>'
        + "".join(out)
        + "</table>"
    )


def _marks(rows: Sequence[LearnedRow], action: str, csrf: str) -> str:
    marks = [r for r in rows if r.kind == "out_of_scope"]
    if not marks:
        return '<p class="muted" id="out-of-scope">No question marked out of scope.</p>'
    items = "".join(
        f'<li class="mark" data-id="{escape(r.id, quote=True)}">{escape(r.text)} '
        f"{_remove(action, csrf, r)}</li>"
        for r in marks
    )
    return f'<ul id="out-of-scope">{items}</ul>'


def learn_page(
    *,
    app_name: str,
    kb: KnowledgeBase,
    suggestions: Sequence[Suggestion],
    learned: Sequence[LearnedRow],
    action: str,
    csrf: str,
    period: str,
    error: str | None = None,
    done: str | None = None,
) -> str:
    """The whole page."""
    banner = ""
    if error:
        banner = f'<p class="error" id="error" role="alert">{escape(error)}</p>'
    elif done in DONE:
        banner = f'<p class="notice" id="done" role="status">{escape(DONE[done])}</p>'
    body = (
        f"<h1>{escape(app_name)}: learn from visitors</h1>"
        f'<p class="muted"><a href="{escape(action.rsplit("/learn", 1)[0], quote=True)}">'
        f"Back to the analytics</a> &middot; questions from the last {escape(period)}. "
        "Attach a visitor's question to the entry that answers it (it becomes another phrasing "
        "of that entry, on every replica within seconds), or mark it out of scope (that exact "
        "question is then refused). <code>python -m faqbot learn export DIR</code> writes them "
        "as FAQ files for the repository.</p>"
        f"{banner}<h2>Suggestions</h2>{_suggestions(kb, suggestions, action, csrf)}"
        f"<h2>Attached phrasings</h2>{_attached(kb, learned, action, csrf)}"
        f"<h2>Marked out of scope</h2>{_marks(learned, action, csrf)}"
    )
    return _page(f"Learn from visitors - {app_name}", body)


def conflict_page(
    *,
    app_name: str,
    kb: KnowledgeBase,
    question: str,
    entry_id: str,
    kind: str,
    conflicts: Sequence[tuple[str, str, str]],
    action: str,
    csrf: str,
) -> str:
    """The flagged confirmation: what would answer wrongly, and an explicit "anyway"."""
    target = kb.by_id.get(entry_id)
    lines = "".join(
        f'<li class="conflict">&ldquo;{escape(q)}&rdquo; would no longer be answered by '
        f"<b>{escape(kb.by_id[e].question if e in kb.by_id else e)}</b>"
        f"{' but by ' + escape(now) if now else ''}</li>"
        for q, e, now in conflicts
    )
    what = (
        f"Attaching &ldquo;{escape(question)}&rdquo; to <b>{escape(target.question)}</b>"
        if target is not None and kind == "attach"
        else f"Marking &ldquo;{escape(question)}&rdquo; out of scope"
    )
    label = "Attach anyway" if kind == "attach" else "Mark out of scope anyway"
    body = (
        f"<h1>{escape(app_name)}: check before accepting</h1>"
        f'<div class="warn" id="conflicts" role="alert"><p>{what} would make these questions '
        f"answer wrongly:</p><ul>{lines}</ul></div>"
        f'<form method="post" action="{escape(action, quote=True)}">'
        f"{_hidden('csrf', csrf)}{_hidden('question', question)}{_hidden('entry_id', entry_id)}"
        f"{_hidden('force', '1')}"
        f'<button type="submit" name="do" value="{escape(kind, quote=True)}" id="anyway">'
        f"{label}</button></form>"
        f'<p><a href="{escape(action, quote=True)}" id="cancel">Cancel</a></p>'
    )
    return _page(f"Check before accepting - {app_name}", body)
