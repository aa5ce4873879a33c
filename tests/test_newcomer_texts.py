"""Texts a newcomer met: the sign-in field's label, the doubled contact line, bad JSON, --help."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from faqbot.answering.events import TurnResult
from faqbot.answering.render import message_markdown
from faqbot.config import REFUSAL_TEXT
from faqbot.web.login_labels import name_sign_in
from tests.test_api_edges import api_for
from tests.test_serve import ROOT


def _chainlit_translations() -> list[Path]:
    """The translations Chainlit ships (what `chainlit init` copies into .chainlit/)."""
    import chainlit

    return sorted((Path(chainlit.__file__).parent / "translations").glob("*.json"))


def test_the_sign_in_field_asks_for_a_user_name_in_every_shipped_language() -> None:
    files = _chainlit_translations()
    assert files, "Chainlit ships no translations: where does the login form's text come from?"
    for path in files:
        language = path.stem
        translation = name_sign_in(json.loads(path.read_text()), language)
        field = translation["auth"]["login"]["form"]["email"]
        assert "mail" not in field["label"].lower(), (language, field)
        assert "@" not in field["placeholder"], (language, field)
        assert field["required"], language
        if language == "en-US":
            assert field["label"] == "User name"
        if language == "de-DE":
            assert field["label"] == "Benutzername"


@pytest.mark.parametrize("language", ["en-US", "fr-FR", "xx-YY"])
def test_other_texts_of_the_form_stay(language: str) -> None:
    source = {"auth": {"login": {"title": "Login", "form": {"password": {"label": "Password"}}}}}
    result = name_sign_in(source, language)
    assert result["auth"]["login"]["title"] == "Login"
    assert result["auth"]["login"]["form"]["password"] == {"label": "Password"}


def test_a_refusal_that_already_says_contact_support_is_not_followed_by_a_second_ask() -> None:
    refused = TurnResult(
        question="What's the weather?",
        answer=REFUSAL_TEXT,
        category=None,
        confidence=0.1,
        standalone_question="What's the weather?",
        sources=(),
        refused=True,
    )
    text = message_markdown(refused, contact="help@example.org")
    assert text.lower().count("contact support") == 1, text
    assert "help@example.org" in text
    # A custom refusal that does not ask still gets the full line.
    own = message_markdown(replace(refused, answer="Not in the FAQ."), contact="help@example.org")
    assert "Need more help? Contact support: help@example.org" in own


def test_a_body_that_is_not_json_is_called_that(make_settings: Any) -> None:
    with TestClient(api_for(make_settings), raise_server_exceptions=False) as client:
        resp = client.post(
            "/chat",  # /api/chat in the app (this API is mounted under /api)
            content=b'{"question": "refund?",}',
            headers={"content-type": "application/json"},
        )
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["error_code"] == "VALIDATION_ERROR"
    assert body["detail"].startswith("The request body is not valid JSON: "), body
    assert "double quotes" in body["detail"]  # the parser's reason
    assert "at character 23" in body["detail"]
    assert "JSON decode error" not in body["detail"]


def test_help_names_every_command() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "faqbot", "--help"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    usage, summary = help_text.split("positional arguments")[0].split("\n\n", 1)
    commands = re.search(r"\{([a-z,-]+)\}", usage).group(1).split(",")  # type: ignore[union-attr]
    assert "redteam" in commands
    flat = "".join(summary.split())  # argparse wraps lines, even inside delete-user
    for name in commands:
        assert name in flat, (name, summary)
