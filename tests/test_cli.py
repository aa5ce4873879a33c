"""`python -m faqbot ask` and `eval` against the real repo FAQ, as a user would run them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FAQ_DIR, ROOT

pytestmark = pytest.mark.skipif(not any(FAQ_DIR.glob("*.txt")), reason="faqs/ has no FAQ files yet")


@pytest.fixture(autouse=True)
def _data_dir(seeded_data_dir: Path) -> Path:
    """The commands' DATA_DIR (the environment's, a tmp folder, never the repository's .faqbot/)
    starts with the shipped FAQ's vectors, encoded once per session: each command runs warm."""
    return seeded_data_dir


def run(*args: str) -> subprocess.CompletedProcess[str]:
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
    proc = run("ask", "Do you offer discounts for annual subscriptions?")
    assert proc.returncode == 0, proc.stderr
    assert "[mode: offline]" in proc.stdout
    assert "20% discount for annual subscriptions" in proc.stdout
    assert "category: sales" in proc.stdout
    assert "source: sales-" in proc.stdout


def test_ask_refuses_out_of_scope() -> None:
    proc = run("ask", "What's the weather in Paris?")
    assert proc.returncode == 0, proc.stderr
    assert "I don't have that information in my FAQ database" in proc.stdout
    assert "refused" in proc.stdout


def test_ask_with_empty_question_exits_1_with_a_clear_message() -> None:
    proc = run("ask", "   ")
    assert proc.returncode == 1
    assert "empty" in proc.stderr


def test_eval_reports_the_metrics(tmp_path: Path) -> None:
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
