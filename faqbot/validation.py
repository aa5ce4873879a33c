"""User input hygiene shared by every face: one place decides what a question may be."""

from __future__ import annotations

import re
import unicodedata

from faqbot.errors import InputError

# C0/C1 controls except tab/newline, zero-width space, directional marks, bidi overrides and
# isolates, BOM, and lone surrogates (half an emoji, from a client's broken JSON escape: no
# UTF-8 text, database or JSON encoder takes them). Zero-width (non-)joiners stay: emoji
# sequences and Persian/Indic words need them.
_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff"
    r"\ud800-\udfff]"
)
# Unicode tag characters (U+E0000-E007F) are invisible, but models read them as ASCII, so they can
# smuggle instructions nobody sees; only subdivision flag emoji use them legitimately. A run of
# them becomes one visible U+FFFD (not nothing: a question of tags alone stays "visible", as the
# API's question pattern, which cannot name astral characters portably, says).
_TAGS = re.compile("[\U000e0000-\U000e007f]+")
_JOINERS = "\u200c\u200d"
_SPACES = re.compile(r"[ \t]+")
EMPTY_QUESTION = "Please type a question - your message was empty."


def too_long(length: int | None, max_chars: int) -> str:
    """What to tell a user whose message is over the limit (its length when known)."""
    size = f" ({length:,} characters)" if length is not None else ""
    return f"Your message is too long{size}. Please keep questions under {max_chars:,} characters."


def strip_invisible(text: str) -> str:
    """`text` without control, bidi and zero-width characters, and with tag runs made visible."""
    return _CONTROL.sub("", _TAGS.sub("\ufffd", text))


def clean_question(text: str, max_chars: int) -> str:
    """Normalise a user's message or raise InputError with a message fit to show them."""
    if not isinstance(text, str):
        raise InputError("Please send your question as text.")
    cleaned = unicodedata.normalize("NFC", strip_invisible(text))  # remove first, then compose
    cleaned = _SPACES.sub(" ", cleaned).strip()
    if not cleaned.strip(_JOINERS + " \n\t"):
        raise InputError(EMPTY_QUESTION)
    if len(cleaned) > max_chars:
        raise InputError(too_long(len(cleaned), max_chars))
    return cleaned
