"""The plain-text FAQ format: an optional title line, then `Q:` / `A:` blocks.

    SALES FAQ

    Q: Do you offer discounts for annual subscriptions?
    A: Yes, we offer a 20% discount for annual subscriptions on all plans.
       Answers may continue on the following lines.

Lines starting with `#` are comments. A question may also span lines until its `A:`.
Lines end at LF, CRLF or CR (as editors count them, so a problem's line is the one shown);
control characters (NUL, escape codes...) are refused on their line, as YAML refuses them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from faqbot.errors import FaqProblem

LINE_BREAK = re.compile(r"\r\n|\r|\n")
# What YAML calls non-printable (yaml.reader.Reader.NON_PRINTABLE): C0 and C1 controls except
# tab and line breaks, DEL, surrogates and U+FFFE/U+FFFF.
NON_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass
class RawEntry:
    """An entry as parsed, before ids and cross-file checks."""

    question: str
    answer: str
    line: int
    alternate_questions: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    entry_id: str | None = None
    related: list[tuple[str, int]] = field(default_factory=list)  # (question or id, line)


@dataclass
class RawFile:
    """A parsed file: its entries plus optional file-level metadata."""

    entries: list[RawEntry] = field(default_factory=list)
    title: str = ""
    category: str | None = None
    category_line: int = 1
    version: str = ""
    last_updated: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


def parse_text(path: Path, text: str, problems: list[FaqProblem]) -> RawFile:
    """Parse the Q:/A: format, appending every problem found (with its line) to `problems`."""
    result = RawFile()
    q_lines: list[str] = []
    a_lines: list[str] | None = None
    q_start = 0
    seen_block = False

    def flush(at_line: int) -> None:
        nonlocal q_lines, a_lines
        if not q_lines:
            return
        question = " ".join(q_lines).strip()
        if not question:
            problems.append(FaqProblem(path, q_start, "empty question after 'Q:'"))
        elif a_lines is None:
            problems.append(FaqProblem(path, q_start, f"question has no answer: {question!r}"))
        else:
            answer = "\n".join(a_lines).strip()
            if not answer:
                problems.append(FaqProblem(path, q_start, f"empty answer for {question!r}"))
            else:
                result.entries.append(RawEntry(question=question, answer=answer, line=q_start))
        q_lines, a_lines = [], None

    for number, raw in enumerate(LINE_BREAK.split(text), start=1):
        if bad := NON_PRINTABLE.search(raw):
            code = f"U+{ord(bad.group()):04X}"
            problems.append(FaqProblem(path, number, f"control character {code} is not allowed"))
        line = raw.strip()
        if line.startswith("#"):
            continue
        if line[:2].upper() == "Q:":
            flush(number)
            seen_block = True
            q_start = number
            q_lines = [line[2:].strip()]
        elif line[:2].upper() == "A:":
            if not q_lines:
                problems.append(FaqProblem(path, number, "answer without a preceding 'Q:' line"))
                continue
            if a_lines is not None:
                problems.append(FaqProblem(path, number, "second 'A:' for the same question"))
                continue
            a_lines = [line[2:].strip()]
        elif not line:
            if a_lines is not None and a_lines != [""]:
                flush(number)
        elif a_lines is not None:
            a_lines.append(line)
        elif q_lines:
            q_lines.append(line)
        elif not seen_block and not result.title:
            result.title = line
        else:
            problems.append(FaqProblem(path, number, f"text outside a Q:/A: block: {line[:60]!r}"))
    flush(0)
    return result
