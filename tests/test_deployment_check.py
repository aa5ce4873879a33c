"""`python -m faqbot check --deployment [--strict]`: one warning line per unsafe setting.

Driven through the real CLI (`cli.main`, and `python -m faqbot` in a subprocess for a fresh
clone) with settings given as environment variables, as an operator would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from faqbot.config import Settings
from faqbot.ops import cli
from faqbot.passwords import hash_password
from tests.conftest import ROOT

SETTING_NAMES = [name.upper() for name in Settings.model_fields]
# A public deployment done right: every rule satisfied.
HARDENED = {
    "CORS_ORIGINS": '["https://www.example.com"]',
    "FORWARDED_ALLOW_IPS": "10.0.0.5",
    "HOST": "0.0.0.0",
    "RATE_LIMIT_REQUESTS": "30",
    "RATE_LIMIT_WINDOW": "60",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "CONVERSATION_SECRET": "a-long-random-shared-secret-value",
    "OPENAI_API_KEY": "sk-hardened-0123456789",
    "OPENAI_BASE_URL": "https://api.example.com/v1",
    "SPEND_DEPLOYMENT_DAILY_TOKENS": "2000000",
    "SPEND_CLIENT_DAILY_TOKENS": "100000",
    "SPEND_CONVERSATION_TOKENS": "20000",
    "MAX_STREAMS_PER_CLIENT": "3",
}


@pytest.fixture(autouse=True)
def _no_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets counts (the conftest already runs each test in a fresh folder)."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)


def run_check(
    capsys: pytest.CaptureFixture[str], *flags: str, **env: str
) -> tuple[int, list[str], str]:
    """Run the CLI with `env` set; return (exit code, stdout lines, stderr)."""
    mp = pytest.MonkeyPatch()
    try:
        for name, value in env.items():
            mp.setenv(name, value)
        code = cli.main(["check", "--deployment", *flags])
    finally:
        mp.undo()
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def warned(lines: list[str]) -> list[str]:
    """The variable named by each warning line."""
    assert all(line.startswith("warning: ") for line in lines), lines
    return [line.removeprefix("warning: ").split(":")[0] for line in lines]


def test_hardened_settings_pass_even_strict(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run_check(capsys, "--strict", **HARDENED)
    assert (code, lines, err) == (0, ["ok  no unsafe deployment settings found"], "")


@pytest.mark.parametrize(
    ("change", "variable", "reason"),
    [
        ({"CORS_ORIGINS": '["*"]'}, "CORS_ORIGINS", 'contains "*"'),
        ({"CORS_ORIGINS": "https://www.example.com, *"}, "CORS_ORIGINS", 'contains "*"'),
        ({"CORS_ORIGINS": "http://localhost:3000"}, "CORS_ORIGINS", "local development"),
        ({"RATE_LIMIT_REQUESTS": "1000000"}, "RATE_LIMIT_REQUESTS", "hardly a limit"),
        (
            {"RATE_LIMIT_REQUESTS": "300", "RATE_LIMIT_WINDOW": "60"},
            "RATE_LIMIT_REQUESTS",
            "300/min per client",
        ),
        ({"DEBUG": "true"}, "DEBUG", "debug level"),
        ({"LOG_LEVEL": "debug"}, "LOG_LEVEL", "is DEBUG"),
        ({"RELOAD": "true"}, "RELOAD", "restarts"),
        ({"FORWARDED_ALLOW_IPS": "*"}, "FORWARDED_ALLOW_IPS", "X-Forwarded-For"),
        ({"FORWARDED_ALLOW_IPS": ""}, "FORWARDED_ALLOW_IPS", "proxy's address"),
        ({"CONVERSATION_SECRET": ""}, "CONVERSATION_SECRET", "several replicas"),
        ({"OPENAI_BASE_URL": "http://10.1.2.3:11434/v1"}, "OPENAI_BASE_URL", "unencrypted"),
        (
            {"EMBEDDINGS": "openai", "EMBEDDINGS_BASE_URL": "http://embed.internal/v1"},
            "EMBEDDINGS_BASE_URL",
            "unencrypted",
        ),
        ({"MAX_QUESTION_CHARS": "20000"}, "MAX_QUESTION_CHARS", "injection"),
        ({"SPEND_DEPLOYMENT_DAILY_TOKENS": "0"}, "SPEND_DEPLOYMENT_DAILY_TOKENS", "per day"),
        ({"SPEND_CLIENT_DAILY_TOKENS": "0"}, "SPEND_CLIENT_DAILY_TOKENS", "one client"),
        ({"SPEND_CONVERSATION_TOKENS": "0"}, "SPEND_CONVERSATION_TOKENS", "one conversation"),
        ({"MAX_STREAMS_PER_CLIENT": "0"}, "MAX_STREAMS_PER_CLIENT", "no cap"),
        ({"ANALYTICS_ENABLED": "true"}, "ANALYTICS_ENABLED", "open to anyone"),
        (
            {"AUTH_HEADER": "X-Forwarded-User", "CHAINLIT_AUTH_SECRET": "s" * 40},
            "AUTH_HEADER",
            "sign in as anyone",
        ),
        (
            {
                "AUTH_HEADER": "X-Forwarded-User",
                "CHAINLIT_AUTH_SECRET": "s" * 40,
                "HOST": "127.0.0.1",
            },
            "AUTH_HEADER",
            "the proxy overwrites it",
        ),
        (
            {"AUTH_USERS": f"a:{hash_password('pw', iterations=100_000)}"},
            "CHAINLIT_AUTH_SECRET",
            "serves one instance only",
        ),
    ],
)
def test_each_unsafe_setting_gets_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], change: dict[str, str], variable: str, reason: str
) -> None:
    code, lines, err = run_check(capsys, **(HARDENED | change))
    assert code == 0  # warnings alone do not fail without --strict
    assert warned(lines) == [variable]
    assert reason in lines[0]
    assert "Fix: " in lines[0]
    assert "1 deployment warning(s)" in err

    strict, _, _ = run_check(capsys, "--strict", **(HARDENED | change))
    assert strict == 1


@pytest.mark.parametrize(
    "safe",
    [
        {"FORWARDED_ALLOW_IPS": "*", "HOST": "127.0.0.1"},  # only the local proxy reaches it
        {"FORWARDED_ALLOW_IPS": "", "HOST": "127.0.0.1"},  # local proxy: loopback is trusted
        {"FORWARDED_ALLOW_IPS": "", "CORS_ORIGINS": "[]"},  # no https origin: no proxy known
        {"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"},  # a local model server
        {"OPENAI_BASE_URL": "http://localhost:8000/v1"},
        {"EMBEDDINGS_BASE_URL": "http://embed.internal/v1"},  # not used: EMBEDDINGS=bundled
        {"REDIS_URL": "", "CONVERSATION_SECRET": ""},  # one replica: the per-process secret
        {"RATE_LIMIT_REQUESTS": "1000", "RATE_LIMIT_WINDOW": "3600"},  # 17/min
        # analytics behind a token, or behind sign-in (ANALYTICS_ENABLED is then moot)
        {"ANALYTICS_ENABLED": "true", "ADMIN_TOKEN": "an-admin-token-of-24-chars"},
        {
            "ANALYTICS_ENABLED": "true",
            "AUTH_USERS": f"alice:{hash_password('pw', iterations=100_000)}",
            "CHAINLIT_AUTH_SECRET": "a-strong-chainlit-auth-secret-of-48-characters-x",
        },
        # offline (no key): nothing to spend, budgets do not matter
        {
            "OPENAI_API_KEY": "",
            "SPEND_DEPLOYMENT_DAILY_TOKENS": "0",
            "SPEND_CLIENT_DAILY_TOKENS": "0",
            "SPEND_CONVERSATION_TOKENS": "0",
        },
    ],
)
def test_safe_variants_raise_no_warning(
    capsys: pytest.CaptureFixture[str], safe: dict[str, str]
) -> None:
    code, lines, _ = run_check(capsys, "--strict", **(HARDENED | safe))
    assert (code, lines) == (0, ["ok  no unsafe deployment settings found"])


def test_several_problems_one_line_each_and_no_secret_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = "sk-RECOGNISABLE-key-4242"
    code, lines, _ = run_check(
        capsys,
        "--strict",
        **HARDENED
        | {
            "OPENAI_API_KEY": key,
            "OPENAI_BASE_URL": "http://llm.lan/v1",
            "CORS_ORIGINS": "*",
            "DEBUG": "1",
            "CONVERSATION_SECRET": "",
        },
    )
    assert code == 1
    assert warned(lines) == ["CORS_ORIGINS", "DEBUG", "CONVERSATION_SECRET", "OPENAI_BASE_URL"]
    assert not any(key in line or "shared-secret" in line for line in lines)


def test_fresh_clone_defaults_warn_and_strict_fails(tmp_path: Path) -> None:
    """No .env, no settings in the environment: the real CLI in a subprocess."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES and k != "CI"}
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "faqbot", "check", "--deployment"]

    def run(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *flags], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip

    plain, strict = run(), run("--strict")
    assert plain.returncode == 0, plain.stderr
    assert strict.returncode == 1, strict.stderr
    assert plain.stdout == strict.stdout
    lines = strict.stdout.splitlines()
    assert "CORS_ORIGINS" in warned(lines)
    assert "deployment warning(s)" in strict.stderr

    # Adding just a key: nothing caps the deployment's daily spend.
    env["OPENAI_API_KEY"] = "sk-fresh-clone-key-0000"
    keyed = run("--strict")
    assert keyed.returncode == 1
    assert "SPEND_DEPLOYMENT_DAILY_TOKENS" in warned(keyed.stdout.splitlines())
    assert "sk-fresh-clone-key-0000" not in keyed.stdout + keyed.stderr
    del env["OPENAI_API_KEY"]

    # Copying .env.example (as the README says) is still the development set-up.
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    copied = run("--strict")
    assert copied.returncode == 1
    assert "CORS_ORIGINS" in warned(copied.stdout.splitlines())


