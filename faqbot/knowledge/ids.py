"""Stable entry ids and question normalisation."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_WORD = re.compile(r"[a-z0-9]+")
_ANY_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script
# Ids appear in URLs (/api/faq/<id>) and prompts; explicit YAML ids must match this too.
ENTRY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,119}$"


def normalise_question(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form used to detect duplicates."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return " ".join(_WORD.findall(folded))


def question_key(text: str) -> str:
    """When two questions are the same: `normalise_question`, or for text it folds to nothing
    (Cyrillic, Greek, CJK... have no ASCII letters) the NFKC-casefolded words, so that two such
    questions are not all one empty key."""
    return normalise_question(text) or " ".join(
        _ANY_WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    )


def entry_id(category: str, question: str, max_len: int = 48) -> str:
    """`<category>-<slug>`: readable, stable while the question text stays the same."""
    words = normalise_question(question).split()
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > max_len:
            break
        slug = candidate
    if not slug:
        slug = hashlib.sha1(question.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{category}-{slug}"
