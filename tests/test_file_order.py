"""tests/file_order.py: the longest files first, each file's tests in their own order."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.file_order import FileClock, order_longest_first, recorded


@dataclass
class _Mark:
    name: str


@dataclass
class _Item:
    nodeid: str
    marks: list[str] = field(default_factory=list)

    def iter_markers(self) -> list[_Mark]:
        return [_Mark(m) for m in self.marks]


def _files(items: list[Any]) -> list[str]:
    return [i.nodeid for i in items]


def test_recorded_seconds_put_the_longest_file_first_and_keep_each_files_order() -> None:
    items: list[Any] = [_Item("tests/test_a.py::one"), _Item("tests/test_b.py::one"),
                        _Item("tests/test_a.py::two"), _Item("tests/test_c.py::one")]  # fmt: skip
    order_longest_first(items, {"tests/test_a.py": 1.0, "tests/test_b.py": 30.0})
    assert _files(items) == [
        "tests/test_b.py::one", "tests/test_a.py::one", "tests/test_a.py::two",
        "tests/test_c.py::one",
    ]  # fmt: skip


def test_a_file_never_timed_is_placed_by_what_it_starts() -> None:
    many_unit_tests: list[Any] = [_Item(f"tests/test_unit.py::t{i}") for i in range(40)]
    items = [*many_unit_tests, _Item("tests/test_ui.py::chat", ["browser", "chainlit"])]
    order_longest_first(items, {})
    assert items[0].nodeid == "tests/test_ui.py::chat"


def test_the_clock_merges_this_runs_files_into_the_record(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAQBOT_TEST_CACHE", str(tmp_path))
    (tmp_path / "file-seconds.json").write_text(json.dumps({"tests/test_old.py": 5.0}))
    clock = FileClock()
    for nodeid, seconds in [("tests/test_a.py::x", 1.5), ("tests/test_a.py::y", 2.0)]:
        clock.add(pytest.TestReport(nodeid, ("", 0, ""), {}, "passed", None, "call", [], seconds))
    clock.save()
    assert recorded() == {"tests/test_a.py": 3.5, "tests/test_old.py": 5.0}
    monkeypatch.setenv("FAQBOT_TEST_CACHE", "off")
    assert recorded() == {}
