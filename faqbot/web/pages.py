"""Small HTML pages for people (the API's JSON stays the default for programs).

Everything taken from the FAQ is escaped: an entry's text is shown, never interpreted as HTML.
No script, no outside resource: the page works under the app's CSP and on an air-gapped install.
"""

from __future__ import annotations

from html import escape

from faqbot.domain import FaqEntry

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - {app}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 42rem; margin: 2.5rem auto;
  padding: 0 1rem; line-height: 1.55; color: #1f2937; }}
h1 {{ font-size: 1.35rem; }} .meta {{ color: #6b7280; font-size: 0.9rem; }}
a {{ color: #0f766e; }}
</style>
</head>
<body>
<p class="meta">{app} · FAQ · category <strong>{category}</strong></p>
<h1>{question}</h1>
{answer}
<p><a href="{back}">&larr; Ask another question</a></p>
</body>
</html>
"""


def wants_html(accept: str) -> bool:
    """A browser navigating to the page (Accept lists text/html, not application/json)."""
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return "text/html" in types and "application/json" not in types


def entry_page(entry: FaqEntry, *, app_name: str, back: str = "/") -> str:
    """One FAQ entry as an HTML page: question, answer (one paragraph per block), category."""
    blocks = [b.strip() for b in entry.answer.split("\n\n") if b.strip()]
    answer = "\n".join(f"<p>{escape(b).replace(chr(10), '<br>')}</p>" for b in blocks)
    return _PAGE.format(
        title=escape(entry.question),
        app=escape(app_name),
        category=escape(entry.category),
        question=escape(entry.question),
        answer=answer,
        back=escape(back, quote=True),
    )
