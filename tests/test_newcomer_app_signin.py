"""A newcomer turns sign-in on with plain `chainlit run` and no CHAINLIT_AUTH_SECRET: the app
starts (Chainlit alone refuses to), keeps one secret in DATA_DIR so a restart signs nobody out,
and its sign-in form asks for a user name, not an e-mail address (issue 24, item 7)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from faqbot.passwords import MIN_ITERATIONS, hash_password
from tests.e2e_support import chainlit_server


def test_sign_in_survives_a_restart_without_a_set_secret(tmp_path: Path) -> None:
    env = {
        "AUTH_USERS": f"ann:{hash_password('ann-pw', iterations=MIN_ITERATIONS)}",
        "DATA_DIR": str(tmp_path),
    }
    assert "CHAINLIT_AUTH_SECRET" not in os.environ  # the child inherits none
    with chainlit_server(env) as url:
        signed = httpx.post(f"{url}/login", data={"username": "ann", "password": "ann-pw"})
        signed.raise_for_status()
        labels = httpx.get(f"{url}/project/translations", params={"language": "en-US"}).json()
    kept = tmp_path / "chainlit-auth.secret"
    assert kept.stat().st_mode & 0o777 == 0o600
    with chainlit_server(env) as url:  # the same DATA_DIR: the same secret
        me = httpx.get(f"{url}/user", cookies=signed.cookies)
    assert me.status_code == 200
    assert me.json()["identifier"] == "ann"
    assert labels["translation"]["auth"]["login"]["form"]["email"]["label"] == "User name"
