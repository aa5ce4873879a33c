"""Follow-ups on the LLM path when the router is unavailable or skipped (issue 21 item 3):
the offline reading answers, with the same "no repeat" rule as offline mode. In process
(tests/fake_chat_model.py): what is tested is the bot's fallback, not the adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faqbot.answering.bot import collect
from faqbot.answering.factory import build_bot
from faqbot.domain import ChatTurn
from tests import fake_chat_model as fc

ROOT = Path(__file__).resolve().parent.parent
DISCOUNT_Q = "Do you offer discounts for annual subscriptions?"
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
REFUND = "sales-what-is-your-refund-policy"
HISTORY = [ChatTurn("user", DISCOUNT_Q), ChatTurn("assistant", DISCOUNT)]


def _bot(make_settings: Any, model: fc.ScriptedChatModel) -> Any:
    settings = make_settings(faq_dir=ROOT / "faqs", openai_api_key="test-key")
    return build_bot(settings, model=model)


async def test_a_fallback_follow_up_is_not_the_previous_answer_again(make_settings: Any) -> None:
    model = fc.ScriptedChatModel(fc.server_error(), fc.server_error())
    bot = _bot(make_settings, model)
    result = await collect(bot.answer("and what is your refund policy?", HISTORY))
    assert result.fallback
    assert result.outcome == "answered"
    assert result.sources[0].id == REFUND
    model.assert_all_scripted()


async def test_no_repeat_after_an_answer_in_the_models_own_words(make_settings: Any) -> None:
    """The previous answer was written by the model, so it quotes no entry: the entry behind
    it is the one its question finds, and it is not given again for a continuation."""
    model = fc.ScriptedChatModel(fc.server_error(), fc.server_error())
    bot = _bot(make_settings, model)
    said = [ChatTurn("user", DISCOUNT_Q), ChatTurn("assistant", "20% off if you pay yearly.")]
    result = await collect(bot.answer("and for universities?", said))
    assert result.fallback
    assert result.sources[0].id == "sales-do-you-offer-academic-or-non-profit-pricing"
    model.assert_all_scripted()
