"""The YAML FAQ format (entries with keywords, alternate questions and file metadata).

    category: sales            # optional; must equal the file stem
    version: "1.0"
    last_updated: "2026-01-15"
    metadata: {description: "...", contact: "..."}
    entries:
      - question: "Do you offer discounts?"
        alternate_questions: ["Is there a discount for paying yearly?"]
        answer: "Yes, we offer a 20% discount for annual subscriptions on all plans."
        keywords: ["discount", "annual"]
        id: sales-annual-discount  # optional explicit stable id

The file is walked as YAML nodes so that every problem names its line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from faqbot.errors import FaqProblem
from faqbot.knowledge.ids import ENTRY_ID_PATTERN
from faqbot.knowledge.text_format import RawEntry, RawFile

TOP_KEYS = {"category", "version", "last_updated", "metadata", "entries"}
ENTRY_KEYS = {"question", "answer", "keywords", "alternate_questions", "id"}


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _scalar(node: yaml.Node, path: Path, what: str, problems: list[FaqProblem]) -> str | None:
    if not isinstance(node, yaml.ScalarNode):
        problems.append(FaqProblem(path, _line(node), f"{what} must be a string"))
        return None
    return str(node.value).strip()


def _string_list(node: yaml.Node, path: Path, what: str, problems: list[FaqProblem]) -> list[str]:
    if not isinstance(node, yaml.SequenceNode):
        problems.append(FaqProblem(path, _line(node), f"{what} must be a list of strings"))
        return []
    out = []
    for item in node.value:
        value = _scalar(item, path, f"each item of {what}", problems)
        if value:
            out.append(value)
    return out


def _mapping(
    node: yaml.Node, path: Path, problems: list[FaqProblem]
) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Key -> (key node, value node); a repeated key is a problem, not a silent overwrite."""
    assert isinstance(node, yaml.MappingNode)
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for k, v in node.value:
        key = str(k.value)
        if key in out:
            first = _line(out[key][0])
            problems.append(
                FaqProblem(path, _line(k), f"duplicate key {key!r} (first at line {first})")
            )
        out[key] = (k, v)
    return out


def _parse_entry(node: yaml.Node, path: Path, problems: list[FaqProblem]) -> RawEntry | None:
    if not isinstance(node, yaml.MappingNode):
        problems.append(FaqProblem(path, _line(node), "each entry must be a mapping"))
        return None
    fields = _mapping(node, path, problems)
    for key, (key_node, _) in fields.items():
        if key not in ENTRY_KEYS:
            allowed = ", ".join(sorted(ENTRY_KEYS))
            problems.append(
                FaqProblem(path, _line(key_node), f"unknown entry key {key!r} (allowed: {allowed})")
            )
    question = (
        _scalar(fields["question"][1], path, "question", problems) if "question" in fields else None
    )
    answer = _scalar(fields["answer"][1], path, "answer", problems) if "answer" in fields else None
    if not question:
        problems.append(FaqProblem(path, _line(node), "entry has no question"))
        return None
    if not answer:
        problems.append(FaqProblem(path, _line(node), f"question has no answer: {question!r}"))
        return None
    entry = RawEntry(question=question, answer=answer, line=_line(node))
    if "keywords" in fields:
        entry.keywords = _string_list(fields["keywords"][1], path, "keywords", problems)
    if "alternate_questions" in fields:
        entry.alternate_questions = _string_list(
            fields["alternate_questions"][1], path, "alternate_questions", problems
        )
    if "id" in fields:
        entry.entry_id = _scalar(fields["id"][1], path, "id", problems)
        if entry.entry_id is not None and not re.match(ENTRY_ID_PATTERN, entry.entry_id):
            problems.append(
                FaqProblem(
                    path,
                    _line(fields["id"][1]),
                    f"invalid id {entry.entry_id!r}: "
                    "use letters, digits, '-', '_' or '.' (max 120)",
                )
            )
            entry.entry_id = None
    return entry


def parse_yaml(path: Path, text: str, problems: list[FaqProblem]) -> RawFile:
    """Parse the YAML format, appending every problem found (with its line) to `problems`."""
    result = RawFile()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else 1
        problems.append(FaqProblem(path, line, f"invalid YAML: {exc.problem or exc}"))
        return result
    except yaml.reader.ReaderError as exc:  # e.g. a control character YAML does not allow
        line = text[: exc.position].count("\n") + 1
        problems.append(FaqProblem(path, line, f"invalid YAML: {exc.reason} {exc.character!r}"))
        return result
    if root is None:
        problems.append(FaqProblem(path, 1, "file is empty"))
        return result
    if not isinstance(root, yaml.MappingNode):
        problems.append(FaqProblem(path, _line(root), "top level must be a mapping with 'entries'"))
        return result
    top = _mapping(root, path, problems)
    for key, (key_node, _) in top.items():
        if key not in TOP_KEYS:
            allowed = ", ".join(sorted(TOP_KEYS))
            problems.append(
                FaqProblem(
                    path, _line(key_node), f"unknown top-level key {key!r} (allowed: {allowed})"
                )
            )
    for name in ("category", "version", "last_updated"):
        if name in top:
            value = _scalar(top[name][1], path, name, problems) or ""
            setattr(result, name, value)
    if "category" in top:
        result.category_line = _line(top["category"][1])
    if "metadata" in top:
        meta_node = top["metadata"][1]
        if isinstance(meta_node, yaml.MappingNode):
            loader = yaml.SafeLoader("")
            data: Any = loader.construct_mapping(meta_node, deep=True)
            result.metadata = {str(k): str(v) for k, v in data.items()}
        else:
            problems.append(FaqProblem(path, _line(meta_node), "metadata must be a mapping"))
    if "entries" not in top:
        problems.append(FaqProblem(path, 1, "missing 'entries' list"))
        return result
    entries_node = top["entries"][1]
    if not isinstance(entries_node, yaml.SequenceNode):
        problems.append(FaqProblem(path, _line(entries_node), "'entries' must be a list"))
        return result
    for item in entries_node.value:
        entry = _parse_entry(item, path, problems)
        if entry is not None:
            result.entries.append(entry)
    return result
