"""With sign-in on and no CHAINLIT_AUTH_SECRET, one is made once and kept in DATA_DIR.

Chainlit refuses to start with sign-in on and no secret; the README's old example made a new one
at every start, which signed everyone out at each restart.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from faqbot.config import Settings
from faqbot.ops.auth_secret import ENV_NAME, SECRET_FILE, ensure_auth_secret
from faqbot.passwords import hash_password
from tests.e2e_support import free_port
from tests.test_serve import SERVE, http_json, serve_env, serving

USERS = f"alice:{hash_password('alice pass', iterations=100_000)}"


def _settings(data_dir: Path, **extra: str) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, **extra)  # type: ignore[call-arg]


def test_a_secret_is_made_once_kept_owner_only_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_NAME, "-")  # recorded first: the test's exports are undone after it
    monkeypatch.delenv(ENV_NAME)
    settings = _settings(tmp_path / "data", auth_users=USERS)
    path = ensure_auth_secret(settings)
    assert path == tmp_path / "data" / SECRET_FILE
    first = path.read_text()
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.environ[ENV_NAME] == first
    monkeypatch.delenv(ENV_NAME)  # a restart
    assert ensure_auth_secret(settings) == path
    assert os.environ[ENV_NAME] == first
    assert [p.name for p in path.parent.iterdir()] == [SECRET_FILE]  # no temporary left


def test_nothing_is_made_when_sign_in_is_off_or_a_secret_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_NAME, raising=False)
    for name in [n for n in os.environ if n.startswith("OAUTH_")]:
        monkeypatch.delenv(name)
    assert ensure_auth_secret(_settings(tmp_path)) is None
    monkeypatch.setenv(ENV_NAME, "x" * 40)
    assert ensure_auth_secret(_settings(tmp_path, auth_users=USERS)) is None
    assert not (tmp_path / SECRET_FILE).exists()


def test_serve_starts_with_sign_in_and_no_secret_and_keeps_it_across_restarts(
    tmp_path: Path,
) -> None:
    port = free_port()
    data = tmp_path / "data"
    env = serve_env(PORT=str(port), HOST="127.0.0.1", DATA_DIR=str(data), AUTH_USERS=USERS)
    env.pop(ENV_NAME, None)
    url = f"http://127.0.0.1:{port}"
    secrets_seen = []
    for _ in range(2):
        with serving(SERVE, env, url) as served:
            assert http_json(f"{url}/health") is not None
            secrets_seen.append((data / SECRET_FILE).read_text())
            assert served.stop() == 0
        assert "auth.secret_from_data_dir" in served.output()
        assert secrets_seen[-1] not in served.output()  # never logged
    assert secrets_seen[0] == secrets_seen[1]
