"""Phrasings learned from visitors (issue 22): validated, applied to a KnowledgeBase, exported.

An owner attaches a real visitor question to an entry as another phrasing, or marks it out of
scope. The rows live in the database (the FAQ folder may be read-only and in git); this module is
the pure part: what a phrasing may be (`clean_phrasing`, checked like FAQ question text), how
attached phrasings join their entries' `alternate_questions` (`apply_learned`, which retrieval
already indexes as extra question vectors and BM25 text), and the YAML export for the repository
(`write_export`: complete category files that `python -m faqbot check` accepts).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from faqbot.domain import Category, FaqEntry, KnowledgeBase
from faqbot.errors import InputError
from faqbot.knowledge.ids import question_key
from faqbot.knowledge.text_format import NON_PRINTABLE
from faqbot.prompts import neutralise
from faqbot.validation import clean_question

Kind = Literal["phrasing", "out_of_scope"]
KINDS: tuple[Kind, ...] = ("phrasing", "out_of_scope")
# A visitor's question is at most MAX_QUESTION_CHARS (1,000) long; an alternate phrasing that
# long is already unusual, longer is a paste, not a question.
MAX_PHRASING_CHARS = 1000
EXPORT_HEADER = (
    "# Written by faqbot's export of learned phrasings (issue 22): the FAQ with the phrasings\n"
    "# owners attached in /admin added to `alternate_questions`. Check it with\n"
    "# `python -m faqbot check <folder>`, then let it replace the category's file.\n"
)


@dataclass(frozen=True, slots=True)
class LearnedPhrasing:
    """One owner decision about a visitor's question: another phrasing of `entry_id`, or out of
    scope (then `entry_id` may be empty). `id`, `created_by`, `created_at` are the store's."""

    entry_id: str
    text: str
    kind: Kind = "phrasing"
    id: str = ""
    created_by: str = ""
    created_at: str = ""


class PhrasingError(InputError, ValueError):
    """The text cannot be used as a phrasing; the message says why, fit to show an owner."""

    code = "INVALID_PHRASING"


def clean_phrasing(text: str, max_chars: int = MAX_PHRASING_CHARS) -> str:
    """The phrasing as it will be stored and indexed: one line, NFC, invisible characters and
    repeated spaces gone; or PhrasingError. Refused as in FAQ files: control characters (a FAQ
    file refuses them on their line); plus what the chat refuses (empty, too long) and what could
    forge the prompt's `<faq_entries>` fence (a visitor wrote it, not the owner)."""
    if not isinstance(text, str):
        raise PhrasingError("A phrasing must be text.")
    if bad := NON_PRINTABLE.search(text):
        raise PhrasingError(f"The phrasing contains control character U+{ord(bad.group()):04X}.")
    try:
        cleaned = clean_question(text, max_chars)
    except InputError as exc:
        raise PhrasingError(f"Cannot use this phrasing: {exc.user_message}") from exc
    cleaned = " ".join(cleaned.split())  # a phrasing is one line, as a FAQ question is
    if neutralise(cleaned) != cleaned:
        raise PhrasingError("The phrasing contains a <faq_entries> tag, which the FAQ refuses.")
    return cleaned


def phrasing_key(text: str) -> str:
    """What makes two phrasings the same: the loader's duplicate key (case, accents and
    punctuation ignored; for text of other scripts, the casefolded words)."""
    return question_key(text)


def _clean_or_none(text: str) -> str | None:
    try:
        return clean_phrasing(text)
    except PhrasingError:
        return None


def learned_alternates(
    kb: KnowledgeBase, learned: Iterable[LearnedPhrasing]
) -> dict[str, list[str]]:
    """Entry id -> the phrasings `apply_learned` adds to it, in the order given.

    Skipped: out-of-scope rows, entries that no longer exist, text that is no longer valid, and
    any phrasing that is already a question or alternate of *any* entry (its own: nothing to
    add; another's: the FAQ's check refuses duplicate questions, and that entry already owns it).
    """
    taken = {phrasing_key(t) for e in kb.entries for t in (e.question, *e.alternate_questions)}
    added: dict[str, list[str]] = {}
    for row in learned:
        if row.kind != "phrasing" or row.entry_id not in kb.by_id:
            continue
        text = _clean_or_none(row.text)
        if text is None or (key := phrasing_key(text)) in taken:
            continue
        taken.add(key)
        added.setdefault(row.entry_id, []).append(text)
    return added


