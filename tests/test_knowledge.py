"""FAQ loading: both file formats, every validation problem (file + exact line), KnowledgeBase."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from faqbot.domain import KnowledgeBase
from faqbot.errors import FaqFormatError, FaqProblem, KnowledgeError
from faqbot.knowledge import check_dir, load_knowledge_base, parse_file

ENTRY_KEYS = "alternate_questions, answer, id, keywords, question, related"
TOP_KEYS = "category, entries, last_updated, metadata, version"

SALES_TXT = """\
SALES FAQ

# Pricing questions
Q: What are your pricing plans?
A: We offer three pricing tiers:
Starter ($29/month) and Professional ($79/month).

q: Do you offer discounts for annual subscriptions?
a: Yes, we offer a 20% discount for annual subscriptions on all plans.
"""

REPORTS_YAML = """\
category: reports
version: "2.0"
last_updated: "2026-10-01"
metadata:
  description: "Report building and exports"
  contact: "reports@example.com"
entries:
  - question: "Can I export reports to PDF?"
    alternate_questions: ["How do I download a report as a PDF file?"]
    answer: "Yes. Every report has an Export button with PDF, CSV and Excel options."
    keywords: ["export", "pdf", "download"]
  - question: "Can I schedule reports?"
    answer: "Yes, reports can be emailed daily, weekly or monthly."
    id: reports-scheduling
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "faqs"
    path.mkdir()
    return path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_in(folder: Path) -> list[tuple[str, int, str]]:
    """(file name, line, message) for every problem `check_dir` reports."""
    _, problems = check_dir(folder)
    return [(p.path.name, p.line, p.message) for p in problems]


def parse_one(path: Path) -> tuple[object, list[tuple[str, int, str]]]:
    problems: list[FaqProblem] = []
    category = parse_file(path, problems)
    return category, [(p.path.name, p.line, p.message) for p in problems]


# --- Text format ------------------------------------------------------------------------------


def test_text_file_parses_title_multiline_answer_comments_and_lowercase_markers(
    folder: Path,
) -> None:
    write(folder, "sales.txt", SALES_TXT)
    categories, problems = check_dir(folder)

    assert problems == []
    [sales] = categories
    assert sales.name == "sales"
    assert sales.description == "SALES FAQ"
    assert sales.path == folder / "sales.txt"
    first, second = sales.entries
    assert first.question == "What are your pricing plans?"
    assert first.answer == (
        "We offer three pricing tiers:\nStarter ($29/month) and Professional ($79/month)."
    )
    assert first.line == 4
    assert second.question == "Do you offer discounts for annual subscriptions?"
    assert second.answer == "Yes, we offer a 20% discount for annual subscriptions on all plans."
    assert second.line == 8
    for entry in sales.entries:
        assert entry.category == "sales"
        assert entry.source == "sales.txt"
        assert entry.alternate_questions == ()
        assert entry.keywords == ()
    assert [e.id for e in sales.entries] == [
        "sales-what-are-your-pricing-plans",
        "sales-do-you-offer-discounts-for-annual-subscriptions",
    ]


def test_comment_lines_are_never_part_of_question_or_answer(folder: Path) -> None:
    write(
        folder, "help.txt", "# header comment\nQ: Where?\n# note\nA: Here.\n  # indented\nThere.\n"
    )
    [help_cat], problems = check_dir(folder)
    assert problems == []
    assert help_cat.description == ""
    [entry] = help_cat.entries
    assert (entry.question, entry.answer, entry.line) == ("Where?", "Here.\nThere.", 2)


def test_question_may_span_lines_until_its_answer(folder: Path) -> None:
    write(folder, "help.txt", "Q: How do I\nreset my password?\nA: Use the link.\n")
    [help_cat], problems = check_dir(folder)
    assert problems == []
    assert help_cat.entries[0].question == "How do I reset my password?"


