"""Suggestion turns ("Did you mean") and the mode notice, over Chainlit's real protocol.

The server runs with CONFIDENCE_THRESHOLD=1.0 and SUGGEST_THRESHOLD=0.0: every question that only
partly matches the FAQ lands in the suggest zone, whatever engine computes the confidences.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from faqbot.answering.offline import SUGGEST_TEXT
from faqbot.answering.render import GONE
from faqbot.knowledge.loader import load_knowledge_base
from tests.e2e_support import ROOT, ChatClient, chainlit_server, server_logs_on_failure

pytestmark = pytest.mark.chainlit
UNSURE_Q = "Is there a refund if I cancel my annual plan?"
ACTION = "faq_suggestion"
KB = load_knowledge_base(ROOT / "faqs")
LLM_WATERMARK = "LLMs can make mistakes"


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


@pytest.fixture(scope="module")
def unsure_url() -> Iterator[str]:
    env = {
        "CONFIDENCE_THRESHOLD": "1.0",
        "SUGGEST_THRESHOLD": "0.0",
        "EMBEDDINGS": "off",
        "RATE_LIMIT_REQUESTS": "1000",
    }
    with chainlit_server(env) as url:
        yield url


async def test_a_suggestion_turn_offers_one_button_per_entry(unsure_url: str) -> None:
    async with ChatClient(unsure_url) as chat:
        turn = await chat.ask(UNSURE_Q)
    assert turn.errors == []
    assert turn.text.startswith(SUGGEST_TEXT)  # the streamed plain text lists the questions...
    reply = turn.replies[-1]
    assert turn.reply.startswith(SUGGEST_TEXT)  # ...the final message shows buttons instead
    assert "\n- " not in turn.reply
    assert "no confident match, closest FAQ questions offered" in turn.reply
    assert "quoted from the FAQ" not in turn.reply
    assert 2 <= len(turn.actions) <= 3
    for action in turn.actions:
        entry = KB.entry(action["payload"]["entry_id"])
        assert action["name"] == ACTION
        assert action["label"] == entry.question
        assert action["forId"] == reply["id"]


async def test_clicking_a_suggestion_answers_it_and_removes_the_buttons(unsure_url: str) -> None:
    async with ChatClient(unsure_url) as chat:
        turn = await chat.ask(UNSURE_Q)
        chosen = turn.actions[0]
        response, clicked = await chat.click(chosen)
        follow = await chat.ask("and what about that?")
    entry = KB.entry(chosen["payload"]["entry_id"])
    assert response["success"] is True
    assert {a["id"] for a in clicked.removed_actions} == {a["id"] for a in turn.actions}
    users = [m for m in clicked.messages if m.get("type") == "user_message"]
    assert [u["output"] for u in users] == [entry.question]  # shown as the user's turn
    assert clicked.reply.startswith(entry.answer)
    assert f"**Sources:** [{entry.question}](/api/faq/{entry.id})" in clicked.reply
    assert "chosen from the suggestions · quoted from the FAQ" in clicked.reply
    # The chosen question is in the session's history: the follow-up is read with it.
    assert follow.router is not None
    assert f"Looked up: {entry.question} and what about that?" in (follow.router["output"])


async def test_a_suggestion_removed_by_a_reload_is_answered_politely(unsure_url: str) -> None:
    async with ChatClient(unsure_url) as chat:
        turn = await chat.ask(UNSURE_Q)
        gone = {**turn.actions[0], "payload": {"entry_id": "sales-an-entry-deleted-since"}}
        response, clicked = await chat.click(gone)
    assert response["success"] is True
    assert clicked.reply == GONE
    assert clicked.errors == []


async def _watermark(url: str, language: str) -> str:
    async with httpx.AsyncClient(base_url=url) as http:
        resp = await http.get("/project/translations", params={"language": language})
    resp.raise_for_status()
    return str(resp.json()["translation"]["chat"]["watermark"])


@pytest.mark.parametrize("language", ["en-US", "de-DE", "fr-FR"])
async def test_the_offline_notice_says_answers_are_quoted(unsure_url: str, language: str) -> None:
    text = await _watermark(unsure_url, language)
    assert text.startswith("Answers are quoted from the FAQ.")
    assert LLM_WATERMARK not in text


async def test_the_llm_notice_says_an_ai_writes_from_the_faq(fake_openai_server: Any) -> None:
    fake_openai_server.reset()
    env = {
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": fake_openai_server.base_url,
        "EMBEDDINGS": "off",
    }
    with chainlit_server(env) as url:
        text = await _watermark(url, "en-US")
    assert "written by an AI from the FAQ only" in text


async def test_without_a_faq_the_chat_says_what_is_true(tmp_path: Path) -> None:
    (tmp_path / "sales.txt").write_text("SALES FAQ\n\nQ: A question nobody answered?\n", "utf-8")
    env = {"FAQ_DIR": str(tmp_path), "SUPPORT_CONTACT": "help@example.org", "EMBEDDINGS": "off"}
    with chainlit_server(env) as url:
        async with ChatClient(url) as chat:
            turn = await chat.ask("What is your refund policy?")
        notice = await _watermark(url, "en-US")
    assert "could not be loaded" in turn.reply
    assert "Please try again later" in turn.reply
    assert "help@example.org" in turn.reply
    assert "notified" not in turn.reply  # nobody is
    assert "could not be loaded" in notice
