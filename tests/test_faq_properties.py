"""Property-based tests of the FAQ parsers (issue 14, item 3): whatever bytes a FAQ folder holds,
loading it either succeeds or reports problems that name the file and a line of it; it never
raises anything but the documented KnowledgeError / FaqFormatError, and never takes unbounded
time or memory (YAML alias bombs, deep nesting, tags that would build objects are refused).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from faqbot.errors import FaqFormatError, FaqProblem, KnowledgeError
from faqbot.knowledge import check_dir, load_knowledge_base, parse_file
from faqbot.knowledge.loader import MAX_FILE_BYTES
from faqbot.knowledge.text_format import parse_text
from faqbot.knowledge.yaml_format import MAX_DEPTH, MAX_NODES, parse_yaml

# Modest and bounded: each example parses at most a few KB; a deadline catches a blow-up.
FUZZ = settings(
    max_examples=150,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FEW = settings(FUZZ, max_examples=25)
SUFFIXES = [".txt", ".yaml"]
LINE_ENDS = ["\n", "\r\n", "\r"]
BREAKS = re.compile(r"\r\n|\r|\n|\x85|\u2028|\u2029")  # every line break YAML counts

# Characters that steer both parsers into their interesting paths.
SYNTAX = [*list(":-[]{}&*!|>'\"#\n\r\t ?,%@`~\\"), "Q:", "A:", "q:", "\x00", "\ufeff", "\u2028"]
syntax_soup = st.lists(
    st.sampled_from([*SYNTAX, "entries", "question", "answer", "x"]), max_size=80
)
any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=1500)  # surrogates too
# Questions and answers as people write them: any visible text (one line for the text format).
words = st.text(
    alphabet=st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"), exclude_characters="#"),
    min_size=1,
    max_size=60,
).filter(lambda s: s.strip() and s.strip()[:2].upper() not in {"Q:", "A:"})
entries = st.lists(st.tuples(words, words), min_size=1, max_size=8, unique_by=lambda e: e[0])


def max_line(text: str) -> int:
    return len(BREAKS.findall(text)) + 1


def assert_problems_name_a_line(problems: list[FaqProblem], path: Path, text: str) -> None:
    for problem in problems:
        assert problem.path == path
        assert 1 <= problem.line <= max_line(text), (problem, text)
        assert problem.message
        assert "\n" not in problem.message.rstrip()


def write(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def load(folder: Path) -> list[FaqProblem]:
    """The problems of loading `folder`; only the documented errors may escape."""
    try:
        load_knowledge_base(folder)
    except FaqFormatError as exc:
        problems = exc.problems
    except KnowledgeError:
        return []
    else:
        return []
    assert problems
    return problems


# --- Anything at all -----------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=3000), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_load_or_report_problems(tmp_path: Path, data: bytes, suffix: str) -> None:
    folder = tmp_path / "faqs"
    path = write(folder, f"fuzz{suffix}", data)
    problems: list[FaqProblem] = []
    category = parse_file(path, problems)
    assert (category is None) or bool(category.entries) or problems
    text = data.decode("utf-8", "replace")
    assert_problems_name_a_line(problems, path, text)
    load(folder)


@FUZZ
@given(text=any_text)
def test_any_unicode_text_never_raises_from_either_parser(text: str) -> None:
    for parse, path in ((parse_text, Path("f.txt")), (parse_yaml, Path("f.yaml"))):
        problems: list[FaqProblem] = []
        parsed = parse(path, text, problems)
        assert_problems_name_a_line(problems, path, text)
        for entry in parsed.entries:
            assert entry.question.strip()
            assert entry.answer.strip()
            assert 1 <= entry.line <= max_line(text)


@FUZZ
@given(tokens=syntax_soup, suffix=st.sampled_from(SUFFIXES))
def test_syntax_soup_loads_or_reports_problems(
    tmp_path: Path, tokens: list[str], suffix: str
) -> None:
    text = " ".join(tokens)
    folder = tmp_path / "faqs"
    path = write(folder, f"soup{suffix}", text.encode("utf-8"))
    problems: list[FaqProblem] = []
    parse_file(path, problems)
    assert_problems_name_a_line(problems, path, text)
    load(folder)


# --- Valid files round-trip, whatever the line ends and BOM --------------------------------------


def as_text(items: list[tuple[str, str]], end: str) -> str:
    return end.join(f"Q: {q}{end}A: {a}{end}" for q, a in items)


def as_yaml(items: list[tuple[str, str]], end: str) -> str:
    doc = {"entries": [{"question": q, "answer": a} for q, a in items]}
    return yaml.safe_dump(doc, allow_unicode=True, width=40).replace("\n", end)


def stripped(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(q.strip(), a.strip()) for q, a in items]


@FUZZ
@given(
    items=entries,
    end=st.sampled_from(LINE_ENDS),
    bom=st.booleans(),
    suffix=st.sampled_from(SUFFIXES),
)
def test_valid_files_round_trip_with_any_line_ends_and_bom(
    tmp_path: Path, items: list[tuple[str, str]], end: str, bom: bool, suffix: str
) -> None:
    text = (as_text if suffix == ".txt" else as_yaml)(items, end)
    folder = tmp_path / "faqs"
    path = write(folder, f"cat{suffix}", (b"\xef\xbb\xbf" if bom else b"") + text.encode())
    problems: list[FaqProblem] = []
    category = parse_file(path, problems)
    if any(p.message.startswith("duplicate") for p in problems):
        return
    assert problems == []
    assert category is not None
    assert [(e.question, e.answer) for e in category.entries] == stripped(items)


@FUZZ
@given(
    items=st.lists(st.tuples(words, words), min_size=2, max_size=6, unique_by=lambda e: e[0]),
    at=st.integers(min_value=0, max_value=5),
    end=st.sampled_from(LINE_ENDS),
    char=st.sampled_from(["\x00", "\x07", "\x1b", "\x7f", "\x9b"]),
)
def test_a_control_character_is_reported_on_its_line(
    items: list[tuple[str, str]], at: int, end: str, char: str
) -> None:
    """NUL and other control bytes (which PostgreSQL text refuses) never reach an entry."""
    for suffix, render in ((".txt", as_text), (".yaml", as_yaml)):
        lines = render(items, "\n").split("\n")
        index = at % (len(lines) - 1)
        lines[index] += char
        text = end.join(lines)
        problems: list[FaqProblem] = []
        (parse_text if suffix == ".txt" else parse_yaml)(Path("f" + suffix), text, problems)
        assert problems, (suffix, text)
        assert problems[0].line == index + 1, (suffix, problems, text)
        assert "U+" in problems[0].message or "#x" in problems[0].message


@FEW
@given(items=entries, char=st.sampled_from(["\\0", "\\a", "\\e", "\\x1b", "\\x7f"]))
def test_yaml_escapes_cannot_smuggle_control_characters(
    items: list[tuple[str, str]], char: str
) -> None:
    text = as_yaml(items, "\n") + f'- question: "Smuggled{char}?"\n  answer: "Yes."\n'
    problems: list[FaqProblem] = []
    parse_yaml(Path("f.yaml"), text, problems)
    assert [p.line for p in problems] == [text.count("\n") - 1]
    assert "control character" in problems[0].message


# --- YAML: structures that would cost time, memory or the stack ----------------------------------


def laughs(levels: int, width: int) -> str:
    """The "billion laughs": each level an anchored list of `width` aliases of the one before."""
    lines = ["metadata:", '  l0: &l0 ["lol"]']
    for n in range(1, levels + 1):
        aliases = ", ".join([f"*l{n - 1}"] * width)
        lines.append(f"  l{n}: &l{n} [{aliases}]")
    lines += ["entries:", "  - question: Q?", "    answer: A.", f"    keywords: *l{levels}"]
    return "\n".join(lines) + "\n"


@FEW
@given(levels=st.integers(8, 40), width=st.integers(6, 12))
def test_alias_bombs_are_refused_quickly(levels: int, width: int) -> None:
    problems: list[FaqProblem] = []
    parse_yaml(Path("bomb.yaml"), laughs(levels, width), problems)
    assert len(problems) == 1
    assert problems[0].message.startswith("refused YAML: more than")
    assert "aliases" in problems[0].message


def test_a_big_list_aliased_from_every_entry_is_refused() -> None:
    """Quadratic, not exponential: 20k keywords referenced by 20k entries (~250 KB)."""
    keywords = ", ".join(f"k{i}" for i in range(20_000))
    entries_text = "".join(
        f"  - {{question: Q{i}, answer: A., keywords: *kw}}\n" for i in range(20_000)
    )
    text = f"metadata:\n  kw: &kw [{keywords}]\nentries:\n{entries_text}"
    problems: list[FaqProblem] = []
    parse_yaml(Path("wide.yaml"), text, problems)
    assert len(problems) == 1
    assert f"more than {MAX_NODES:,}" in problems[0].message


def test_a_modest_reuse_of_anchors_is_fine() -> None:
    text = (
        "entries:\n"
        "  - question: Q1?\n    answer: A.\n    keywords: &kw [billing, invoice]\n"
        "  - question: Q2?\n    answer: B.\n    keywords: *kw\n"
    )
    problems: list[FaqProblem] = []
    parsed = parse_yaml(Path("f.yaml"), text, problems)
    assert problems == []
    assert [e.keywords for e in parsed.entries] == [["billing", "invoice"]] * 2


@FEW
@given(
    depth=st.integers(MAX_DEPTH + 1, 20_000),
    shape=st.sampled_from(["flow-seq", "flow-map", "block-seq", "block-map"]),
)
@example(depth=100_000, shape="flow-seq")
def test_deep_nesting_is_refused_not_a_recursion_error(depth: int, shape: str) -> None:
    if shape == "flow-seq":
        value = "[" * depth + "]" * depth
    elif shape == "flow-map":
        value = "{a: " * depth + "x" + "}" * depth
    elif shape == "block-seq":
        depth = min(depth, 400)  # indentation grows with depth: keep the file a few hundred KB
        value = "\n" + "".join("  " * (i + 2) + "-\n" for i in range(depth)) + "  " * depth + "  x"
    else:
        depth = min(depth, 400)
        value = "\n" + "".join("  " * (i + 2) + "k:\n" for i in range(depth)) + "  " * depth + "  x"
    text = f"entries:\n  - question: Q?\n    answer: A.\n    keywords: {value}\n"
    problems: list[FaqProblem] = []
    parse_yaml(Path("deep.yaml"), text, problems)
    assert [p.message for p in problems] == [f"refused YAML: nested deeper than {MAX_DEPTH} levels"]
    assert 1 <= problems[0].line <= max_line(text)


DANGEROUS_TAGS = [
    "!!python/object/apply:os.system ['touch pwned']",
    "!!python/name:os.system",
    "!!python/object/new:subprocess.Popen [['true']]",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!!timestamp 2026-01-01",
    "!custom thing",
    "!<tag:example.com,2000:x> y",
]


@FUZZ
@given(
    tagged=st.one_of(
        st.sampled_from(DANGEROUS_TAGS),
        st.from_regex(r"![a-z][a-z/:.]{0,20} value", fullmatch=True),
    ),
    where=st.sampled_from(["question", "answer", "keywords", "metadata"]),
)
def test_tags_that_could_build_objects_are_refused(tmp_path: Path, tagged: str, where: str) -> None:
    entry = {"question": "Q?", "answer": "A.", "keywords": "[x]"}
    meta = "description: d"
    if where == "metadata":
        meta = f"description: {tagged}"
    else:
        entry[where] = tagged
    text = f"metadata:\n  {meta}\nentries:\n" + "".join(
        f"  {'-' if i == 0 else ' '} {k}: {v}\n" for i, (k, v) in enumerate(entry.items())
    )
    problems: list[FaqProblem] = []
    parse_yaml(Path("tags.yaml"), text, problems)
    expected_line = 2 if where == "metadata" else 4 + list(entry).index(where)
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [
        (expected_line, "refused YAML")
    ]
    assert "is not allowed" in problems[0].message
    assert not (tmp_path / "pwned").exists()


def test_plain_types_and_the_str_tag_are_fine() -> None:
    text = (
        'version: !!str 1.0\nentries:\n  - question: !!str 42\n    answer: "yes"\n'
        "    keywords: [true, 3.5, null, ~]\n"
    )
    problems: list[FaqProblem] = []
    parsed = parse_yaml(Path("f.yaml"), text, problems)
    assert problems == []
    assert (parsed.version, parsed.entries[0].question) == ("1.0", "42")
    assert parsed.entries[0].keywords == ["true", "3.5"]  # null items are no keyword


@pytest.mark.parametrize("empty", ["~", "null", "Null", "''"])
def test_a_null_answer_is_no_answer_not_the_word_null(empty: str) -> None:
    problems: list[FaqProblem] = []
    parse_yaml(Path("f.yaml"), f"entries:\n  - question: Q?\n    answer: {empty}\n", problems)
    assert [(p.line, p.message) for p in problems] == [(2, "question has no answer: 'Q?'")]


@FEW
@given(key=st.sampled_from(["question", "answer", "entries", "id"]), gap=st.integers(0, 5))
def test_duplicate_keys_are_reported_with_both_lines(key: str, gap: int) -> None:
    filler = "".join(f"    keywords{i}: x\n" for i in range(gap))
    if key == "entries":
        text = (
            "entries: []\n"
            + "version: '1'\n" * min(gap, 1)
            + "entries:\n  - {question: Q1, answer: A.}\n"
        )
        first, second = 1, 2 + min(gap, 1)
    else:
        text = f"entries:\n  - question: Q?\n    answer: A.\n    id: x1\n{filler}    {key}: again\n"
        first = {"question": 2, "answer": 3, "id": 4}[key]
        second = 5 + gap
    problems: list[FaqProblem] = []
    parse_yaml(Path("f.yaml"), text, problems)
    dup = [p for p in problems if p.message.startswith("duplicate key")]
    assert [(p.line, p.message) for p in dup] == [
        (second, f"duplicate key {key!r} (first at line {first})")
    ]


def test_non_scalar_keys_are_a_problem_not_a_crash() -> None:
    text = "? [a, b]\n: x\nentries:\n  - {question: Q1, answer: A., ? {k: v} : y}\n"
    problems: list[FaqProblem] = []
    parse_yaml(Path("f.yaml"), text, problems)
    assert [(p.line, p.message) for p in problems] == [
        (1, "keys must be plain text"),
        (4, "keys must be plain text"),
    ]


def test_nested_metadata_is_a_problem_not_a_string_of_python() -> None:
    text = "metadata:\n  contact: {email: a@b.c}\nentries:\n  - {question: Q1, answer: A.}\n"
    problems: list[FaqProblem] = []
    parse_yaml(Path("f.yaml"), text, problems)
    assert [(p.line, p.message) for p in problems] == [(2, "metadata 'contact' must be a string")]


# --- Huge files ----------------------------------------------------------------------------------


def test_multi_megabyte_files_load(tmp_path: Path) -> None:
    """3 MB of text and 1 MB of YAML: loaded whole (the cap is far above real FAQs)."""
    folder = tmp_path / "faqs"
    answer = "An answer long enough to be a realistic paragraph of text for one entry. " * 2
    text = "".join(f"Q: Question number {i}?\nA: {answer}\n\n" for i in range(18_000))
    doc = "".join(
        f'  - question: "Yaml question {i}?"\n    answer: "{answer}"\n' for i in range(5_500)
    )
    write(folder, "big.txt", text.encode())
    write(folder, "bigger.yaml", f"entries:\n{doc}".encode())
    assert len(text) > 3_000_000
    assert len(doc) > 1_000_000
    kb = load_knowledge_base(folder)
    assert kb.counts() == {"big": 18_000, "bigger": 5_500}


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_file_over_the_cap_is_refused_without_reading_it(tmp_path: Path, suffix: str) -> None:
    folder = tmp_path / "faqs"
    folder.mkdir()
    path = folder / f"huge{suffix}"
    with path.open("wb") as f:  # sparse: no disk space, no memory
        f.truncate(MAX_FILE_BYTES + 1)
    _, problems = check_dir(folder)
    assert [(p.path, p.line) for p in problems] == [(path, 1)]
    assert problems[0].message.startswith(f"file too large ({MAX_FILE_BYTES + 1:,} bytes")


# --- YAML syntax errors name the line at fault (issue 14, item 7) --------------------------------

GOOD = [
    "entries:",
    '  - question: "Q1?"',
    '    answer: "A1."',
    '  - question: "Q2?"',
    '    answer: "A2."',
]
# (name, line index in GOOD to break, the broken line); the fault is on that line.
BREAKAGES = [
    ("unclosed double quote", 1, '  - question: "Q1?'),
    ("unclosed single quote", 2, "    answer: 'A1."),
    ("bad indentation", 2, "     answer: A1."),
    ("less indented key", 4, "   answer: A2."),
    ("tab indentation", 2, "\tanswer: A1."),
    ("unclosed bracket", 2, "    answer: [A1., b"),
    ("unclosed brace", 2, "    answer: {a: b"),
    ("missing colon", 2, "    answer A1."),
    ("colon in plain scalar", 2, "    answer: Yes: for annual plans"),
]


@pytest.mark.parametrize(
    ("index", "broken"), [b[1:] for b in BREAKAGES], ids=[b[0] for b in BREAKAGES]
)
@pytest.mark.parametrize("end", LINE_ENDS, ids=["lf", "crlf", "cr"])
def test_yaml_syntax_errors_are_reported_on_the_line_at_fault(
    index: int, broken: str, end: str
) -> None:
    lines = list(GOOD)
    lines[index] = broken
    text = end.join(lines) + end
    problems: list[FaqProblem] = []
    parse_yaml(Path("f.yaml"), text, problems)
    assert [p.line for p in problems[:1]] == [index + 1], problems
    assert problems[0].message.startswith("invalid YAML: ")
