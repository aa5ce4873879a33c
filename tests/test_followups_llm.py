"""Follow-ups on the LLM path when the router is unavailable or skipped (issue 21 item 3):
the offline reading answers, with the same "no repeat" rule as offline mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from faqbot.answering.bot import collect
from faqbot.answering.factory import build_bot
from faqbot.domain import ChatTurn
from tests import fake_openai as fo

pytestmark = pytest.mark.llm

ROOT = Path(__file__).resolve().parent.parent
DISCOUNT_Q = "Do you offer discounts for annual subscriptions?"
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
REFUND = "sales-what-is-your-refund-policy"
HISTORY = [ChatTurn("user", DISCOUNT_Q), ChatTurn("assistant", DISCOUNT)]


def _settings(make_settings: Any, fake_openai: Any, **overrides: Any) -> Any:
    return make_settings(
        faq_dir=ROOT / "faqs",
        openai_api_key="test-key",
        openai_base_url=fake_openai.base_url,
        openai_max_retries=0,
        openai_timeout=2.0,
        llm_budget_seconds=3.0,
        **overrides,
    )


async def test_a_fallback_follow_up_is_not_the_previous_answer_again(
    make_settings: Any, fake_openai: Any
) -> None:
    bot = build_bot(_settings(make_settings, fake_openai))
    fake_openai.script(fo.error(500), fo.error(500))
    result = await collect(bot.answer("and what is your refund policy?", HISTORY))
    assert result.fallback
    assert result.outcome == "answered"
    assert result.sources[0].id == REFUND


async def test_no_repeat_after_an_answer_in_the_models_own_words(
    make_settings: Any, fake_openai: Any
) -> None:
    """The previous answer was written by the model, so it quotes no entry: the entry behind
    it is the one its question finds, and it is not given again for a continuation."""
    bot = build_bot(_settings(make_settings, fake_openai))
    fake_openai.script(fo.error(500), fo.error(500))
    said = [ChatTurn("user", DISCOUNT_Q), ChatTurn("assistant", "20% off if you pay yearly.")]
    result = await collect(bot.answer("and for universities?", said))
    assert result.fallback
    assert result.sources[0].id == "sales-do-you-offer-academic-or-non-profit-pricing"
