"""Read a FAQ folder: every `*.txt`, `*.yaml`, `*.yml` file is a category named by its stem."""

from __future__ import annotations

import codecs
import dataclasses
import re
from pathlib import Path
from types import MappingProxyType

from faqbot.domain import Category, FaqEntry, KnowledgeBase
from faqbot.errors import FaqFormatError, FaqProblem, KnowledgeError
from faqbot.knowledge.ids import entry_id, question_key
from faqbot.knowledge.text_format import LINE_BREAK, RawFile, parse_text
from faqbot.knowledge.yaml_format import parse_yaml

SUFFIXES = {".txt": parse_text, ".yaml": parse_yaml, ".yml": parse_yaml}
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
EMPTY_FILE = "file is empty"  # the reloader treats an empty file like a missing one (it settles)
MAX_FILE_BYTES = 10 * 1024 * 1024  # a FAQ file is text for people; bigger is a mistake


def _read(path: Path, problems: list[FaqProblem]) -> str | None:
    """The file's text; None when it is unusable (a problem recorded) or gone since listed."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            limit = MAX_FILE_BYTES // (1024 * 1024)
            problems.append(FaqProblem(path, 1, f"file too large ({size:,} bytes; max {limit} MB)"))
            return None
        data = path.read_bytes()
    except FileNotFoundError:  # deleted between the listing and now: the category is missing
        return None
    except OSError as exc:
        problems.append(FaqProblem(path, 1, f"cannot read the file: {exc.strerror or exc}"))
        return None
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        line = len(LINE_BREAK.findall(data[bom : bom + exc.start].decode("utf-8"))) + 1
        problems.append(FaqProblem(path, line, f"not valid UTF-8 (byte {exc.start})"))
        return None
    if not text.strip():
        problems.append(FaqProblem(path, 1, EMPTY_FILE))
        return None
    return text


Related = dict[str, list[tuple[str, int]]]  # entry id -> its `related:` items (text, line)


def parse_file(
    path: Path, problems: list[FaqProblem], related: Related | None = None
) -> Category | None:
    """Parse one FAQ file into a Category, or record why it cannot be used; the entries'
    `related:` items are left in `related`, for check_dir to resolve across files."""
    name = path.stem.lower()
    if not _CATEGORY.match(name):
        problems.append(
            FaqProblem(path, 1, "file name must be a category name: a-z, 0-9, '_' (max 40)")
        )
        return None
    text = _read(path, problems)
    if text is None:
        return None
    before = len(problems)
    raw: RawFile = SUFFIXES[path.suffix.lower()](path, text, problems)
    if raw.category and raw.category.lower() != name:
        problems.append(
            FaqProblem(
                path,
                raw.category_line,
                f"category {raw.category!r} does not match the file name {name!r}",
            )
        )
    if not raw.entries and len(problems) == before:
        problems.append(FaqProblem(path, 1, "no Q:/A: entries found"))
    entries: list[FaqEntry] = []
    used_ids: set[str] = set()
    for r in raw.entries:
        eid = r.entry_id or entry_id(name, r.question)
        if eid in used_ids:
            eid = f"{eid}-{r.line}"
        used_ids.add(eid)
        if r.related and related is not None:
            related[eid] = r.related
        entries.append(
            FaqEntry(
                id=eid,
                category=name,
                question=r.question,
                answer=r.answer,
                alternate_questions=tuple(r.alternate_questions),
                keywords=tuple(r.keywords),
                source=path.name,
                line=r.line,
            )
        )
    return Category(
        name=name,
        entries=tuple(entries),
        path=path,
        description=raw.metadata.get("description", raw.title),
        version=raw.version,
        last_updated=raw.last_updated,
        metadata=MappingProxyType(dict(raw.metadata)),
    )


def is_faq_name(name: str) -> bool:
    """Whether a file of this name is read as a category (hidden files never are)."""
    return not name.startswith(".") and Path(name).suffix.lower() in SUFFIXES


def _faq_files(directory: Path) -> list[Path]:
    try:  # symlinked files count (a ConfigMap mounts `name -> ..data/name`)
        return sorted(p for p in directory.iterdir() if is_faq_name(p.name) and p.is_file())
    except OSError as exc:  # the folder went away while it was read
        raise KnowledgeError(f"cannot read the FAQ folder {directory}: {exc.strerror}") from exc


def check_dir(directory: Path) -> tuple[list[Category], list[FaqProblem]]:
    """Parse every FAQ file in `directory`; return the categories and all problems found."""
    if not directory.is_dir():
        raise KnowledgeError(f"FAQ folder not found: {directory}")
    files = _faq_files(directory)
    if not files:
        raise KnowledgeError(f"no FAQ files (*.txt, *.yaml) in {directory}")
    problems: list[FaqProblem] = []
    categories: list[Category] = []
    owner: dict[str, Path] = {}
    seen_questions: dict[str, tuple[Path, int]] = {}
    seen_ids: dict[str, tuple[Path, int]] = {}
    related: Related = {}
    for path in files:
        category = parse_file(path, problems, related)
        if category is None:
            continue
        if category.name in owner:
            problems.append(
                FaqProblem(
                    path,
                    1,
                    f"category {category.name!r} is also defined by {owner[category.name].name}",
                )
            )
            continue
        owner[category.name] = path
        for e in category.entries:
            if e.id in seen_ids:
                other, other_line = seen_ids[e.id]
                problems.append(
                    FaqProblem(
                        path, e.line, f"duplicate id {e.id!r} (also at {other.name}:{other_line})"
                    )
                )
            seen_ids[e.id] = (path, e.line)
            for text in (e.question, *e.alternate_questions):
                key = question_key(text)
                if key in seen_questions:
                    other, other_line = seen_questions[key]
                    problems.append(
                        FaqProblem(
                            path,
                            e.line,
                            f"duplicate question {text!r} (also at {other.name}:{other_line})",
                        )
                    )
                else:
                    seen_questions[key] = (path, e.line)
        categories.append(category)
    return _link_related(categories, related, problems), problems


def _link_related(
    categories: list[Category], related: Related, problems: list[FaqProblem]
) -> list[Category]:
    """Each entry's `related:` items as entry ids: an item names another entry by its question
    (or an alternate) or its id, in any file; one that names none, or itself, is a problem."""
    if not related:
        return categories
    by_text: dict[str, str] = {}
    for category in categories:
        for e in category.entries:
            by_text.setdefault(e.id, e.id)
            for text in (e.question, *e.alternate_questions):
                by_text.setdefault(question_key(text), e.id)
    linked = []
    for category in categories:
        entries = []
        for e in category.entries:
            ids: list[str] = []
            for text, line in related.get(e.id, ()):
                target = by_text.get(text) or by_text.get(question_key(text))
                if target is None:
                    message = f"related: no entry has the question or id {text!r}"
                    problems.append(FaqProblem(category.path, line, message))
                elif target == e.id:
                    message = f"related: {text!r} is this entry itself"
                    problems.append(FaqProblem(category.path, line, message))
                elif target not in ids:
                    ids.append(target)
            entries.append(dataclasses.replace(e, related=tuple(ids)) if ids else e)
        linked.append(dataclasses.replace(category, entries=tuple(entries)))
    return linked


def load_knowledge_base(directory: Path) -> KnowledgeBase:
    """Load and validate the folder; raise FaqFormatError listing every problem."""
    categories, problems = check_dir(directory)
    if problems:
        raise FaqFormatError(problems)
    return KnowledgeBase.build(categories)
