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
        related: ["What is your refund policy?"]  # optional: up to 3 questions (or ids) to
                                                  # offer after this answer, from any file

The file is walked as YAML nodes so that every problem names its line. Nothing is ever
constructed into Python objects, and the composer is bounded (`BoundedLoader`): nesting depth,
the node count with aliases expanded ("billion laughs" and a big list aliased from every entry),
and tags (only YAML's plain types: `!!python/object` and friends are refused, never built).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import yaml

from faqbot.errors import FaqProblem
from faqbot.knowledge.ids import ENTRY_ID_PATTERN
from faqbot.knowledge.text_format import LINE_BREAK, NON_PRINTABLE, RawEntry, RawFile

TOP_KEYS = {"category", "version", "last_updated", "metadata", "entries"}
ENTRY_KEYS = {"question", "answer", "keywords", "alternate_questions", "id", "related"}
MAX_RELATED = 3  # buttons shown under an answer
# A FAQ file needs depth 4 (top -> entries -> entry -> keywords) and about 10 nodes per entry.
MAX_DEPTH = 16
MAX_NODES = 1_000_000  # counting an alias as the whole subtree it stands for
_CORE = "tag:yaml.org,2002:"
ALLOWED_TAGS = {None, "!"} | {_CORE + t for t in ("str", "int", "float", "bool", "null")}
ALLOWED_TAGS |= {_CORE + "seq", _CORE + "map"}
NULL_TAG = _CORE + "null"
# Errors raised while scanning one of these point past it (often to the end of the file): the
# line at fault is where it started. Context -> what went wrong, said from that line.
_UNCLOSED_QUOTE = "a quoted string that starts on this line is not closed"
_STARTED_HERE = {
    "while scanning a quoted scalar": _UNCLOSED_QUOTE,
    "while scanning a double-quoted scalar": _UNCLOSED_QUOTE,
    "while scanning a single-quoted scalar": _UNCLOSED_QUOTE,
    "while scanning a simple key": "the key on this line is not followed by ':'",
    "while parsing a flow sequence": "a '[' list that starts on this line is not closed",
    "while parsing a flow mapping": "a '{' mapping that starts on this line is not closed",
}


class LimitError(yaml.MarkedYAMLError):
    """The document is too deep, too big once aliases are expanded, or uses a refused tag."""


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses what could exhaust time, memory or the stack."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._sizes: dict[int, int] = {}  # id(node) -> node count of its subtree

    def _refuse(self, problem: str, event: yaml.Event) -> LimitError:
        return LimitError(problem=problem, problem_mark=event.start_mark)  # type: ignore[arg-type]

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            self._count(self._sizes.get(id(node), 1), event)
            return node
        tag: str | None = getattr(event, "tag", None)
        if tag not in ALLOWED_TAGS:
            assert tag is not None
            shown = "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag
            raise self._refuse(
                f"tag {shown!r} is not allowed: FAQ files hold only text, lists and mappings",
                event,
            )
        if not isinstance(event, yaml.CollectionStartEvent):
            self._count(1, event)
            node = super().compose_node(parent, index)
            self._sizes[id(node)] = 1
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise self._refuse(f"nested deeper than {MAX_DEPTH} levels", event)
        before = self._nodes
        self._count(1, event)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._sizes[id(node)] = self._nodes - before
        return node

    def _count(self, nodes: int, event: yaml.Event) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            raise self._refuse(
                f"more than {MAX_NODES:,} values once aliases are expanded "
                "(anchors and aliases must not multiply the file)",
                event,
            )


def compose(text: str) -> yaml.Node | None:
    """The document's node tree (nothing constructed), within BoundedLoader's limits."""
    loader = BoundedLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _runaway_quote(text: str, line: int) -> int | None:
    """The first line of a quoted string that spans lines and ends on `line`, if one does.

    A missing closing quote makes the string run on to the next quote, and the parser fails
    only there, a line or more after the line at fault."""
    last: yaml.Token | None = None
    with contextlib.suppress(yaml.YAMLError):
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.line > line:
                break
            if isinstance(token, yaml.ScalarToken) and token.style in ('"', "'"):
                last = token
    if last is not None and last.end_mark.line == line and last.start_mark.line < line:
        return int(last.start_mark.line)
    return None


def syntax_problem(path: Path, text: str, exc: yaml.MarkedYAMLError) -> FaqProblem:
    """The problem on the line at fault: where an unclosed quote, bracket or key started, not
    where the parser gave up (for an unclosed quote, the end of the file or the next quote)."""
    problem, mark = exc.problem or str(exc), exc.problem_mark or exc.context_mark
    started, where = _STARTED_HERE.get(exc.context or ""), exc.context_mark
    if started and where is not None and mark is not None and where.line != mark.line:
        if started != _UNCLOSED_QUOTE or "unexpected" in problem:
            problem = f"{started} ({problem} at line {mark.line + 1})"
            mark = where
    elif mark is not None and (start := _runaway_quote(text, mark.line)) is not None:
        problem = (
            f"a quoted string that starts on this line runs on to line {mark.line + 1}; "
            f"is its closing quote missing? ({problem} at line {mark.line + 1})"
        )
        return FaqProblem(path, start + 1, f"invalid YAML: {problem}")
    line = int(mark.line) + 1 if mark is not None else 1
    return FaqProblem(path, line, f"invalid YAML: {problem}")


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _scalar(node: yaml.Node, path: Path, what: str, problems: list[FaqProblem]) -> str | None:
    if not isinstance(node, yaml.ScalarNode):
        problems.append(FaqProblem(path, _line(node), f"{what} must be a string"))
        return None
    if node.tag == NULL_TAG:  # `answer: ~` or `answer: null` is no answer, not the word "null"
        return ""
    value = str(node.value)
    if bad := NON_PRINTABLE.search(value):  # written as an escape ("\0"): refused as in text
        code = f"U+{ord(bad.group()):04X}"
        problems.append(FaqProblem(path, _line(node), f"control character {code} is not allowed"))
    return value.strip()


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


def _related(node: yaml.Node, path: Path, problems: list[FaqProblem]) -> list[tuple[str, int]]:
    """The `related:` questions (or ids) with their lines; resolved across files by the loader."""
    if not isinstance(node, yaml.SequenceNode):
        problems.append(FaqProblem(path, _line(node), "related must be a list of questions"))
        return []
    if len(node.value) > MAX_RELATED:
        message = f"related lists {len(node.value)} questions; at most {MAX_RELATED} are shown"
        problems.append(FaqProblem(path, _line(node), message))
    out = []
    for item in node.value[:MAX_RELATED]:
        value = _scalar(item, path, "each item of related", problems)
        if value:
            out.append((value, _line(item)))
    return out


def _mapping(
    node: yaml.Node, path: Path, problems: list[FaqProblem]
) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Key -> (key node, value node); a repeated key is a problem, not a silent overwrite."""
    assert isinstance(node, yaml.MappingNode)
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for k, v in node.value:
        if not isinstance(k, yaml.ScalarNode):
            problems.append(FaqProblem(path, _line(k), "keys must be plain text"))
            continue
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
    if "related" in fields:
        entry.related = _related(fields["related"][1], path, problems)
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
        root = compose(text)
    except LimitError as exc:
        line = int(exc.problem_mark.line) + 1 if exc.problem_mark is not None else 1
        problems.append(FaqProblem(path, line, f"refused YAML: {exc.problem}"))
        return result
    except yaml.MarkedYAMLError as exc:
        problems.append(syntax_problem(path, text, exc))
        return result
    except yaml.reader.ReaderError as exc:  # e.g. a control character YAML does not allow
        line = len(LINE_BREAK.findall(text[: exc.position])) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "?")
        message = f"invalid YAML: control character U+{char:04X} is not allowed"
        problems.append(FaqProblem(path, line, message))
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
            for meta_key, (_, meta_value) in _mapping(meta_node, path, problems).items():
                text_value = _scalar(meta_value, path, f"metadata {meta_key!r}", problems)
                if text_value is not None:
                    result.metadata[meta_key] = text_value
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
