"""`python -m faqbot learn` (issue 22), run as an owner would, on SQLite and PostgreSQL: attach
with the conflict check, refuse bad input and duplicates, list, remove, and an export that
`python -m faqbot check` accepts, holding the attached phrasing.

The commands run in process (tests/cli_support.py: `main(argv)`, the environment set as a child's
`env=` was); one `learn list` per backend runs as a real `python -m faqbot` child (the module
entry, its exit status and both output streams), as does `--help`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from faqbot.store.database import Database
from tests.cli_support import Ran, in_process_cli
from tests.conftest import ROOT
from tests.store_support import BACKENDS, Backend, fresh_backend

DISCOUNTS = "sales-do-you-offer-discounts-for-annual-subscriptions"
QUESTION = "do universities get a rebate"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Backend]:
    yield from fresh_backend(request.param, tmp_path)


@pytest.fixture
def env(
    backend: Backend, small_faq_dir: Path, make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The commands' environment, set in this process; returned for the child that runs."""

    async def create() -> None:  # the app made the database at its first start
        database = Database.from_settings(make_settings(**backend.values()))
        await database.ensure_schema()
        await database.dispose()

    asyncio.run(create())
    for name in [k for k in os.environ if k.startswith("OPENAI_")]:
        monkeypatch.delenv(name)
    for name, value in {**backend.env, "FAQ_DIR": str(small_faq_dir), "EMBEDDINGS": "off"}.items():
        monkeypatch.setenv(name, value)
    return dict(os.environ)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., Ran]]:
    """`python -m faqbot *argv` in process, with the environment the `env` fixture set."""
    with in_process_cli(capsys) as run:
        yield run


@pytest.fixture
def learn(env: dict[str, str], cli: Callable[..., Ran]) -> Callable[..., Ran]:
    return lambda *args: cli("learn", *args)


def learn_child(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real `python -m faqbot learn ...`, in the repository as an owner runs it."""
    return subprocess.run(
        [sys.executable, "-m", "faqbot", "learn", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_help_lists_learn() -> None:
    out = subprocess.run([sys.executable, "-m", "faqbot", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True).stdout  # fmt: skip
    assert "learn" in out


def test_attach_list_export_remove(
    env: dict[str, str], learn: Callable[..., Ran], cli: Callable[..., Ran], tmp_path: Path
) -> None:
    bad = learn("attach", "sales-no-such-entry", QUESTION)
    assert bad.returncode == 1
    assert "no FAQ entry with id 'sales-no-such-entry'" in bad.stderr
    bell = learn("attach", DISCOUNTS, "a bell \x07 here")
    assert bell.returncode == 1
    assert "control character" in bell.stderr
    ok = learn("attach", DISCOUNTS, QUESTION, "--by", "alice")
    assert ok.returncode == 0, ok.stderr
    row_id = ok.stdout.split()[0]
    again = learn("out-of-scope", "Do universities get a REBATE?", "--force")
    assert again.returncode == 1
    assert f"already attached to entry {DISCOUNTS}" in again.stderr
    listed = learn_child(env, "list")  # the one real child: what an owner's shell sees
    assert listed.returncode == 0, listed.stderr
    assert f"{row_id}  {QUESTION!r} -> {DISCOUNTS}  by alice" in listed.stdout
    assert "1 learned" in listed.stderr
    out = tmp_path / "export"
    exported = learn("export", str(out))
    assert exported.returncode == 0, exported.stderr
    assert sorted(p.name for p in out.iterdir()) == ["labs.yaml", "reports.yaml", "sales.yaml"]
    check = cli("check", str(out))
    assert check.returncode == 0, check.stdout + check.stderr
    sales = yaml.safe_load((out / "sales.yaml").read_text())
    (entry,) = [e for e in sales["entries"] if e["id"] == DISCOUNTS]
    assert entry["alternate_questions"] == [QUESTION]
    removed = learn("remove", row_id)
    assert removed.returncode == 0
    assert QUESTION not in learn("list").stdout
    assert learn("remove", row_id).returncode == 1


def test_a_conflicting_mark_needs_force(learn: Callable[..., Ran]) -> None:
    refused = learn("out-of-scope", "what is your refund policy")
    assert refused.returncode == 1
    assert "'What is your refund policy?'" in refused.stderr
    assert "--force" in refused.stderr
    assert "refund" not in learn("list").stdout
    forced = learn("out-of-scope", "what is your refund policy", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "(out of scope)" in learn("list").stdout
