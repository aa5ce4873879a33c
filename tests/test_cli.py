"""`python -m faqbot ask` and `eval` against the real repo FAQ, as a user would run them.

The commands run in process (tests/cli_support.py: `main(argv)`, with FAQ_DIR the repository's
`faqs/` that a child started in the repository reads by default); the answered `ask` runs as a
real `python -m faqbot` child (the module entry, its exit status and stdout, end to end). The eval
is the shipped labelled set: its figures are what this test holds."""

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli_support import Ran, in_process_cli
from tests.conftest import FAQ_DIR, ROOT

pytestmark = pytest.mark.skipif(not any(FAQ_DIR.glob("*.txt")), reason="faqs/ has no FAQ files yet")


@pytest.fixture(autouse=True)
def _data_dir(seeded_data_dir: Path) -> Path:
    """The commands' DATA_DIR (the environment's, a tmp folder, never the repository's .faqbot/)
    starts with the shipped FAQ's vectors, encoded once per session: each command runs warm."""
    return seeded_data_dir


@pytest.fixture
def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., Ran]]:
    """`python -m faqbot *args` in process, with the environment a child got: this one minus
    OPENAI_*, and the FAQ folder a child in the repository reads (its default, `faqs`)."""
    for name in [k for k in os.environ if k.startswith("OPENAI_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FAQ_DIR", str(FAQ_DIR))
    with in_process_cli(capsys) as cli:
        yield cli


def run_child(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return subprocess.run(
        [sys.executable, "-m", "faqbot", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        # Warm (the vectors are seeded), but a loaded 2-core machine is slow to load the model.
        timeout=300,
        check=False,
    )


def test_ask_answers_the_annual_discount_from_sales_offline() -> None:
    proc = run_child("ask", "Do you offer discounts for annual subscriptions?")  # a real child
    assert proc.returncode == 0, proc.stderr
    assert "[mode: offline]" in proc.stdout
    assert "20% discount for annual subscriptions" in proc.stdout
    assert "category: sales" in proc.stdout
    assert "source: sales-" in proc.stdout


def test_ask_refuses_out_of_scope(run: Callable[..., Ran]) -> None:
    proc = run("ask", "What's the weather in Paris?")
    assert proc.returncode == 0, proc.stderr
    assert "I don't have that information in my FAQ database" in proc.stdout
    assert "refused" in proc.stdout


def test_ask_with_empty_question_exits_1_with_a_clear_message(run: Callable[..., Ran]) -> None:
    proc = run("ask", "   ")
    assert proc.returncode == 1
    assert "empty" in proc.stderr


def test_eval_reports_the_metrics(run: Callable[..., Ran]) -> None:
    proc = run("eval", str(ROOT / "bench" / "faq_eval.yaml"), "--offline")
    assert proc.returncode == 0, proc.stderr
    lines = {
        line.split(":")[0].strip(): line.split(":")[1].split()[0]
        for line in proc.stdout.splitlines()
        if ":" in line and not line.startswith(" ") and line.split(":")[1].strip()
    }
    assert "hybrid ranking" in proc.stdout  # the bundled model is the default
    assert float(lines["routing accuracy (in scope)"]) > 0.8
    assert float(lines["answered with the right entry"]) > 0.6
    assert float(lines["out-of-scope never answered"]) > 0.8
    assert "paraphrase" in proc.stdout
    assert "out_of_scope" in proc.stdout
