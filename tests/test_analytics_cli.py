"""`python -m faqbot report | delete-user | retention` on the app's database (same settings).

The commands run in process (`main(argv)`; logging set up afresh per test, as in a new process:
tests/cli_support.py); `report` runs once as a real `python -m faqbot` child as well."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from faqbot.ops.cli import main
from tests.analytics_support import seed_data_dir
from tests.cli_support import fresh_logging
from tests.conftest import ROOT


def _seed(data_dir: Path) -> None:
    seed_data_dir(data_dir)


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """The CLI configures logging once per process: here as in a new one, put back after."""
    with fresh_logging():
        yield


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    _seed(folder)
    monkeypatch.setenv("DATA_DIR", str(folder))
    monkeypatch.setenv("EMBEDDINGS", "off")
    return folder


def test_report_prints_the_unanswered_list_with_counts_first(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--since", "7d"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("faqbot report: ")
    assert "(last 7d)" in lines[0]
    assert lines[2].startswith("Unanswered and low-confidence questions (4 groups")
    header = lines[3].split()
    assert header == ["count", "refused", "suggested", "unsure", "question"]
    assert lines[4].split(maxsplit=4) == ["3", "3", "0", "0", "How do I delete my account?"]
    assert lines[5].strip() == "~ How can I delete my account?"
    assert lines[6].split(maxsplit=4) == ["2", "1", "1", "0", "Do you ship to Canada?"]
    rest = {tuple(line.split(maxsplit=4)) for line in lines[7:9]}
    assert rest == {("1", "0", "1", "0", "Can I pay with PayPal?"),
                    ("1", "0", "0", "1", "Which instruments can I connect?")}  # fmt: skip
    totals = next(line for line in lines if line.startswith("Totals:"))
    assert "11 questions" in totals
    assert "answered 45%" in totals
    assert "p50 70 ms | p95 115 ms" in totals
    assert "tokens 230" in totals
    assert lines.index(totals) > 8  # the list comes first
    assert "By category:" in out
    assert "By day (UTC):" in out
    disliked = out.split("FAQ entries with the most thumbs down:")[1].splitlines()
    assert disliked[2].split()[:3] == ["2", "0", "sales-what-is-your-refund-policy"]
    assert "too vague" in disliked[2]


def test_report_json(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--since", "8w", "--json", "--low-confidence", "0.3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["questions"] == 12
    assert data["low_confidence"] == 0.3
    questions = [g["question"] for g in data["unanswered"]]
    assert "Which instruments can I connect?" not in questions  # 0.4 is not below 0.3
    assert "An old question about invoices?" in questions


def test_report_errors_are_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "empty"))
    assert main(["report"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no database at ")
    assert not (tmp_path / "empty" / "faqbot.db").exists()  # never created empty
    assert main(["report", "--since", "soon"]) == 1
    assert "invalid period 'soon'" in capsys.readouterr().err
    (tmp_path / "empty").mkdir(exist_ok=True)  # (opening the database made the folder)
    sqlite3.connect(tmp_path / "empty" / "faqbot.db").close()  # a file without the tables
    assert main(["report"]) == 1
    assert capsys.readouterr().err.startswith("error: cannot read the database: ")


def _threads(data_dir: Path) -> list[tuple[str | None, str]]:
    with sqlite3.connect(data_dir / "faqbot.db") as con:
        return sorted(con.execute('SELECT "userIdentifier", "createdAt" FROM threads').fetchall(),
                      key=str)  # fmt: skip


def test_delete_user(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No app runs here to re-read the revocations, so no wait for one (REFRESH_S + 0.5 s, twice):
    # tests/test_signin_sessions.py runs the real command, waiting, against a running app.
    monkeypatch.setattr("faqbot.store.revocations.REFRESH_S", 0.0)
    assert [u for u, _ in _threads(data_dir)].count("bob") == 2
    assert main(["delete-user", "bob"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("user 'bob': ")
    assert "2 threads" in out
    assert "1 users" in out
    assert sorted(str(u) for u, _ in _threads(data_dir)) == ["None", "alice"]
    assert main(["delete-user", "bob"]) == 0
    assert "0 rows deleted" in capsys.readouterr().out


def test_retention_command(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["retention"]) == 0
    assert "keep forever" in capsys.readouterr().out
    monkeypatch.setenv("RETENTION_DAYS", "30")
    assert main(["retention"]) == 0
    assert "retention (30 days): " in capsys.readouterr().out
    cutoff = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%d")
    assert len(_threads(data_dir)) == 3
    assert all(created[:10] > cutoff for _, created in _threads(data_dir))
    assert main(["retention", "--days", "2"]) == 0
    assert len(_threads(data_dir)) == 2  # the API conversation started 5 days ago


def test_report_runs_as_a_module(data_dir: Path) -> None:
    """The documented command, in a fresh process reading DATA_DIR from the environment."""
    done = subprocess.run(
        [sys.executable, "-m", "faqbot", "report", "--since", "7d"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "How do I delete my account?" in done.stdout