def apply_learned(kb: KnowledgeBase, learned: Sequence[LearnedPhrasing]) -> KnowledgeBase:
    """A new KnowledgeBase whose entries carry their attached phrasings as alternate questions
    (after the file's own, in the order given); `kb` itself when there is nothing to add. The
    version changes with the phrasings (KnowledgeBase.build hashes alternates), so caches keyed
    by it (answer cache, vectors) follow."""
    added = learned_alternates(kb, learned)
    if not added:
        return kb
    return KnowledgeBase.build([_with_alternates(c, added) for c in kb.categories.values()])


def _with_alternates(category: Category, added: Mapping[str, list[str]]) -> Category:
    if not any(e.id in added for e in category.entries):
        return category
    entries = tuple(
        dataclasses.replace(e, alternate_questions=(*e.alternate_questions, *added[e.id]))
        if e.id in added
        else e
        for e in category.entries
    )
    return dataclasses.replace(category, entries=entries)


def out_of_scope_texts(learned: Iterable[LearnedPhrasing]) -> frozenset[str]:
    """The `phrasing_key`s of the questions owners marked out of scope: an exact repeat (case,
    accents, punctuation aside) is refused instead of answered or offered."""
    return frozenset(
        phrasing_key(_clean_or_none(r.text) or r.text) for r in learned if r.kind == "out_of_scope"
    )


# ------------------------------------------------------------------------------------ export


class _Dumper(yaml.SafeDumper):
    """Block lists, answers with line breaks as `|` blocks, never aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def _entry_document(entry: FaqEntry) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": entry.id, "question": entry.question}
    if entry.alternate_questions:
        doc["alternate_questions"] = list(entry.alternate_questions)
    doc["answer"] = entry.answer
    if entry.keywords:
        doc["keywords"] = list(entry.keywords)
    if entry.related:
        doc["related"] = list(entry.related)  # ids: `related:` accepts an entry's id
    return doc


def category_yaml(category: Category) -> str:
    """One category as a complete YAML FAQ file. Every entry keeps its id explicitly (a
    text-format entry's id comes from its question; a YAML `id:` keeps it the same)."""
    doc: dict[str, Any] = {"category": category.name}
    if category.version:
        doc["version"] = category.version
    if category.last_updated:
        doc["last_updated"] = category.last_updated
    metadata = dict(category.metadata)
    if category.description and "description" not in metadata:
        metadata["description"] = category.description
    if metadata:
        doc["metadata"] = metadata
    doc["entries"] = [_entry_document(e) for e in category.entries]
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return EXPORT_HEADER + body


def export_yaml(kb: KnowledgeBase, learned: Sequence[LearnedPhrasing]) -> str:
    """For review (a pull request's description, a diff): per entry id, its question and the
    phrasings learning adds; plus the questions marked out of scope. Not a FAQ file itself:
    `write_export` writes those."""
    added = learned_alternates(kb, learned)
    doc: dict[str, Any] = {
        "learned_phrasings": [
            {
                "id": entry_id,
                "category": kb.entry(entry_id).category,
                "question": kb.entry(entry_id).question,
                "alternate_questions": texts,
            }
            for entry_id, texts in added.items()
        ],
        "out_of_scope": sorted(
            {t for r in learned if r.kind == "out_of_scope" and (t := _clean_or_none(r.text))}
        ),
    }
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def write_export(kb: KnowledgeBase, learned: Sequence[LearnedPhrasing], outdir: Path) -> list[Path]:
    """Write `<category>.yaml` for every category of the FAQ with the learned phrasings applied:
    complete files, so `python -m faqbot check OUTDIR` accepts the folder and each file can
    replace its category's file (.txt or .yaml) in the FAQ folder. Use an empty OUTDIR: any other
    FAQ file in it is read by `check` too. Returns the paths written."""
    applied = apply_learned(kb, learned)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for category in applied.categories.values():
        path = outdir / f"{category.name}.yaml"
        path.write_text(category_yaml(category), encoding="utf-8")
        written.append(path)
    return written
