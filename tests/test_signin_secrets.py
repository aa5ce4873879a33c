"""A weak CHAINLIT_AUTH_SECRET stops the app (issue 20, item 9).

Whoever knows the secret signs sessions for anyone: the finding forged a JWT with "changeme" for
an unknown user with `metadata.role=admin` and read /api/analytics. The app now refuses to start
with a secret under 32 characters, naming the setting and how to make one (never echoing it);
`check --deployment` refuses it the same way (tests/test_deployment_check.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from faqbot.errors import ConfigError
from faqbot.passwords import MIN_ITERATIONS, hash_password
from tests.e2e_support import chainlit_server

WEAK = "changeme"


@pytest.mark.chainlit
def test_the_app_refuses_to_start_with_a_weak_secret() -> None:
    env = {
        "AUTH_USERS": f"alice:{hash_password('alice-pw', iterations=MIN_ITERATIONS)}",
        "CHAINLIT_AUTH_SECRET": WEAK,
    }
    with pytest.raises(RuntimeError, match="chainlit exited") as refused, chainlit_server(env):
        pass
    text = str(refused.value)
    assert "CHAINLIT_AUTH_SECRET" in text
    assert "at least 32" in text
    assert "chainlit create-secret" in text
    assert WEAK not in text.replace("CHAINLIT_AUTH_SECRET", "")


@pytest.mark.parametrize("weak", ["changeme", "x" * 31, "  " + "y" * 31 + "  "])
def test_weak_secrets_are_refused_blank_means_unset(make_settings: Any, weak: str) -> None:
    with pytest.raises(ConfigError, match=r"CHAINLIT_AUTH_SECRET: .*at least 32"):
        make_settings(chainlit_auth_secret=weak)
    assert make_settings(chainlit_auth_secret="  ").chainlit_auth_secret is None
    strong = make_settings(chainlit_auth_secret="z" * 32)
    assert strong.chainlit_auth_secret is not None
    assert "z" * 32 not in repr(strong)  # a secret, never printed
