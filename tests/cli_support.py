"""`python -m faqbot ...` in this process: `main(argv)` (what faqbot/__main__.py runs) with this
process's environment, its exit status and output streams captured as a child's would be.

A child process costs 0.5-3.5 s of CPU in imports alone (pydantic, sqlalchemy, structlog, the
embedding model), so a test file runs each command here and keeps one real `python -m faqbot`
child per command family for the module entry, the exit status and the streams end to end.

The CLI's one process-wide state is its logging set-up (faqbot/logs.py configures structlog once
per process): `fresh_logging` makes each call configure it as a fresh process does, and puts the
previous set-up back afterwards. Settings are read from the environment at each call (no cache),
so `monkeypatch.setenv` is what a child's `env=` was. The current folder differs: a child ran in
the repository, the test runs in its tmp folder (tests/conftest.py), so a test passes paths that
were relative to the repository (FAQ_DIR's default `faqs`) as absolute ones.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import structlog

import faqbot.logs
from faqbot.ops.cli import main


@dataclass(frozen=True)
class Ran:
    """What `subprocess.run(..., capture_output=True, text=True)` gives, for the same asserts."""

    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def fresh_logging() -> Iterator[None]:
    """As in a new process: faqbot.logs not yet configured, structlog and the root logger at
    their defaults; this worker's previous set-up (other tests') is put back afterwards."""
    configured = faqbot.logs._configured
    was_configured = structlog.is_configured()
    saved = structlog.get_config()
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    faqbot.logs._configured = False
    structlog.reset_defaults()
    try:
        yield
    finally:
        faqbot.logs._configured = configured
        structlog.reset_defaults()
        if was_configured:
            structlog.configure(**saved)
        root.setLevel(level)
        root.handlers[:] = handlers


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> Ran:
    """`python -m faqbot *argv`, in process: its exit status, stdout and stderr."""
    capsys.readouterr()  # only this command's output
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's --help and usage errors, as the interpreter maps them
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    out, err = capsys.readouterr()
    return Ran(code, out, err)


@contextlib.contextmanager
def in_process_cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., Ran]]:
    """For a test's `cli` fixture: `cli("learn", "list")` runs `python -m faqbot learn list`
    in process, logging set up afresh for each command as in a new process."""

    def run(*argv: str) -> Ran:
        with fresh_logging():
            return run_main(capsys, *argv)

    yield run
