"""Sign-in settings: password hashes (never plain text), AUTH_USERS parsing, the hash CLI."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from faqbot.errors import ConfigError
from faqbot.passwords import hash_password, is_password_hash, verify_password
from tests.conftest import ROOT

FAST = 100_000  # the lowest accepted cost, to keep tests quick


def test_a_hash_verifies_its_password_only() -> None:
    encoded = hash_password("s3cret pass", iterations=FAST)
    assert encoded.startswith("pbkdf2_sha256$100000$")
    assert "s3cret" not in encoded
    assert verify_password("s3cret pass", encoded)
    assert not verify_password("s3cret pas", encoded)
    assert not verify_password("s3cret pass", None)  # unknown user: same work, refused
    assert hash_password("same", iterations=FAST) != hash_password("same", iterations=FAST)


@pytest.mark.parametrize(
    "bad",
    ["plain-password", "pbkdf2_sha256$1000$salt$" + "A" * 44, "md5$1$2$3", "pbkdf2_sha256$x$s$h"],
)
def test_only_well_formed_strong_hashes_are_accepted(bad: str) -> None:
    assert not is_password_hash(bad)
    assert not verify_password("anything", bad)


def test_auth_users_take_hashes_and_refuse_plain_passwords(make_settings: Any) -> None:
    alice, bob = hash_password("a", iterations=FAST), hash_password("b", iterations=FAST)
    settings = make_settings(auth_users=f"alice:{alice}, bob:{bob}\n")
    assert set(settings.auth_users) == {"alice", "bob"}
    assert verify_password("b", settings.auth_users["bob"].get_secret_value())
    assert settings.auth_enabled
    assert "pbkdf2" not in repr(settings)  # hashes are kept as secrets, never printed
    with pytest.raises(ConfigError, match=r"AUTH_USERS.*alice.*hash-password"):
        make_settings(auth_users="alice:hunter2")
    assert not make_settings().auth_enabled
    assert make_settings(auth_header="X-Forwarded-User").auth_enabled
    assert make_settings(auth_header="  ").auth_header is None


def test_hash_password_cli_reads_stdin_and_prints_an_entry() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "faqbot", "hash-password", "--user", "carol"],
        input="horse battery\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    name, _, encoded = out.stdout.strip().partition(":")
    assert name == "carol"
    assert verify_password("horse battery", encoded)
    empty = subprocess.run(
        [sys.executable, "-m", "faqbot", "hash-password"],
        input="\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert empty.returncode == 1
    assert "empty" in empty.stderr


def test_database_url_forms(make_settings: Any, tmp_path: Any) -> None:
    from faqbot.store.database import database_url

    default = database_url(make_settings(data_dir=tmp_path / "d"))
    assert default.drivername == "sqlite+aiosqlite"
    assert default.database == str((tmp_path / "d" / "faqbot.db").resolve())
    pg = database_url(make_settings(database_url="postgres://u:pw@db:5432/app"))
    assert pg.drivername == "postgresql+asyncpg"
    assert "pw" not in pg.render_as_string(hide_password=True)
    with pytest.raises(ConfigError, match="unsupported database 'mysql'"):
        database_url(make_settings(database_url="mysql://u@h/db"))
    with pytest.raises(ConfigError, match="DATABASE_SCHEMA"):
        make_settings(database_schema="Robert'); DROP")
