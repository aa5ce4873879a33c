"""`python -m faqbot doctor`: what the configured LLM endpoint can do, one line per capability.

Probes, in order: the models list, a plain (non-streamed) chat call, a streamed answer (its
first-token time and whether it finishes), usage in the stream, the router's tool call in each
`tool_choice` form (faqbot.llm.capabilities), the embeddings endpoint and its dimension, and
the first-token time of a prompt the size of the router's. Then the settings it recommends
(e.g. a longer first-token deadline for a slow local model). Exit status 1 when something
blocks the LLM path (no key, credentials refused, no chat or no streamed answer); a server
that takes no tool_choice form does not block it: retrieval then routes every question.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from faqbot.answering.factory import build_bot
from faqbot.answering.router import LLMRouter
from faqbot.config import Settings
from faqbot.errors import FaqBotError, LLMAuthError
from faqbot.llm.capabilities import FORMS, CapabilityMemory, ToolChoiceRefused
from faqbot.llm.openai_model import OpenAIChatModel, make_client
from faqbot.llm.tokens import estimate_prompt
from faqbot.prompts import render_entries

Status = Literal["ok", "warn", "fail", "skip"]
PROBE_TOKENS = 24


@dataclass(frozen=True, slots=True)
class Line:
    status: Status
    name: str
    detail: str

    def render(self) -> str:
        return f"{self.status:<5} {self.name}: {self.detail}"


@dataclass
class Diagnosis:
    lines: list[Line] = field(default_factory=list)
    recommend: list[str] = field(default_factory=list)
    blocked: bool = False

    def add(self, status: Status, name: str, detail: str, *, blocks: bool = False) -> None:
        self.lines.append(Line(status, name, detail))
        self.blocked = self.blocked or (blocks and status == "fail")


def _model(settings: Settings, max_tokens: int = PROBE_TOKENS) -> OpenAIChatModel:
    """The configured endpoint without silence bounds: the doctor measures, it does not cut."""
    assert settings.openai_api_key is not None
    client = make_client(
        settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout,
        connect_timeout=settings.openai_connect_timeout,
        max_retries=1,  # a connection a broken stream left dead is retried, as when serving
        max_retry_wait=0.0,
    )
    return OpenAIChatModel(client, model=settings.openai_model, max_tokens=max_tokens,
                           temperature=0.0)  # fmt: skip


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


async def _timed(call: Coroutine[Any, Any, Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = await call
    return result, time.perf_counter() - started


async def diagnose(settings: Settings, timeout_s: float = 120.0) -> Diagnosis:
    """Probe the configured endpoint(s); never raises for what it finds."""
    report = Diagnosis()
    if settings.openai_api_key is None:
        report.add("fail", "configured", "OPENAI_API_KEY is not set: offline mode", blocks=True)
        return report
    model = _model(settings)
    where = settings.openai_base_url or "https://api.openai.com/v1"
    report.add("ok", "configured", f"{where} model {settings.openai_model}")
    await _models(report, model, settings, timeout_s)
    if report.blocked:
        return report
    await _chat(report, model, timeout_s)
    short = await _stream(report, model, timeout_s)
    bot = build_bot(settings.model_copy(update={"embeddings": "off"}), model=model)
    router = LLMRouter(model, bot.kb, bot.retriever, app_name=settings.app_name,
                       history_turns=0, capabilities=CapabilityMemory())  # fmt: skip
    await _tool_forms(report, router, bot.kb, timeout_s)
    await _embeddings(report, settings)
    long = await _long_prompt(report, model, router, bot.kb, timeout_s)
    _recommend(report, settings, short, long)
    return report


async def _models(
    report: Diagnosis, model: OpenAIChatModel, settings: Settings, timeout_s: float
) -> None:
    try:
        ids = await model.models(timeout_s)
    except LLMAuthError as exc:
        report.add("fail", "models", f"credentials refused ({exc})", blocks=True)
        return
    except FaqBotError as exc:
        report.add("warn", "models", f"no models list ({exc}); some servers have none")
        return
    listed = settings.openai_model in ids
    note = "listed" if listed else "not listed (a one-model server answers any name)"
    report.add("ok" if listed else "warn", "models", f"{len(ids)} listed; OPENAI_MODEL {note}")


async def _chat(report: Diagnosis, model: OpenAIChatModel, timeout_s: float) -> None:
    try:
        text, seconds = await _timed(model.complete([_ask("Say hello.")], timeout_s))
    except FaqBotError as exc:
        report.add("fail", "chat", _error(exc), blocks=True)
        return
    report.add("ok", "chat", f"answered in {seconds:.2f} s ({len(text)} characters)")


def _ask(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


async def _stream(report: Diagnosis, model: OpenAIChatModel, timeout_s: float) -> float | None:
    """The streamed probe; returns its first-output seconds."""
    try:
        probe = await model.probe_stream([_ask("Say hello.")], timeout_s)
    except FaqBotError as exc:
        report.add("fail", "streaming", _error(exc), blocks=True)
        report.add("skip", "usage in stream", "no stream")
        return None
    first = probe.first_output_s
    shown = "no output" if first is None else f"first token {first:.2f} s"
    ok = probe.finished and first is not None
    report.add("ok" if ok else "fail", "streaming",
               f"{shown}, {probe.chunks} chunks, finish {'sent' if probe.finished else 'MISSING'}",
               blocks=True)  # fmt: skip
    if probe.usage == "provider":
        report.add("ok", "usage in stream", "the provider reports usage (include_usage)")
    else:
        report.add("warn", "usage in stream",
                   "none: faqbot estimates tokens for spend limits and metrics")  # fmt: skip
    return first


async def _tool_forms(report: Diagnosis, router: LLMRouter, kb: Any, timeout_s: float) -> None:
    category = next(iter(kb.categories.values()))
    question = category.entries[0].question
    working = []
    for form in FORMS:
        tools, choice = router.request(form, ())
        try:
            async with asyncio.timeout(timeout_s):
                done = await router.model.call_tools(
                    router.messages(question, (), form), tools, tool_choice=choice
                )
        except ToolChoiceRefused as exc:
            report.add("warn", f"tool_choice {form}", f"refused ({exc})")
            continue
        except (FaqBotError, TimeoutError) as exc:
            report.add("warn", f"tool_choice {form}", f"failed: {_error(exc)}")
            continue
        if done.tool_calls:
            working.append(form)
            calls = ", ".join(c.name for c in done.tool_calls)
            report.add("ok", f"tool_choice {form}", f"tool call {calls}")
        else:
            report.add("warn", f"tool_choice {form}",
                       f"answered in text, no tool call ({len(done.text)} characters)")  # fmt: skip
    if working:
        report.add("ok", "routing", f"the router will use tool_choice {working[0]!r}")
    else:
        report.add("warn", "routing", "no tool call in any form: retrieval routes every question")


async def _embeddings(report: Diagnosis, settings: Settings) -> None:
    if settings.embeddings != "openai":
        report.add("skip", "embeddings", f"EMBEDDINGS={settings.embeddings}: not an endpoint")
        return
    from faqbot.retrieval.factory import build_embedder

    try:
        embedder = build_embedder(settings)
        assert embedder is not None
        vectors = await asyncio.to_thread(embedder.embed, ["hello"])
    except Exception as exc:
        report.add("warn", "embeddings", f"failed ({_error(exc)}): lexical ranking only")
        return
    report.add("ok", "embeddings", f"{settings.embeddings_model}: dimension {vectors.shape[1]}")


async def _long_prompt(
    report: Diagnosis, model: OpenAIChatModel, router: LLMRouter, kb: Any, timeout_s: float
) -> tuple[float, int] | None:
    """First-token time of a prompt the size of the router's (its system prompt and tools,
    as text), and that size in estimated tokens."""
    system = router.messages("", (), "required")[0]["content"]
    text = system + "\n\n" + render_entries(kb.entries[:6])
    messages = [{"role": "system", "content": text}, _ask("Say hello.")]
    tokens = estimate_prompt(messages, ())
    try:
        probe = await model.probe_stream(messages, timeout_s)
    except FaqBotError as exc:
        report.add("warn", "first token", f"long prompt failed: {_error(exc)}")
        return None
    if probe.first_output_s is None:
        report.add("warn", "first token", f"no output for a {tokens}-token prompt")
        return None
    seconds = probe.first_output_s
    report.add("ok", "first token", f"{seconds:.2f} s for a ~{tokens}-token prompt")
    return seconds, tokens


def _recommend(
    report: Diagnosis, settings: Settings, short: float | None, long: tuple[float, int] | None
) -> None:
    """A first-token deadline with a 2x margin over what was measured, when the current one
    would cut it (the stalled-provider bound stays: a deadline, only longer)."""
    if short is None or long is None:
        return
    seconds, tokens = long
    base = max(settings.llm_first_token_seconds, math.ceil(2 * short))
    per_1k = max(0.0, 2 * (seconds - short) / max(tokens / 1000, 0.1))
    allowed = settings.llm_first_token_seconds + (
        settings.llm_first_token_seconds_per_1k_tokens * tokens / 1000
    )
    if 2 * seconds <= allowed:
        return
    report.recommend.append(f"LLM_FIRST_TOKEN_SECONDS={base:g}")
    report.recommend.append(f"LLM_FIRST_TOKEN_SECONDS_PER_1K_TOKENS={math.ceil(per_1k):g}")
    report.recommend.append(
        f"LLM_BUDGET_SECONDS={max(settings.llm_budget_seconds, math.ceil(6 * seconds)):g}"
    )


def run(settings: Settings, out: Callable[[str], None] = print, timeout_s: float = 120.0) -> int:
    """Print the diagnosis; 1 when something blocks the LLM path."""
    report = asyncio.run(diagnose(settings, timeout_s))
    for line in report.lines:
        out(line.render())
    if report.recommend:
        out("recommended settings (measured here, 2x margin):")
        for setting in report.recommend:
            out(f"  {setting}")
    out("LLM path: BLOCKED" if report.blocked else "LLM path: usable")
    return 1 if report.blocked else 0
