"""Prompt templates live as text files beside this module and are rendered only here.

FAQ text reaches the answer prompt only inside one `<faq_entries>` block, and `neutralise` keeps
any text from forging that block's tags (an FAQ answer or a question that "closes" the block to
start a fake system section gets a harmless look-alike instead). The router's tools are strict:
one per category plus `not_covered`, so the model always calls a tool (tool_choice "required").
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from string import Template

from faqbot.domain import Category, FaqEntry

BRIEF_STYLE = "- Answer in at most two short sentences; the sources are linked separately.\n"
TOOL_EXAMPLES = 12
TOOL_EXAMPLE_CHARS = 200
NOT_COVERED = "not_covered"  # never a category tool's name: those all start with "faq_"
# "<" or a look-alike, optional "/" (or a look-alike) and spaces, then the tag name, any case.
_FENCE = re.compile(
    r"[<\uff1c\ufe64\u2039\u3008\u27e8\u2329]\s*[/\uff0f\u2215\u2044]?\s*(faq[_\uff3f]entries)",
    re.I,
)


@cache
def _template(name: str) -> Template:
    return Template(files(__package__).joinpath(f"{name}.txt").read_text(encoding="utf-8"))


def neutralise(text: str) -> str:
    """`text` with anything that looks like a `<faq_entries>` tag defused (the name hyphenated)."""
    return _FENCE.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + "faq-entries", text)


def render_entries(entries: Sequence[FaqEntry]) -> str:
    """FAQ entries as `[id] Q: ...` / `A: ...` blocks separated by blank lines (neutralised)."""
    return "\n\n".join(
        f"[{e.id}] Q: {neutralise(e.question)}\nA: {neutralise(e.answer)}" for e in entries
    )


def router_system(app_name: str) -> str:
    return _template("router").substitute(app_name=app_name, not_covered=NOT_COVERED)


def answer_system(
    app_name: str, category: str, entries: Sequence[FaqEntry], refusal: str, *, brief: bool
) -> str:
    return _template("answer").substitute(
        app_name=app_name,
        category=category,  # a file stem: [a-z0-9_] only
        refusal=refusal,
        entries=render_entries(entries),
        style=BRIEF_STYLE if brief else "",
    )


def tool_name(category: str) -> str:
    return f"faq_{category}"


def router_tool(category: Category) -> dict[str, object]:
    """One strict function tool per category; its description samples the category's questions,
    quoted as JSON strings so that a question reads as data, not as part of the description."""
    samples = json.dumps(
        [e.question[:TOOL_EXAMPLE_CHARS] for e in category.entries[:TOOL_EXAMPLES]],
        ensure_ascii=False,
    )
    about = category.description or f"{category.name.title()} questions"
    return {
        "type": "function",
        "function": {
            "name": tool_name(category.name),
            "description": f"{about}. Example questions it answers: {samples}",
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": {
                    "question": {
                        "type": "string",
                        "description": "The user's latest question, rewritten to stand alone.",
                    }
                },
                "required": ["question"],
                "additionalProperties": False,
            },
        },
    }


def not_covered_tool() -> dict[str, object]:
    """The router's way to say "no category fits" while tool_choice is "required"."""
    return {
        "type": "function",
        "function": {
            "name": NOT_COVERED,
            "description": "No FAQ category fits the message.",
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": {},
                "required": [],
                "additionalProperties": False,
            },
        },
    }