def test_ids_are_stable_when_entries_are_reordered(folder: Path) -> None:
    blocks = [
        "Q: What are your pricing plans?\nA: Three tiers.\n",
        "Q: Is there a free trial?\nA: Yes, 14 days.\n",
        "Q: What is your refund policy?\nA: 30 days.\n",
    ]
    write(folder, "sales.txt", "\n".join(blocks))
    ids_before = {e.question: e.id for e in check_dir(folder)[0][0].entries}
    write(folder, "sales.txt", "\n".join(reversed(blocks)))
    ids_after = {e.question: e.id for e in check_dir(folder)[0][0].entries}

    assert ids_before == ids_after
    assert ids_after["Is there a free trial?"] == "sales-is-there-a-free-trial"


# --- YAML format ------------------------------------------------------------------------------


def test_yaml_file_parses_keywords_alternates_explicit_id_and_metadata(folder: Path) -> None:
    write(folder, "reports.yaml", REPORTS_YAML)
    [reports], problems = check_dir(folder)

    assert problems == []
    assert reports.name == "reports"
    assert reports.version == "2.0"
    assert reports.last_updated == "2026-10-01"
    assert dict(reports.metadata) == {
        "description": "Report building and exports",
        "contact": "reports@example.com",
    }
    assert reports.description == "Report building and exports"
    pdf, schedule = reports.entries
    assert pdf.id == "reports-can-i-export-reports-to-pdf"
    assert pdf.category == "reports"
    assert pdf.alternate_questions == ("How do I download a report as a PDF file?",)
    assert pdf.keywords == ("export", "pdf", "download")
    assert pdf.answer == "Yes. Every report has an Export button with PDF, CSV and Excel options."
    assert pdf.line == 8
    assert pdf.source == "reports.yaml"
    assert schedule.id == "reports-scheduling"
    assert schedule.alternate_questions == ()
    assert schedule.keywords == ()
    assert schedule.line == 12


def test_yml_suffix_is_accepted(folder: Path) -> None:
    write(folder, "misc.yml", "entries:\n  - question: Hi?\n    answer: Hello.\n")
    [misc], problems = check_dir(folder)
    assert problems == []
    assert misc.name == "misc"


def test_yaml_category_must_match_the_file_stem(folder: Path) -> None:
    write(folder, "billing.yaml", "category: sales\nentries:\n  - question: Q?\n    answer: A.\n")
    assert problems_in(folder) == [
        ("billing.yaml", 1, "category 'sales' does not match the file name 'billing'")
    ]


def test_yaml_category_mismatch_names_the_category_line(folder: Path) -> None:
    write(
        folder,
        "billing.yaml",
        "# Billing FAQ\n\ncategory: sales\nentries:\n  - question: Q?\n    answer: A.\n",
    )
    assert problems_in(folder) == [
        ("billing.yaml", 3, "category 'sales' does not match the file name 'billing'")
    ]


def test_invalid_explicit_id_is_reported_on_its_line(folder: Path) -> None:
    write(folder, "misc.yaml", "entries:\n  - question: Q?\n    answer: A.\n    id: 'bad id!'\n")
    assert problems_in(folder) == [
        (
            "misc.yaml",
            4,
            "invalid id 'bad id!': use letters, digits, '-', '_' or '.' (max 120)",
        )
    ]


