"""A small circuit breaker for the LLM: after N consecutive failures skip it for a cool-down.

States: closed (normal) -> open (skip the LLM until `reset_seconds` pass) -> half_open (let one
request probe; success closes, failure re-opens, `release` gives the probe back without a verdict
when its caller was cancelled, so a Stop button or a closed tab never leaves the breaker waiting
forever for a probe that will not report). `open_for` opens it for as long as the provider
asked in a Retry-After, so no user waits on (or spends a call against) a provider that said when
to come back. Written here rather than taken from a library because the state must be reported
by /api/health and the clock injected by tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]
MAX_OPEN_SECONDS = 3600.0  # a longer Retry-After is capped: a half-open probe then asks again


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._window = reset_seconds  # how long the current opening lasts
        self._probing = False

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self._window:
            return "half_open"
        return "open"

    @property
    def failures(self) -> int:
        return self._failures

    @property
    def probing(self) -> bool:
        """Is the one half-open trial request in flight? (Read right after `allow()`.)"""
        return self._probing

    def allow(self) -> bool:
        """May a request go to the LLM now? In half_open only one probe at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probing:
            self._probing = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def release(self) -> None:
        """The probe was cancelled: let the next request probe; not a provider failure."""
        self._probing = False

    def record_failure(self) -> None:
        self._failures += 1
        self._probing = False
        if self._opened_at is not None or self._failures >= self.failure_threshold:
            self._open(self.reset_seconds)

    def open_for(self, seconds: float) -> None:
        """The provider asked for no calls during `seconds` (Retry-After): open until then.

        Never shortens an opening already running; capped at MAX_OPEN_SECONDS.
        """
        self._probing = False
        self._open(min(max(seconds, 0.0), MAX_OPEN_SECONDS))

    def _open(self, seconds: float) -> None:
        """Open now for `seconds`, or until the current opening ends if that is later."""
        now = self._clock()
        end = now + seconds
        if self._opened_at is not None and self.state == "open":
            end = max(end, self._opened_at + self._window)
        self._opened_at, self._window = now, end - now

    def snapshot(self) -> dict[str, object]:
        """For health and logs; `retry_in_s` while open: when the next probe may go."""
        state = self.state
        snap: dict[str, object] = {"state": state, "consecutive_failures": self._failures}
        if state == "open" and self._opened_at is not None:
            snap["retry_in_s"] = round(self._opened_at + self._window - self._clock(), 1)
        return snap
