"""Markdown snippets shared by the chat faces (Chainlit, copilot): welcome, route step, footer."""

from __future__ import annotations

from typing import Protocol

from faqbot.domain import KnowledgeBase
from faqbot.events import RouteDecided, TurnResult


class _BotLike(Protocol):
    @property
    def kb(self) -> KnowledgeBase: ...

    @property
    def mode(self) -> str: ...

    @property
    def model_name(self) -> str | None: ...


def mode_label(bot: _BotLike) -> str:
    if bot.mode == "llm":
        return f"**AI** ({bot.model_name}): answers are written from our FAQ only"
    return "**offline**: answers are quoted directly from the FAQ"


def welcome_markdown(bot: _BotLike) -> str:
    topics = ", ".join(f"**{name}** ({n})" for name, n in bot.kb.counts().items())
    return (
        "Hi! I answer questions from our FAQ.\n\n"
        f"Mode: {mode_label(bot)}.\n\n"
        f"Topics: {topics}. Pick a question below or type your own."
    )


def route_markdown(event: RouteDecided) -> str:
    if event.category is None:
        head = "Category: **none** - the FAQ does not seem to cover this"
    else:
        head = f"Category: **{event.category}** · confidence {event.confidence:.0%}"
    label = "Searched the FAQ for" if event.via == "retrieval" else "Standalone question"
    return f"{head}\n\n{label}: {event.standalone_question}\n\nRouted by: {event.via}"


def footer_markdown(
    result: TurnResult, notice: str | None = None, links_base: str | None = None
) -> str:
    """Sources plus a small meta line (category, confidence, time, mode markers).

    With `links_base` (the copilot widget) sources link to `<links_base>/api/faq/<id>`.
    """
    lines = []
    if notice:
        lines.append(f"> {notice}")
    if result.sources and links_base:
        links = (f"[{s.question}]({links_base}/api/faq/{s.id})" for s in result.sources)
        lines.append("**Sources:** " + "; ".join(links))
    elif result.sources:
        lines.append("**Sources:** " + "; ".join(f"{s.question} `{s.id}`" for s in result.sources))
    marks = [result.category or "not covered", f"confidence {result.confidence:.0%}"]
    marks.append(f"{result.elapsed_s:.2f} s")
    if result.fallback:
        marks.append("fallback: quoted from the FAQ")
    elif result.mode == "offline":
        marks.append("offline: quoted from the FAQ")
    if result.cached:
        marks.append("cached")
    lines.append("_" + " · ".join(marks) + "_")
    return "\n\n".join(lines)
