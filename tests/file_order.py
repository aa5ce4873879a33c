"""Longest test files first, so that parallel workers finish together.

scripts/check runs pytest-xdist with `--dist loadfile --no-loadscope-reorder`: each worker takes
the next whole file in collection order when it runs dry. In alphabetical order the slowest
files (test_persistence.py, test_signin_*.py, test_widget_browser.py) came last, and the run
ended with one worker busy and the others idle. This plugin orders the files longest first
(the classic longest-processing-time rule), by how long each took in the last run on this
machine, kept in `~/.cache/faqbot-tests/file-seconds.json` (FAQBOT_TEST_CACHE moves it, "off"
keeps no record). A file with no record yet is placed by what it starts (the app, a browser or
a service: several seconds each) over a file that only calls functions.

The order never changes what a test does or asserts, only when its file starts.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

HEAVY_MARKS = {"browser": 20.0, "chainlit": 15.0, "services": 10.0, "llm": 2.0}


def record_path() -> Path | None:
    """Where the per-file seconds are kept (None: FAQBOT_TEST_CACHE=off)."""
    setting = os.environ.get("FAQBOT_TEST_CACHE", "")
    if setting == "off":
        return None
    top = Path(setting) if setting else Path.home() / ".cache" / "faqbot-tests"
    return top / "file-seconds.json"


def recorded() -> dict[str, float]:
    """The last recorded seconds per file ({} when none)."""
    path = record_path()
    try:
        data = json.loads(path.read_text()) if path else {}
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _guess(items: list[pytest.Item]) -> float:
    marks = {mark.name for item in items for mark in item.iter_markers()}
    return max([HEAVY_MARKS.get(m, 0.0) for m in marks], default=0.0) + 0.05 * len(items)


def order_longest_first(items: list[pytest.Item], seconds: dict[str, float]) -> None:
    """Reorder `items` in place: files by `seconds` (or a guess), longest first; the tests
    inside a file keep their order. Ties keep the files' alphabetical order.

    Under xdist every worker must collect the same order: the controller reads the record once
    and hands it to each worker (conftest.py, `pytest_configure_node`)."""
    by_file: dict[str, list[pytest.Item]] = defaultdict(list)
    for item in items:
        by_file[item.nodeid.split("::", 1)[0]].append(item)
    files = sorted(by_file, key=lambda f: (-seconds.get(f, _guess(by_file[f])), f))
    items[:] = [item for f in files for item in by_file[f]]


class FileClock:
    """Sums each file's setup, call and teardown seconds as reports arrive (in the controller
    process too, from the workers' reports), and merges them into the record at the end."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def add(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid.split("::", 1)[0]] += report.duration

    def save(self) -> None:
        path = record_path()
        if path is None or not self.seconds:
            return
        merged = recorded() | {f: round(s, 2) for f, s in self.seconds.items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(dict(sorted(merged.items())), indent=0))
        temporary.replace(path)
