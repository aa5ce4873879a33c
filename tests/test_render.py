"""What the chat faces say about a turn: true for what happened (unit tests of
faqbot.answering.render)."""

from __future__ import annotations

from dataclasses import replace

from faqbot.answering.events import Source, TurnResult
from faqbot.answering.render import (
    chosen_markdown,
    footer_markdown,
    message_markdown,
    sources_markdown,
    unavailable_text,
    watermark,
)
from faqbot.domain import FaqEntry

SRC = Source("sales-what-is-your-refund-policy", "sales", "What is your refund policy?", 0.9)
ANSWERED = TurnResult(
    question="refund?",
    answer="30 days.",
    category="sales",
    confidence=0.9,
    standalone_question="refund?",
    sources=(SRC,),
)
REFUSED = replace(ANSWERED, answer="I don't know.", category=None, sources=(), refused=True)
SUGGESTED = replace(ANSWERED, answer="I'm not sure...", sources=(), suggestions=(SRC, SRC))


def test_only_an_answered_offline_turn_says_quoted() -> None:
    assert "offline: quoted from the FAQ" in footer_markdown(ANSWERED)
    assert "fallback: quoted from the FAQ" in footer_markdown(replace(ANSWERED, fallback=True))
    for result in (REFUSED, SUGGESTED, replace(REFUSED, fallback=True)):
        assert "quoted" not in footer_markdown(result)
    assert "offline: no FAQ entry matches" in footer_markdown(REFUSED)
    assert "fallback: no FAQ entry matches" in footer_markdown(replace(REFUSED, fallback=True))
    assert "closest FAQ questions offered" in footer_markdown(SUGGESTED)
    assert "quoted" not in footer_markdown(replace(ANSWERED, mode="llm"))


def test_a_refusal_offers_the_contact_and_other_turns_do_not() -> None:
    refusal = footer_markdown(REFUSED, contact="help@example.org")
    assert "Need more help? Contact support: help@example.org" in refusal
    assert "Contact support" not in footer_markdown(REFUSED, contact=None)
    assert "Contact support" not in footer_markdown(ANSWERED, contact="help@example.org")


def test_sources_link_the_question_to_the_entry_page() -> None:
    assert footer_markdown(ANSWERED).startswith(
        "**Sources:** [What is your refund policy?](/api/faq/sales-what-is-your-refund-policy)"
    )
    widget = sources_markdown((SRC,), "https://help.example.com")
    assert "(https://help.example.com/api/faq/sales-what-is-your-refund-policy)" in widget
    odd = replace(SRC, question="What do [brackets] mean?")
    assert "[What do \\[brackets\\] mean?](" in sources_markdown((odd,))


def test_a_suggestion_message_shows_the_sentence_not_the_list() -> None:
    text = message_markdown(SUGGESTED)
    assert text.startswith("I'm not sure I understood. Did you mean:\n\n")


def test_a_chosen_entry_is_shown_with_its_source() -> None:
    entry = FaqEntry(SRC.id, "sales", SRC.question, "30-day money-back guarantee.")
    text = chosen_markdown(entry)
    assert text.startswith("30-day money-back guarantee.\n\n**Sources:** [What is your refund")
    assert "quoted from the FAQ" in text


def test_the_input_notice_matches_the_mode() -> None:
    assert watermark("offline").startswith("Answers are quoted from the FAQ.")
    assert "written by an AI from the FAQ only" in watermark("llm")
    assert "LLMs can make mistakes" not in watermark("offline")
    assert "could not be loaded" in watermark(None)


def test_without_a_faq_the_text_promises_nothing_untrue() -> None:
    assert "notified" not in unavailable_text(None)
    assert "try again later" in unavailable_text(None)
    assert unavailable_text("help@example.org").endswith("contact help@example.org.")
