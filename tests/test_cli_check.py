"""`python -m faqbot check [DIR]`: `path:line: message` per problem (exit 1), else `ok` lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from faqbot.ops import cli
from tests.conftest import FAQ_DIR, ROOT

BROKEN = Path(__file__).resolve().parent / "data" / "broken"
ENTRY_KEYS = "alternate_questions, answer, id, keywords, question, related"


def broken_problem_lines(folder: Path) -> list[str]:
    return [
        f"{folder / 'latin1.txt'}:3: not valid UTF-8 (byte 24)",
        f"{folder / 'missing_answer.txt'}:6: question has no answer: 'Is there a free trial?'",
        f"{folder / 'missing_answer.txt'}:11: "
        "text outside a Q:/A: block: 'This line is outside any Q:/A: block.'",
        f"{folder / 'syntax_error.yaml'}:4: invalid YAML: mapping values are not allowed here",
        f"{folder / 'unknown_key.yaml'}:6: unknown entry key 'tags' (allowed: {ENTRY_KEYS})",
    ]


def test_check_on_broken_folder_prints_every_problem_and_returns_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["check", str(BROKEN)])
    out, err = capsys.readouterr()

    assert code == 1
    assert out.splitlines() == broken_problem_lines(BROKEN)
    assert err.splitlines() == [f"5 problem(s) in {BROKEN}"]
    assert "ok " not in out


def test_check_on_valid_folder_prints_ok_per_file_and_returns_0(
    small_faq_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["check", str(small_faq_dir)])
    out, err = capsys.readouterr()

    assert code == 0
    assert out.splitlines() == [
        "ok  labs.txt: 3 entries (labs)",
        "ok  reports.yaml: 2 entries (reports)",
        "ok  sales.txt: 4 entries (sales)",
    ]
    assert err == ""


def test_check_defaults_to_faq_dir_setting(
    small_faq_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAQ_DIR", str(small_faq_dir))
    assert cli.main(["check"]) == 0
    assert capsys.readouterr().out.count("ok  ") == 3


def test_check_on_missing_folder_returns_1_with_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    assert cli.main(["check", str(missing)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"error: FAQ folder not found: {missing}"]


def test_check_on_folder_without_faq_files_returns_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["check", str(empty)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: no FAQ files (*.txt, *.yaml) in {empty}"
    ]


def test_check_with_invalid_config_returns_1_naming_the_variable(
    small_faq_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORT", "abc")
    assert cli.main(["check", str(small_faq_dir)]) == 1
    assert "PORT: " in capsys.readouterr().err


def test_check_on_repo_faqs_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(p for p in FAQ_DIR.glob("*") if p.suffix in {".txt", ".yaml", ".yml"})
    if not files:
        pytest.skip("faqs/ has no FAQ files yet")
    code = cli.main(["check", str(FAQ_DIR)])
    out, err = capsys.readouterr()

    assert code == 0, out + err
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"ok  {p.name}" for p in files]


def test_python_m_faqbot_check_subprocess_exits_1_on_broken_folder() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    proc = subprocess.run(
        [sys.executable, "-m", "faqbot", "check", "tests/data/broken"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == broken_problem_lines(Path("tests/data/broken"))
    assert "5 problem(s) in tests/data/broken" in proc.stderr