# --- Problems: each names the file and the exact line -------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", [("f.txt", 1, "file is empty")], id="empty-file"),
        pytest.param(" \n\t\n  \n", [("f.txt", 1, "file is empty")], id="whitespace-only"),
        pytest.param(
            "TITLE\n\nQ: First?\n\nQ: Second?\nA: Two.\n",
            [("f.txt", 3, "question has no answer: 'First?'")],
            id="question-without-answer",
        ),
        pytest.param(
            "Q: One?\nA: One.\n\nQ: Last?\n",
            [("f.txt", 4, "question has no answer: 'Last?'")],
            id="question-without-answer-at-end",
        ),
        pytest.param(
            "Q: One?\nA: One.\n\nA: Orphan answer.\n",
            [("f.txt", 4, "answer without a preceding 'Q:' line")],
            id="answer-without-question",
        ),
        pytest.param(
            "Q: One?\nA: First.\nA: Second.\n",
            [("f.txt", 3, "second 'A:' for the same question")],
            id="second-answer",
        ),
        pytest.param(
            "Q: One?\nA: Yes.\n\nQ: Two?\nA:\n\nQ: Three?\nA: Yes.\n",
            [("f.txt", 4, "empty answer for 'Two?'")],
            id="empty-answer",
        ),
        pytest.param(
            "Q:\nA: Orphan.\n\nQ: Two?\nA: Yes.\n",
            [("f.txt", 1, "empty question after 'Q:'")],
            id="empty-question",
        ),
        pytest.param(
            "TITLE\n\nQ: One?\nA: Yes.\n\nStray paragraph here.\n",
            [("f.txt", 6, "text outside a Q:/A: block: 'Stray paragraph here.'")],
            id="text-outside-block",
        ),
        pytest.param(
            "TITLE\nSubtitle\n\nQ: One?\nA: Yes.\n",
            [("f.txt", 2, "text outside a Q:/A: block: 'Subtitle'")],
            id="second-title-line",
        ),
        pytest.param(
            "JUST A TITLE\n# and a comment\n",
            [("f.txt", 1, "no Q:/A: entries found")],
            id="no-entries",
        ),
    ],
)
def test_text_format_problems(
    folder: Path, text: str, expected: list[tuple[str, int, str]]
) -> None:
    write(folder, "f.txt", text)
    assert problems_in(folder) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            'entries:\n  - question: "Q?"\n    answer: "A."\n  keywords: ["x"]\n',
            [("f.yaml", 4, "invalid YAML: expected <block end>, but found '?'")],
            id="bad-indentation",
        ),
        pytest.param(
            'version: "1.0"\nentries:\n  - question: "Q?"\n    answer: Yes: for annual plans\n',
            [("f.yaml", 4, "invalid YAML: mapping values are not allowed here")],
            id="colon-in-plain-scalar",
        ),
        pytest.param(
            'entries:\n  - question: "Q?"\n    answer: "unterminated\n',
            [
                (
                    "f.yaml",
                    3,
                    "invalid YAML: a quoted string that starts on this line is not closed "
                    "(found unexpected end of stream at line 4)",
                )
            ],
            id="unterminated-quote",
        ),
        pytest.param(
            "# only a comment\n",
            [("f.yaml", 1, "file is empty")],
            id="comment-only",
        ),
        pytest.param(
            "- question: Q?\n  answer: A.\n",
            [("f.yaml", 1, "top level must be a mapping with 'entries'")],
            id="top-level-list",
        ),
        pytest.param(
            "version: '1'\n",
            [("f.yaml", 1, "missing 'entries' list")],
            id="missing-entries",
        ),
        pytest.param(
            "version: '1'\nentries: nope\n",
            [("f.yaml", 2, "'entries' must be a list")],
            id="entries-not-a-list",
        ),
        pytest.param(
            "entries: []\n",
            [("f.yaml", 1, "no Q:/A: entries found")],
            id="empty-entries",
        ),
        pytest.param(
            "version: '1'\nowner: sales-team\nentries:\n  - question: Q?\n    answer: A.\n",
            [("f.yaml", 2, f"unknown top-level key 'owner' (allowed: {TOP_KEYS})")],
            id="unknown-top-level-key",
        ),
        pytest.param(
            "entries:\n  - question: Q?\n    answer: A.\n    tags: [x]\n",
            [("f.yaml", 4, f"unknown entry key 'tags' (allowed: {ENTRY_KEYS})")],
            id="unknown-entry-key",
        ),
        pytest.param(
            "entries:\n  - question: Q1?\n    answer: A.\n  - answer: Orphan.\n",
            [("f.yaml", 4, "entry has no question")],
            id="entry-without-question",
        ),
        pytest.param(
            "entries:\n  - question: Q1?\n    answer: A.\n  - question: Q2?\n    keywords: [x]\n",
            [("f.yaml", 4, "question has no answer: 'Q2?'")],
            id="entry-without-answer",
        ),
        pytest.param(
            "entries:\n  - question: Q1?\n    answer: '  '\n",
            [("f.yaml", 2, "question has no answer: 'Q1?'")],
            id="blank-answer",
        ),
        pytest.param(
            "entries:\n  - question: Q1?\n    answer: A.\n    keywords: export\n",
            [("f.yaml", 4, "keywords must be a list of strings")],
            id="keywords-not-a-list",
        ),
        pytest.param(
            "entries:\n  - question: Q1?\n    answer: A.\n    alternate_questions:\n"
            "      - [nested]\n",
            [("f.yaml", 5, "each item of alternate_questions must be a string")],
            id="alternate-not-a-string",
        ),
        pytest.param(
            "entries:\n  - question: [Q1]\n    answer: A.\n",
            [
                ("f.yaml", 2, "question must be a string"),
                ("f.yaml", 2, "entry has no question"),
            ],
            id="question-not-a-string",
        ),
        pytest.param(
            "entries:\n  - just a string\n",
            [("f.yaml", 2, "each entry must be a mapping")],
            id="entry-not-a-mapping",
        ),
        pytest.param(
            "metadata: [a, b]\nentries:\n  - question: Q1?\n    answer: A.\n",
            [("f.yaml", 1, "metadata must be a mapping")],
            id="metadata-not-a-mapping",
        ),
    ],
)
def test_yaml_format_problems(
    folder: Path, text: str, expected: list[tuple[str, int, str]]
) -> None:
    write(folder, "f.yaml", text)
    assert problems_in(folder) == expected