def test_check_without_deployment_still_validates_faq_files(
    small_faq_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["check", str(small_faq_dir)]) == 0
    assert capsys.readouterr().out.count("ok  ") == 3
    assert cli.main(["check", "--strict", str(small_faq_dir)]) == 2
    assert "--strict goes with --deployment" in capsys.readouterr().err
    assert cli.main(["check", "--deployment", str(small_faq_dir)]) == 2
    assert "takes no DIR" in capsys.readouterr().err


def test_the_auth_header_warning_says_the_proxy_must_overwrite_it_even_on_loopback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A proxy on the same machine that passes the client's header through (the seed's nginx
    config did) lets anyone sign in as anyone: HOST on loopback does not make it safe."""
    env = HARDENED | {"AUTH_HEADER": "X-Auth-User", "CHAINLIT_AUTH_SECRET": "k" * 48}
    for host in ("127.0.0.1", "0.0.0.0"):
        code, lines, _ = run_check(capsys, "--strict", **(env | {"HOST": host}))
        assert code == 1
        assert warned(lines) == ["AUTH_HEADER"]
        assert 'proxy_set_header X-Auth-User "";' in lines[0]
        assert ("without the proxy" in lines[0]) is (host == "0.0.0.0")


@pytest.mark.parametrize("secret", ["changeme", "x" * 31, "  short-secret-padded  "])
def test_a_weak_chainlit_auth_secret_fails_the_check_naming_the_setting(
    capsys: pytest.CaptureFixture[str], secret: str
) -> None:
    code, lines, err = run_check(capsys, "--strict", **HARDENED, CHAINLIT_AUTH_SECRET=secret)
    assert code == 1
    assert lines == []
    assert "CHAINLIT_AUTH_SECRET: " in err
    assert "at least 32" in err
    assert "chainlit create-secret" in err
    assert secret.strip() not in err  # never printed
