"""The answer cache's key tells different questions apart in every script (issue 22 review):
`normalise_question` folds Chinese, Cyrillic, Greek... to nothing, so two different questions in
one category shared one key and the second got the first's cached LLM answer."""

from __future__ import annotations

from faqbot.state.cache import AnswerCache


def test_questions_in_other_scripts_get_their_own_key() -> None:
    keys = {
        AnswerCache.key("v1", "sales", q)
        for q in ("如何重置密码？", "价格是多少？", "Как сбросить пароль?", "Πόσο κοστίζει;")
    }
    assert len(keys) == 4


def test_the_same_question_in_another_case_or_spacing_shares_its_key() -> None:
    assert AnswerCache.key("v1", "sales", "Как  сбросить пароль?") == AnswerCache.key(
        "v1", "sales", "как сбросить пароль"
    )
    assert AnswerCache.key("v1", "sales", "What is the price?") == AnswerCache.key(
        "v1", "sales", "what is the PRICE"
    )
    assert AnswerCache.key("v1", "sales", "q") != AnswerCache.key("v2", "sales", "q")