def test_several_problems_in_one_yaml_file_are_all_reported(folder: Path) -> None:
    write(
        folder,
        "f.yaml",
        "owner: x\n"
        "entries:\n"
        "  - question: Q1?\n"
        "    answer: A.\n"
        "    tags: [x]\n"
        "  - question: Q2?\n"
        "  - answer: no question\n",
    )
    assert problems_in(folder) == [
        ("f.yaml", 1, f"unknown top-level key 'owner' (allowed: {TOP_KEYS})"),
        ("f.yaml", 5, f"unknown entry key 'tags' (allowed: {ENTRY_KEYS})"),
        ("f.yaml", 6, "question has no answer: 'Q2?'"),
        ("f.yaml", 7, "entry has no question"),
    ]


@pytest.mark.parametrize("suffix", [".txt", ".yaml"])
def test_non_utf8_byte_reports_its_line(folder: Path, suffix: str) -> None:
    body = (
        b"TITLE\n\nQ: Caf\xe9 hours?\nA: 9-17.\n"
        if suffix == ".txt"
        else b"entries:\n  - question: Hours?\n    answer: Caf\xe9 opens at 9.\n"
    )
    (folder / f"latin{suffix}").write_bytes(body)
    [(name, line, message)] = problems_in(folder)
    assert (name, line) == (f"latin{suffix}", 3)
    assert message.startswith("not valid UTF-8 (byte ")


def test_utf8_bom_is_accepted(folder: Path) -> None:
    (folder / "bom.txt").write_bytes("\ufeffQ: Café?\nA: Oui.\n".encode())
    [bom], problems = check_dir(folder)
    assert problems == []
    assert bom.entries[0].question == "Café?"


def test_non_utf8_byte_after_a_bom_reports_its_line(folder: Path) -> None:
    (folder / "bom.txt").write_bytes(b"\xef\xbb\xbfT\nQ: x\n\xe9\n")
    [(name, line, message)] = problems_in(folder)
    assert (name, line) == ("bom.txt", 3)
    assert message.startswith("not valid UTF-8")


def test_yaml_control_character_is_a_problem_not_a_crash(folder: Path) -> None:
    write(folder, "f.yaml", 'entries:\n  - question: "Bell\x07?"\n    answer: A.\n')
    [(name, line, message)] = problems_in(folder)
    assert (name, line) == ("f.yaml", 2)
    assert message.startswith("invalid YAML")


def test_duplicate_question_in_one_file(folder: Path) -> None:
    write(folder, "sales.txt", "Q: Is there a trial?\nA: Yes.\n\nQ: Is there a trial?\nA: No.\n")
    assert problems_in(folder) == [
        ("sales.txt", 4, "duplicate question 'Is there a trial?' (also at sales.txt:1)")
    ]


