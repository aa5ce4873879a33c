"""Whether the database takes writes now, judged by the writes themselves (for health/readiness).

Why: a failed write is logged and the answer still goes out, so with a full disk, a read-only
file system or a database that refuses writes, nothing a load balancer or an operator looks at
changed (issue 20: "disk full, health stays green"). Every write goes through the group commit
(`faqbot.store.writer`), which reports each outcome here.

The state: writes are failing from a failed write until the next write that commits (a real one,
or the probe health sends: `Database.write_problem`), so it recovers by itself when the disk
has room again. A write refused for its own rows (a constraint, bad data) says nothing about the
storage and is only counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError

# refused for its own rows: the storage works (another write would commit)
_ROW_FAULTS = (IntegrityError, DataError)
PROBE_IDLE_S = 60.0  # with no write this long, health checks by writing (a full disk shows)
PROBE_FAILING_S = 2.0  # while failing, at most one probe this often (recovery without traffic)


def describe(exc: BaseException) -> str:
    """One line for health and logs: the error's type and first line, no parameters."""
    orig = getattr(exc, "orig", None)  # SQLAlchemy's wrapper: the driver's own error reads better
    shown = orig if isinstance(orig, BaseException) else exc
    lines = str(shown).strip().splitlines()
    first = lines[0] if lines else ""
    return f"{type(shown).__name__}: {first}"[:200]


@dataclass
class WriteHealth:
    """Counts of committed and failed writes, and whether the storage is failing now."""

    clock: Callable[[], float] = time.monotonic
    committed: int = 0
    failed: int = 0  # every failed write since start (including rows refused on their own)
    failing: int = 0  # storage failures since the last write that committed
    last_error: str | None = None
    _last_failure: float | None = field(default=None, repr=False)
    _last_success: float | None = field(default=None, repr=False)
    _last_probe: float | None = field(default=None, repr=False)

    def succeeded(self, writes: int = 1) -> None:
        """`writes` writes committed: the storage takes writes (again)."""
        self.committed += writes
        self.failing = 0
        self._last_success = self.clock()

    def failed_with(self, exc: BaseException, writes: int = 1) -> None:
        """`writes` writes failed with `exc`."""
        self.failed += writes
        if isinstance(exc, _ROW_FAULTS):
            return
        self.failing += writes
        self.last_error = describe(exc)
        self._last_failure = self.clock()

    def problem(self) -> str | None:
        """Why writes are failing now (for readiness), or None."""
        if not self.failing:
            return None
        return (
            f"database writes failing: {self.last_error} ({self.failing} failed since the "
            f"last successful write, last {self._age(self._last_failure):.0f} s ago)"
        )

    def wants_probe(self) -> bool:
        """Should health write to find out? Never written, failing, or idle for a while."""
        now = self.clock()
        if self.failing:
            return self._last_probe is None or now - self._last_probe >= PROBE_FAILING_S
        if self._last_success is None and self._last_failure is None:
            return True
        moments = (self._last_success, self._last_failure, self._last_probe)
        seen = max(t for t in moments if t is not None)
        return now - seen >= PROBE_IDLE_S

    def probing(self) -> None:
        self._last_probe = self.clock()

    def snapshot(self) -> dict[str, Any]:
        """For /health: counts, the last storage error and its age."""
        out: dict[str, Any] = {
            "committed": self.committed,
            "failed": self.failed,
            "failing_since_last_success": self.failing,
        }
        if self.last_error is not None:
            out["last_error"] = self.last_error
            out["last_error_age_s"] = round(self._age(self._last_failure), 1)
        return out

    def _age(self, moment: float | None) -> float:
        return 0.0 if moment is None else max(0.0, self.clock() - moment)
