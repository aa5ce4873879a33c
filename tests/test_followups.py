"""Follow-up questions read as a person would (issue 21), offline, over the shipped FAQ.

The new question is read on its own first; the conversation narrows but never outweighs it; the
entry just given is repeated only when the new words alone point at it; the confidence is that
of the answer to this question. Lexical engine (fast, deterministic); the bundled model is
measured on the labelled conversations in bench/followups.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from faqbot.answering.bot import FaqBot, collect
from faqbot.answering.factory import build_bot
from faqbot.answering.offline import previous_entry
from faqbot.domain import ChatTurn
from faqbot.state.conversations import ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.web.app import create_api

ROOT = Path(__file__).resolve().parent.parent
DISCOUNTS = "sales-do-you-offer-discounts-for-annual-subscriptions"
REFUND = "sales-what-is-your-refund-policy"
ACADEMIC = "sales-do-you-offer-academic-or-non-profit-pricing"
INVITE = "account-how-do-i-invite-a-new-user-to-my-workspace"
REMOVE = "account-how-do-i-remove-a-user-from-my-workspace"
QC_RULES = "labs-how-do-i-set-up-quality-control-rules"
QC_FAILS = "labs-what-happens-when-a-qc-rule-fails"
API_KEY = "account-how-do-i-create-or-revoke-an-api-key"


@pytest.fixture
def bot(make_settings: Any) -> FaqBot:
    return build_bot(make_settings(faq_dir=ROOT / "faqs"))


async def after(bot: FaqBot, first: str, question: str) -> Any:
    """The answer to `question` after `first` was asked and answered in the conversation."""
    given = await collect(bot.answer(first))
    history = [ChatTurn("user", first), ChatTurn("assistant", given.answer)]
    return await collect(bot.answer(question, history))


@pytest.mark.parametrize(
    ("first", "question", "expected"),
    [
        # an explicit topic switch is answered as asked (was: the discount answer again)
        ("Do you offer discounts for annual subscriptions?", "and what is your refund policy?",
         REFUND),
        # continuations find the entry that continues the previous one (was: a repeat)
        ("Do you offer discounts for annual subscriptions?", "and for universities?", ACADEMIC),
        ("How do I invite a new user to my workspace?", "and how do I remove one?", REMOVE),
        ("How do I set up quality control rules?", "what happens if one of them fails?",
         QC_FAILS),
    ],
)  # fmt: skip
async def test_a_follow_up_is_answered_as_asked_not_with_the_previous_entry(
    bot: FaqBot, first: str, question: str, expected: str
) -> None:
    result = await after(bot, first, question)
    assert result.outcome == "answered"
    assert result.sources[0].id == expected


async def test_the_confidence_is_that_of_the_answer_to_this_question(bot: FaqBot) -> None:
    question = "and what is your refund policy?"
    alone = await collect(bot.answer(question))
    followed = await after(bot, "Do you offer discounts for annual subscriptions?", question)
    assert alone.sources[0].id == followed.sources[0].id == REFUND
    assert followed.confidence == alone.confidence  # not that of the joined text
    assert followed.standalone_question == question


async def test_the_previous_entry_again_only_when_the_new_words_name_it(bot: FaqBot) -> None:
    result = await after(bot, "How do I create or revoke an API key?", "and how do I revoke one?")
    assert result.sources[0].id == API_KEY


async def test_an_out_of_scope_follow_up_is_never_answered(bot: FaqBot) -> None:
    result = await after(
        bot, "Which laboratory instruments can LabLens connect to?", "and what's the weather?"
    )
    assert result.outcome != "answered"


def test_the_previous_entry_is_the_one_the_last_answer_quoted(bot: FaqBot) -> None:
    entries = bot.kb.entries
    invite = bot.kb.by_id[INVITE]
    history = [ChatTurn("user", "add a colleague?"), ChatTurn("assistant", invite.answer)]
    assert previous_entry(history, entries) == invite
    assert previous_entry([*history, ChatTurn("user", "hm")], entries) == invite
    llm_words = [ChatTurn("user", "x"), ChatTurn("assistant", "In short: Settings > Users.")]
    assert previous_entry(llm_words, entries) is None
    assert previous_entry([], entries) is None


async def test_follow_ups_through_the_api_with_the_conversation_token(
    bot: FaqBot, make_settings: Any
) -> None:
    api = create_api(lambda: bot, RateLimiter(1000, 60), make_settings(), ConversationStore())
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        first = (await client.post("/chat", json={"question": "How do I add a colleague?"})).json()
        assert first["sources"][0]["id"] == INVITE
        ids = {k: first[k] for k in ("conversation_id", "conversation_token")}
        second = await client.post("/chat", json={"question": "and how do I remove one?", **ids})
        body = second.json()
    assert body["outcome"] == "answered"
    assert body["sources"][0]["id"] == REMOVE