def test_duplicate_question_across_files_ignores_case_and_punctuation(folder: Path) -> None:
    write(folder, "billing.txt", "BILLING\n\nQ: Is there a FREE trial?\nA: Yes.\n")
    write(folder, "sales.txt", "Q: Other?\nA: Yes.\n\nQ: is there a free-trial\nA: Yes.\n")
    assert problems_in(folder) == [
        ("sales.txt", 4, "duplicate question 'is there a free-trial' (also at billing.txt:3)")
    ]


def test_alternate_question_duplicating_another_question_is_reported(folder: Path) -> None:
    write(folder, "account.txt", "Q: How do I reset my password?\nA: Use the link.\n")
    write(
        folder,
        "help.yaml",
        "entries:\n"
        "  - question: Who do I call?\n"
        "    answer: Support.\n"
        "  - question: Forgot my login\n"
        "    alternate_questions: ['How do I reset my password']\n"
        "    answer: Use the link.\n",
    )
    assert problems_in(folder) == [
        (
            "help.yaml",
            4,
            "duplicate question 'How do I reset my password' (also at account.txt:1)",
        )
    ]


def test_same_category_from_txt_and_yaml(folder: Path) -> None:
    write(folder, "sales.txt", "Q: One?\nA: Yes.\n")
    write(folder, "sales.yaml", "entries:\n  - question: Two?\n    answer: Yes.\n")
    categories, problems = check_dir(folder)
    assert [c.path.name for c in categories] == ["sales.txt"]
    assert [(p.path.name, p.line, p.message) for p in problems] == [
        ("sales.yaml", 1, "category 'sales' is also defined by sales.txt")
    ]


@pytest.mark.parametrize(
    "name", ["Bad Name.txt", "1sales.txt", "sales-team.yaml", "x" * 41 + ".txt"]
)
def test_bad_file_name(folder: Path, name: str) -> None:
    write(folder, name, "Q: One?\nA: Yes.\n")
    assert problems_in(folder) == [
        (name, 1, "file name must be a category name: a-z, 0-9, '_' (max 40)")
    ]


def test_hidden_and_other_files_are_ignored(folder: Path) -> None:
    write(folder, "sales.txt", "Q: One?\nA: Yes.\n")
    write(folder, ".draft.txt", "garbage")
    write(folder, "notes.md", "garbage")
    (folder / "sub.txt").mkdir()
    categories, problems = check_dir(folder)
    assert problems == []
    assert [c.name for c in categories] == ["sales"]


def test_folder_without_faq_files_is_a_knowledge_error(folder: Path) -> None:
    write(folder, "readme.md", "not a FAQ")
    with pytest.raises(KnowledgeError, match=r"no FAQ files \(\*\.txt, \*\.yaml\) in "):
        check_dir(folder)
    with pytest.raises(KnowledgeError, match="no FAQ files"):
        load_knowledge_base(folder)


def test_missing_folder_is_a_knowledge_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(KnowledgeError, match=r"FAQ folder not found: .*nope"):
        check_dir(missing)
    with pytest.raises(KnowledgeError) as info:
        load_knowledge_base(missing)
    assert not isinstance(info.value, FaqFormatError)


def test_load_knowledge_base_lists_all_problems_across_files(folder: Path) -> None:
    write(folder, "aaa.txt", "Q: No answer?\n")
    write(folder, "bbb.yaml", "entries:\n  - question: Q?\n    answer: A.\n    tags: [x]\n")
    write(folder, "ccc.txt", "Q: Fine?\nA: Yes.\n\nStray.\n")
    write(folder, "ddd.txt", "")
    with pytest.raises(FaqFormatError) as info:
        load_knowledge_base(folder)

    problems = info.value.problems
    assert [(p.path.name, p.line, p.message) for p in problems] == [
        ("aaa.txt", 1, "question has no answer: 'No answer?'"),
        ("bbb.yaml", 4, f"unknown entry key 'tags' (allowed: {ENTRY_KEYS})"),
        ("ccc.txt", 4, "text outside a Q:/A: block: 'Stray.'"),
        ("ddd.txt", 1, "file is empty"),
    ]
    assert str(info.value) == "\n".join(str(p) for p in problems)
    assert str(problems[0]) == f"{folder / 'aaa.txt'}:1: question has no answer: 'No answer?'"
    assert isinstance(info.value, KnowledgeError)


