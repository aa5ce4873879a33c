"""Which `tool_choice` form each endpoint accepts, learnt per process and re-checked after a while.

Servers differ (DESIGN.md section 3): OpenAI, vLLM >= 0.8.3 and llama.cpp's `llama-server`
accept "required"; llama-cpp-python's server accepts only "auto" or a function forced by name
(its grammar then enforces the call); Ollama ignores `tool_choice`. The router tries the forms
in FORMS order (the first two both force a call from a closed set; "auto" lets the model
answer in text, which the router then routes by retrieval) and falls to the next when the
endpoint refuses one (`ToolChoiceRefused`). A refusal is remembered only once a later form has
worked (or every form was refused), so a server that is simply down is never mistaken for one
that lacks a feature; it is forgotten after `recheck_s`, so an upgraded server is asked again.

A refusal is a capability mismatch, never a provider failure: it does not count against the
circuit breaker, it is logged once per endpoint and form, and counted in
`faqbot_llm_tool_choice_refused_total`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from faqbot.errors import LLMProtocolError

Form = Literal["required", "named", "auto"]
FORMS: tuple[Form, ...] = ("required", "named", "auto")
RECHECK_SECONDS = 3600.0


class ToolChoiceRefused(LLMProtocolError):
    """The endpoint refused a request for its `tool_choice` form (an error status, or a stream
    broken before any output); the router tries the next form."""

    code = "LLM_TOOL_CHOICE_REFUSED"


@dataclass
class _Endpoint:
    refused: dict[Form, float] = field(default_factory=dict)  # form -> when it was refused
    works: Form | None = None
    no_call: int = 0  # replies without any tool call (a server that ignores tool_choice)


class CapabilityMemory:
    """Per-process memory of what each endpoint (base URL + model) accepts. Thread-safe."""

    def __init__(
        self, recheck_s: float = RECHECK_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.recheck_s = recheck_s
        self._clock = clock
        self._lock = threading.Lock()
        self._endpoints: dict[str, _Endpoint] = {}

    def forms(self, endpoint: str) -> list[Form]:
        """The forms to try, best first: those not refused within `recheck_s` (none while an
        endpoint that refused them all is not due for its re-check: retrieval routes)."""
        now = self._clock()
        with self._lock:
            state = self._endpoints.get(endpoint)
            if state is None:
                return list(FORMS)
            for form, when in list(state.refused.items()):
                if now - when >= self.recheck_s:
                    del state.refused[form]
            return [f for f in FORMS if f not in state.refused]

    def learn(self, endpoint: str, refused: list[Form], works: Form | None) -> list[Form]:
        """Record a negotiation's outcome; returns the refusals that are news (to log once)."""
        now = self._clock()
        with self._lock:
            state = self._endpoints.setdefault(endpoint, _Endpoint())
            news = [f for f in refused if f not in state.refused]
            for form in refused:
                state.refused[form] = now
            if works is not None:
                state.works = works
            return news

    def replied_without_call(self, endpoint: str) -> None:
        with self._lock:
            self._endpoints.setdefault(endpoint, _Endpoint()).no_call += 1

    def snapshot(self) -> dict[str, dict[str, object]]:
        """For /api/health and the start-up log: per endpoint, the form in use and refusals."""
        with self._lock:
            return {
                endpoint: {
                    "tool_choice": state.works,
                    "refused": sorted(state.refused),
                    "replies_without_tool_call": state.no_call,
                }
                for endpoint, state in self._endpoints.items()
            }


MEMORY = CapabilityMemory()  # the process's memory; tests pass their own
