"""Markdown snippets shared by the chat faces (Chainlit, copilot): welcome, route step, footer.

Every line says what actually happened: only answered offline turns say "quoted from the FAQ";
suggestion and refusal turns say so, and a refusal offers the support contact when there is one.
"""

from __future__ import annotations

from typing import Protocol

from faqbot.answering.events import RouteDecided, Source, TurnResult
from faqbot.answering.offline import SUGGEST_TEXT
from faqbot.domain import FaqEntry, KnowledgeBase

UNAVAILABLE = (
    "Sorry, the FAQ is not available right now: it could not be loaded, so I cannot answer "
    "questions. Please try again later."
)


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


def watermark(mode: str | None) -> str:
    """The notice under the chat input, true for the mode running (None: no FAQ loaded)."""
    if mode is None:
        return "The FAQ could not be loaded: no answers are available right now."
    if mode == "llm":
        return (
            "Answers are written by an AI from the FAQ only and can contain mistakes. "
            "Check important info."
        )
    return "Answers are quoted from the FAQ. If no FAQ entry matches, I say so."


def unavailable_text(contact: str | None) -> str:
    """What the chat says while no FAQ is loaded (nothing is notified: say only what is true)."""
    if contact:
        return f"{UNAVAILABLE} If you need help now, contact {contact}."
    return UNAVAILABLE


def contact_line(contact: str | None, answer: str = "") -> str:
    """Where to turn after a refusal: the address alone when the refusal (REFUSAL_TEXT's
    default "Please contact support for more details.") already asks, so it is asked once."""
    if not contact:
        return ""
    if "contact support" in answer.lower():
        return f"Support: {contact}"
    return f"Need more help? Contact support: {contact}"


_FOUND_BY = {"retrieval": "FAQ search", "llm": "AI assistant", "cache": "an earlier answer"}


def route_markdown(event: RouteDecided) -> str:
    if event.category is None:
        head = "Topic: **none** - the FAQ does not seem to cover this"
    else:
        head = f"Topic: **{event.category}** · confidence {event.confidence:.0%}"
    label = "Looked up" if event.via == "retrieval" else "Understood as"
    found = _FOUND_BY.get(event.via, event.via)
    return f"{head}\n\n{label}: {event.standalone_question}\n\nFound by: {found}"


def _link_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def entry_url(entry_id: str, links_base: str | None = None) -> str:
    """Where an entry's page lives: `/api/faq/<id>` (absolute under `links_base` if given)."""
    return f"{(links_base or '').rstrip('/')}/api/faq/{entry_id}"


def sources_markdown(sources: tuple[Source, ...], links_base: str | None = None) -> str:
    """`**Sources:**` with each entry's question linking to its page."""
    links = (f"[{_link_text(s.question)}]({entry_url(s.id, links_base)})" for s in sources)
    return "**Sources:** " + "; ".join(links)


def _outcome_mark(result: TurnResult) -> str | None:
    """What happened, for the meta line; None for an LLM answer (nothing to add)."""
    prefix = "fallback" if result.fallback else result.mode
    if result.outcome == "suggested":
        return f"{prefix}: no confident match, closest FAQ questions offered"
    if result.outcome == "refused":
        return f"{prefix}: no FAQ entry matches" if prefix != "llm" else "not in the FAQ"
    return f"{prefix}: quoted from the FAQ" if prefix != "llm" else None


def footer_markdown(
    result: TurnResult,
    notice: str | None = None,
    links_base: str | None = None,
    contact: str | None = None,
) -> str:
    """Sources (linked), the support contact of a refusal, and a meta line of what happened.

    Source links are relative (`/api/faq/<id>`) in the chat UI; with `links_base` (the copilot
    widget, on another site) they are absolute: `<links_base>/api/faq/<id>`.
    """
    lines = []
    if notice:
        lines.append(f"> {notice}")
    if result.sources:
        lines.append(sources_markdown(result.sources, links_base))
    if result.outcome == "refused" and contact:
        lines.append(contact_line(contact, result.answer))
    marks = [result.category or "not covered", f"confidence {result.confidence:.0%}"]
    marks.append(f"{result.elapsed_s:.2f} s")
    outcome = _outcome_mark(result)
    if outcome:
        marks.append(outcome)
    if result.cached:
        marks.append("cached")
    lines.append("_" + " · ".join(marks) + "_")
    return "\n\n".join(lines)


def message_markdown(
    result: TurnResult,
    notice: str | None = None,
    links_base: str | None = None,
    contact: str | None = None,
) -> str:
    """The final chat message of a turn: its text and footer.

    A suggestion turn shows only the sentence: its entries are offered as buttons.
    """
    text = SUGGEST_TEXT if result.outcome == "suggested" else result.answer
    return text + "\n\n" + footer_markdown(result, notice, links_base, contact)


def chosen_markdown(entry: FaqEntry, links_base: str | None = None) -> str:
    """The answer of a suggestion the user picked: quoted from the FAQ, with its source."""
    source = Source(entry.id, entry.category, entry.question, 1.0)
    meta = f"_{entry.category} · chosen from the suggestions · quoted from the FAQ_"
    return f"{entry.answer}\n\n{sources_markdown((source,), links_base)}\n\n{meta}"


GONE = (
    "Sorry, that FAQ entry is no longer available: the FAQ has changed since I suggested it. "
    "Please ask your question again."
)