def test_parse_file_alone_returns_category_and_records_problems(folder: Path) -> None:
    path = write(folder, "help.txt", "Q: One?\nA: Yes.\n\nStray.\n")
    category, problems = parse_one(path)
    assert problems == [("help.txt", 4, "text outside a Q:/A: block: 'Stray.'")]
    assert category is not None
    assert [e.question for e in category.entries] == ["One?"]  # type: ignore[attr-defined]

    bad = write(folder, "Bad Name.txt", "Q: One?\nA: Yes.\n")
    category, problems = parse_one(bad)
    assert category is None
    assert problems == [
        ("Bad Name.txt", 1, "file name must be a category name: a-z, 0-9, '_' (max 40)")
    ]


# --- KnowledgeBase --------------------------------------------------------------------------


def build(folder: Path) -> KnowledgeBase:
    return load_knowledge_base(folder)


def test_knowledge_base_contents_and_counts(folder: Path) -> None:
    write(folder, "sales.txt", SALES_TXT)
    write(folder, "reports.yaml", REPORTS_YAML)
    kb = build(folder)

    assert list(kb.categories) == ["reports", "sales"]
    assert kb.counts() == {"reports": 2, "sales": 2}
    assert len(kb.entries) == 4
    assert [e.id for e in kb] == [e.id for e in kb.entries]
    assert kb.entry("reports-scheduling").question == "Can I schedule reports?"
    with pytest.raises(KeyError):
        kb.entry("reports-nope")
    assert len(kb.version) == 12


def test_knowledge_base_is_immutable(folder: Path) -> None:
    write(folder, "sales.txt", SALES_TXT)
    kb = build(folder)
    sales = kb.categories["sales"]
    entry = sales.entries[0]

    with pytest.raises(dataclasses.FrozenInstanceError):
        kb.version = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.answer = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sales.entries = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        kb.categories["other"] = sales  # type: ignore[index]
    with pytest.raises(TypeError):
        kb.categories["sales"].metadata["x"] = "y"  # type: ignore[index]
    assert isinstance(sales.entries, tuple)


def test_version_is_stable_and_changes_with_an_answer(folder: Path) -> None:
    write(folder, "sales.txt", SALES_TXT)
    write(folder, "reports.yaml", REPORTS_YAML)
    first = build(folder).version
    assert build(folder).version == first

    # A comment or title change does not change the content version.
    write(folder, "sales.txt", "# new comment\n" + SALES_TXT.replace("SALES FAQ", "SALES"))
    assert build(folder).version == first

    write(folder, "sales.txt", SALES_TXT.replace("20% discount", "25% discount"))
    changed = build(folder).version
    assert changed != first

    write(folder, "sales.txt", SALES_TXT)
    assert build(folder).version == first


def test_version_changes_with_keywords(folder: Path) -> None:
    write(folder, "reports.yaml", REPORTS_YAML)
    first = build(folder).version
    write(folder, "reports.yaml", REPORTS_YAML.replace('"download"]', '"download", "print"]'))
    assert build(folder).version != first


def test_duplicate_explicit_id_across_files_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "sales.txt").write_text("Q: Is there a trial?\nA: Yes.\n", encoding="utf-8")
    (tmp_path / "help.yaml").write_text(
        "entries:\n  - id: sales-is-there-a-trial\n    question: Other?\n    answer: No.\n",
        encoding="utf-8",
    )
    _, problems = check_dir(tmp_path)
    assert [(p.path.name, p.line) for p in problems] == [("sales.txt", 1)]
    assert "duplicate id 'sales-is-there-a-trial' (also at help.yaml:2)" in problems[0].message


def test_repeated_yaml_key_is_a_problem_not_an_overwrite(tmp_path: Path) -> None:
    (tmp_path / "f.yaml").write_text(
        "entries:\n  - question: Q?\n    answer: First.\n    answer: Second.\n", encoding="utf-8"
    )
    _, problems = check_dir(tmp_path)
    assert [(p.line, p.message) for p in problems] == [
        (4, "duplicate key 'answer' (first at line 3)")
    ]
