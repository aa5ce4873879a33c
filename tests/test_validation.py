"""clean_question: the single gate every user message passes through."""

from __future__ import annotations

import unicodedata

import pytest

from faqbot.errors import InputError
from faqbot.validation import clean_question

EMPTY_MESSAGE = "Please type a question - your message was empty."


@pytest.mark.parametrize(
    "text", ["", " ", "\t\n  \n", "\u200b\u200d", "\x00\x07\x1b", "\u202e\u2066\ufeff"]
)
def test_empty_or_whitespace_only_is_rejected_with_a_helpful_message(text: str) -> None:
    with pytest.raises(InputError) as info:
        clean_question(text, max_chars=100)
    assert str(info.value) == EMPTY_MESSAGE
    assert info.value.user_message == EMPTY_MESSAGE
    assert info.value.code == "INVALID_INPUT"


def test_non_string_is_rejected() -> None:
    with pytest.raises(InputError, match=r"^Please send your question as text\.$"):
        clean_question(None, max_chars=100)  # type: ignore[arg-type]


def test_over_max_length_mentions_the_limit() -> None:
    with pytest.raises(InputError) as info:
        clean_question("a" * 1001, max_chars=1000)
    assert str(info.value) == (
        "Your message is too long (1,001 characters). Please keep questions under 1,000 characters."
    )


def test_exactly_max_length_is_accepted() -> None:
    text = "x" * 1000
    assert clean_question(text, max_chars=1000) == text
    assert clean_question("  " + text + "  ", max_chars=1000) == text


def test_length_is_counted_after_cleaning() -> None:
    # Invisible characters do not count against the limit.
    assert clean_question("abc" + "\u200b" * 50, max_chars=3) == "abc"


def test_surrounding_whitespace_is_stripped_and_runs_collapsed() -> None:
    assert clean_question("  How   do\t\tI reset?  ", max_chars=100) == "How do I reset?"


def test_newlines_are_kept() -> None:
    assert clean_question("line one\nline two", max_chars=100) == "line one\nline two"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pass\x00word", "password"),
        ("bell\x07 ring", "bell ring"),
        ("esc\x1b[31mred", "esc[31mred"),
        ("del\x7fete", "delete"),
        ("c1\x85\x9fchars", "c1chars"),
        ("crlf\r\nline", "crlf\nline"),
    ],
)
def test_control_characters_are_removed(text: str, expected: str) -> None:
    assert clean_question(text, max_chars=100) == expected


@pytest.mark.parametrize(
    "char",
    [
        "\u200b",  # zero width space
        "\u200e",  # left-to-right mark
        "\u200f",  # right-to-left mark
        "\ufeff",  # zero width no-break space / BOM
    ],
)
def test_zero_width_characters_are_removed(char: str) -> None:
    assert clean_question(f"re{char}fund{char}", max_chars=100) == "refund"


@pytest.mark.parametrize(
    "text",
    [
        "family \U0001f468\u200d\U0001f469\u200d\U0001f467",  # one emoji via joiners
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian word with a ZWNJ
    ],
)
def test_joiners_that_carry_meaning_are_kept(text: str) -> None:
    assert clean_question(text, max_chars=100) == text


@pytest.mark.parametrize(
    "char",
    ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"],
)
def test_bidi_override_and_isolate_characters_are_removed(char: str) -> None:
    assert clean_question(f"pay{char}ment", max_chars=100) == "payment"


def test_trojan_source_style_text_is_flattened() -> None:
    assert clean_question("price \u202e001$\u202c please", max_chars=100) == "price 001$ please"


def test_nfc_normalisation() -> None:
    decomposed = "Cafe\u0301 cre\u0300me"
    result = clean_question(decomposed, max_chars=100)
    assert result == "Caf\u00e9 cr\u00e8me"
    assert unicodedata.is_normalized("NFC", result)


def test_result_is_nfc_even_after_removing_invisible_characters() -> None:
    result = clean_question("e\u200b\u0301", max_chars=100)
    assert result == "\u00e9"


@pytest.mark.parametrize(
    "text",
    [
        "Do you accept 💳 cards? 🙂",
        "Как сбросить пароль?",
        "パスワードをリセットするには?",
        "كيف أعيد تعيين كلمة المرور؟",
        "पासवर्ड कैसे रीसेट करें?",
        "Ελληνικά: τι κοστίζει;",
        "如何导出报告?",
    ],
)
def test_emoji_and_non_latin_scripts_are_preserved(text: str) -> None:
    assert clean_question(text, max_chars=100) == text


def test_length_limit_counts_characters_not_bytes() -> None:
    text = "é" * 10
    assert clean_question(text, max_chars=10) == text
    with pytest.raises(InputError, match="under 9 characters"):
        clean_question(text, max_chars=9)
