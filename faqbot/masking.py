"""Masking of e-mail addresses and phone numbers (MASK_PII): pure text in, text out.

Used on what faqbot stores of a user's words (questions, router inputs) and on every log event.
Best effort and deliberately conservative about phone numbers: a run of 7 to 15 digits counts as
one only when it is written like a phone number (a leading `+`, `00`, `0` or `(`; digit groups
joined by dashes, dots or slashes; or, joined by spaces only, 10 digits or more in groups of at
least 3), and dates, year ranges, times, prices, IP addresses and version numbers are left
alone. Known limits: a number range such as `100-1000` is masked, and a 7-digit local number
written with a space (`555 1234`) is not. Masking is idempotent: the
placeholders contain no digit and no `@`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"

# local@domain.tld: the local part allows what people type (dots, plus tags, dashes); the domain
# needs at least one dot. Unicode letters are allowed on both sides (internationalised mail).
_EMAIL = re.compile(
    r"(?<![\w.+%-])[\w.+%-]*\w@[^\W_](?:[\w-]*[^\W_])?(?:\.[^\W_](?:[\w-]*[^\W_])?)+",
    re.UNICODE,
)
# A candidate phone number: optional + / 00 prefix, then digit groups with single separators.
_PHONE = re.compile(
    r"(?<![\w+.,/:-])(?:\+|\b00)?\(?\d++\)?"  # prefix, first group
    r"(?:(?:[ \t.\-/]|\)\s?)?\(?\d++\)?){0,7}"  # more groups (digits are possessive: linear)
    r"(?![\w/-]|[.,:]\d)"  # not glued to a word, a path or a decimal
)
# A candidate starting with a date or a year range is not a phone number.
_DATE = re.compile(
    r"(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}"
    r"|(?:19|20)\d{2}\s?[-/]\s?(?:19|20)?\d{2})(?!\d)"
)
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
MIN_DIGITS, MAX_DIGITS, BARE_DIGITS = 7, 15, 10


def _phone_or_keep(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(ch.isdigit() for ch in text)
    if not MIN_DIGITS <= digits <= MAX_DIGITS:
        return text
    if _DATE.match(text.strip("()")) or _IPV4.fullmatch(text):
        return text
    separators = re.findall(r"[^\d]+", text.lstrip("+("))
    if "." in text and any(s.isspace() for s in separators):
        return text  # a version or decimal followed by another number ("2.12.0 20")
    if re.match(r"\+|\(|0[1-9]|00[1-9]", text):  # international, area code, trunk prefix
        return PHONE_MASK
    groups = re.split(r"[^\d]+", text)
    if all(sep.isspace() for sep in separators):
        # Numbers side by side ("100 1000") are usually just numbers: only long runs of
        # 3-digit-or-longer groups (555 123 4567) or one long run (5551234567) count.
        long_run = digits >= BARE_DIGITS
        return PHONE_MASK if long_run and all(len(g) >= 3 for g in groups) else text
    return PHONE_MASK  # digit groups joined by dashes, dots or slashes: 555-1234


def mask_pii(text: str) -> str:
    """`text` with e-mail addresses replaced by [email] and phone numbers by [phone]."""
    if not text:
        return text
    masked = _EMAIL.sub(EMAIL_MASK, text) if "@" in text else text
    if sum(ch.isdigit() for ch in masked) >= MIN_DIGITS:
        masked = _PHONE.sub(_phone_or_keep, masked)
    return masked


def mask_value(value: Any) -> Any:
    """Strings masked; lists, tuples and dicts masked inside; anything else unchanged."""
    if isinstance(value, str):
        return mask_pii(value)
    if isinstance(value, Mapping):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_value(v) for v in value)
    return value


def mask_log_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: every string in the event (message and fields) masked."""
    for key, value in event.items():
        event[key] = mask_value(value)
    return event
