"""`python -m faqbot doctor` against the loopback fake in its three modes, and a dead endpoint;
`/health` shows what the router learnt (issue 23, items 2 and 1)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from faqbot.answering.bot import collect
from faqbot.answering.factory import build_bot, warm_up
from faqbot.config import Settings
from faqbot.ops.doctor import diagnose
from faqbot.web.health import llm_capabilities
from tests import fake_openai as fo
from tests.cli_support import in_process_cli

pytestmark = pytest.mark.llm
REPO = Path(__file__).resolve().parents[1]


def statuses(report: Any) -> dict[str, str]:
    return {line.name: line.status for line in report.lines}


def llm(make_settings: Any, base_url: str, **kw: Any) -> Any:
    return make_settings(openai_api_key="k", openai_base_url=base_url, openai_model="fake-model",
                         openai_timeout=3.0, **kw)  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "forms", "routing"),
    [
        ("openai", {"required": "ok", "named": "ok", "auto": "ok"}, "'required'"),
        ("llama-cpp", {"required": "warn", "named": "ok", "auto": "ok"}, "'named'"),
        ("ollama", {"required": "warn", "named": "warn", "auto": "warn"}, "retrieval routes"),
    ],
)
async def test_doctor_reads_each_server_mode(
    make_settings: Any, mode: str, forms: dict[str, str], routing: str
) -> None:
    with fo.running(mode=mode) as fake:
        report = await diagnose(llm(make_settings, fake.base_url), timeout_s=5)
    seen = statuses(report)
    print("\n".join(line.render() for line in report.lines))
    assert not report.blocked
    for name in ("models", "chat", "streaming", "usage in stream", "first token"):
        assert seen[name] == "ok", name
    assert {f: seen[f"tool_choice {f}"] for f in forms} == forms
    routing_line = next(line for line in report.lines if line.name == "routing")
    assert routing in routing_line.detail
    assert seen["embeddings"] == "skip"  # EMBEDDINGS=off in the test settings


async def test_doctor_measures_the_embeddings_endpoint(make_settings: Any) -> None:
    with fo.running(embedding_dim=48) as fake:
        settings = llm(make_settings, fake.base_url, embeddings="openai")
        report = await diagnose(settings, timeout_s=5)
    line = next(line for line in report.lines if line.name == "embeddings")
    assert line.status == "ok"
    assert line.detail.endswith("dimension 48")


async def test_doctor_recommends_a_longer_deadline_for_a_slow_model(make_settings: Any) -> None:
    with fo.running(first_token_delay=0.6) as fake:
        settings = llm(make_settings, fake.base_url, llm_first_token_seconds=0.5)
        report = await diagnose(settings, timeout_s=5)
    assert not report.blocked
    assert "LLM_FIRST_TOKEN_SECONDS=2" in report.recommend


async def test_doctor_says_blocked_for_a_dead_endpoint_or_no_key(make_settings: Any) -> None:
    fake = fo.FakeOpenAI().start()
    url = fake.base_url
    fake.stop()
    report = await diagnose(llm(make_settings, url), timeout_s=2)
    assert report.blocked
    assert statuses(report)["chat"] == "fail"
    assert (await diagnose(make_settings(), timeout_s=2)).blocked  # offline: no key


def doctor(env: dict[str, str], timeout: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "faqbot", "doctor", "--timeout", timeout]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def test_the_cli_prints_one_line_per_capability_and_exits_1_when_blocked(
    tmp_path: Path,
    small_faq_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The usable run in process (`main(argv)`, tests/cli_support.py) with only `env` among
    the settings' variables, as the child has; the blocked run as a real child (exit 1)."""
    env = {"EMBEDDINGS": "off", "FAQ_DIR": str(small_faq_dir), "DATA_DIR": str(tmp_path),
           "OPENAI_API_KEY": "k", "PATH": "/usr/bin:/bin"}  # fmt: skip
    for name in [k for k in os.environ if k.lower() in Settings.model_fields]:
        monkeypatch.delenv(name)
    with fo.running(mode="llama-cpp") as fake, in_process_cli(capsys) as cli:
        env["OPENAI_BASE_URL"] = fake.base_url
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        ok = cli("doctor", "--timeout", "5")
    assert ok.returncode == 0, ok.stderr
    assert "warn  tool_choice required: refused" in ok.stdout
    assert "ok    tool_choice named: tool call route_question" in ok.stdout
    assert ok.stdout.rstrip().endswith("LLM path: usable")
    bad = doctor(env, "2")  # the fake has stopped: nothing answers at that address
    assert bad.returncode == 1
    assert "fail  chat:" in bad.stdout


async def test_warm_up_learns_the_form_before_the_first_question(make_settings: Any) -> None:
    with fo.running(mode="llama-cpp") as fake:
        bot = build_bot(llm(make_settings, fake.base_url, openai_max_retries=0))
        assert llm_capabilities(bot) == {"endpoint": bot.model.endpoint}  # type: ignore[union-attr]
        report = await warm_up(bot)
        assert report is not None
        assert report["tool_choice"] == "named"
        assert report["refused"] == ["required"]
        fake.requests.clear()
        result = await collect(bot.answer("What is your refund policy?"))
        assert not result.fallback
        assert fake.requests[0]["tool_choice"]["function"]["name"] == "route_question"
        caps = llm_capabilities(bot)
        assert caps is not None
        assert caps["tool_choice"] == "named"
        assert bot.breaker.failures == 0


async def test_warm_up_of_a_dead_endpoint_reports_and_never_raises(make_settings: Any) -> None:
    fake = fo.FakeOpenAI().start()
    bot = build_bot(llm(make_settings, fake.base_url))
    fake.stop()
    report = await asyncio.wait_for(warm_up(bot, timeout_s=5), 10)
    assert report is not None
    assert "warm_up_error" in report
    assert bot.breaker.failures == 0
