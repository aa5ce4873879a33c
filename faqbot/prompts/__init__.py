"""Prompt templates live as text files beside this module and are rendered only here."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from string import Template

from faqbot.domain import Category, FaqEntry

BRIEF_STYLE = "- Answer in at most two short sentences; the sources are linked separately.\n"
TOOL_EXAMPLES = 12


@cache
def _template(name: str) -> Template:
    return Template(files(__package__).joinpath(f"{name}.txt").read_text(encoding="utf-8"))


def render_entries(entries: Sequence[FaqEntry]) -> str:
    """FAQ entries as `[id] Q: ...` / `A: ...` blocks separated by blank lines."""
    return "\n\n".join(f"[{e.id}] Q: {e.question}\nA: {e.answer}" for e in entries)


def router_system(app_name: str) -> str:
    return _template("router").substitute(app_name=app_name)


def answer_system(
    app_name: str, category: str, entries: Sequence[FaqEntry], refusal: str, *, brief: bool
) -> str:
    return _template("answer").substitute(
        app_name=app_name,
        category=category,
        refusal=refusal,
        entries=render_entries(entries),
        style=BRIEF_STYLE if brief else "",
    )


def tool_name(category: str) -> str:
    return f"faq_{category}"


def router_tool(category: Category) -> dict[str, object]:
    """One strict function tool per category; its description samples the category's questions."""
    samples = "; ".join(e.question for e in category.entries[:TOOL_EXAMPLES])
    about = category.description or f"{category.name.title()} questions"
    return {
        "type": "function",
        "function": {
            "name": tool_name(category.name),
            "description": f"{about}. Answers questions such as: {samples}",
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
