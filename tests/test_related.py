"""Related questions after an answer (issue 21 item 2): the YAML `related:` list, validated with
file:line problems, else the nearest entries; returned by /api/chat as `related`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from faqbot.answering.bot import FaqBot
from faqbot.answering.factory import build_bot
from faqbot.knowledge import check_dir, load_knowledge_base
from faqbot.retrieval.embedders import HashEmbedder
from faqbot.retrieval.indexer import SemanticIndexer
from faqbot.state.conversations import ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.web.app import create_api

ROOT = Path(__file__).resolve().parent.parent
INVITE_Q = "How do I invite a new user to my workspace?"
ROLES = "account-what-user-roles-are-available"
REMOVE = "account-how-do-i-remove-a-user-from-my-workspace"
REFUND = "sales-what-is-your-refund-policy"

SALES = "SALES FAQ\n\nQ: What is your refund policy?\nA: 30 days, money back.\n"
ACCOUNT = """entries:
  - question: "How do I reset my password?"
    alternate_questions: ["I forgot my password"]
    answer: "Click Forgot password."
    related: ["What is your refund policy?", "acct-2fa", "i FORGOT my password"]
  - question: "How do I turn on 2FA?"
    id: acct-2fa
    answer: "Profile > Security."
    related: ["What is your refund policy?", "Where is the moon?"]
  - question: "Which roles exist?"
    answer: "Four."
    related: "What is your refund policy?"
  - question: "Can I export?"
    answer: "Yes."
    related: ["How do I reset my password?", "acct-2fa", "Which roles exist?", "Can I export?"]
"""

ACCOUNT_OK = """entries:
  - question: "How do I reset my password?"
    alternate_questions: ["I forgot my password"]
    answer: "Click Forgot password."
    related: ["What is your refund policy?", "acct-2fa", "acct-2fa"]
  - question: "How do I turn on 2FA?"
    id: acct-2fa
    answer: "Profile > Security."
    related: ["i forgot my password"]
"""


def _folder(tmp_path: Path) -> Path:
    (tmp_path / "sales.txt").write_text(SALES, encoding="utf-8")
    (tmp_path / "account.yaml").write_text(ACCOUNT, encoding="utf-8")
    return tmp_path


def test_related_items_are_checked_with_their_file_and_line(tmp_path: Path) -> None:
    _, problems = check_dir(_folder(tmp_path))
    found = {(p.path.name, p.line, p.message) for p in problems}
    assert found == {
        ("account.yaml", 5, "related: 'i FORGOT my password' is this entry itself"),
        ("account.yaml", 9, "related: no entry has the question or id 'Where is the moon?'"),
        ("account.yaml", 12, "related must be a list of questions"),
        ("account.yaml", 15, "related lists 4 questions; at most 3 are shown"),
    }


def test_related_items_name_entries_of_any_file_by_question_or_id(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "account.yaml").write_text(ACCOUNT_OK, encoding="utf-8")
    kb = load_knowledge_base(folder)
    password = next(e for e in kb.entries if e.question == "How do I reset my password?")
    assert password.related == (REFUND, "acct-2fa")  # by question (any file), by id
    assert kb.by_id["acct-2fa"].related == ("account-how-do-i-reset-my-password",)  # alternate


@pytest.fixture
def bot(make_settings: Any) -> FaqBot:
    return build_bot(make_settings(faq_dir=ROOT / "faqs"))


async def _chat(bot: FaqBot, settings: Any, question: str) -> dict[str, Any]:
    api = create_api(lambda: bot, RateLimiter(1000, 60), settings, ConversationStore())
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post("/chat", json={"question": question})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_the_api_returns_the_authors_related_questions(
    bot: FaqBot, make_settings: Any
) -> None:
    body = await _chat(bot, make_settings(), INVITE_Q)
    assert [r["id"] for r in body["related"]] == [ROLES, REMOVE]
    assert body["related"][0]["url"] == f"/api/faq/{ROLES}"
    assert body["related"][1]["question"] == "How do I remove a user from my workspace?"


async def test_without_a_list_the_nearest_entries_are_related(
    bot: FaqBot, make_settings: Any
) -> None:
    body = await _chat(bot, make_settings(), "What is your refund policy?")
    assert body["sources"][0]["id"] == REFUND
    related = [r["id"] for r in body["related"]]
    assert len(related) == 3
    assert REFUND not in related


async def test_nothing_is_related_to_a_refusal(bot: FaqBot, make_settings: Any) -> None:
    body = await _chat(bot, make_settings(), "What's the weather in Paris?")
    assert body["outcome"] == "refused"
    assert body["related"] == []


def test_nearest_entries_by_meaning_with_a_dense_index(make_settings: Any, tmp_path: Path) -> None:
    semantic = SemanticIndexer(HashEmbedder(), tmp_path / "vectors")
    bot = build_bot(make_settings(faq_dir=ROOT / "faqs"), semantic=semantic)
    assert bot.wait_for_vectors(20)
    assert bot.retriever.mode == "hybrid"
    near = bot.retriever.related(REFUND)
    assert len(near) == 3
    assert REFUND not in {e.id for e in near}
    assert [
        e.id for e in bot.retriever.related("account-how-do-i-invite-a-new-user-to-my-workspace")
    ] == [ROLES, REMOVE]


def test_an_edit_of_related_alone_is_a_new_knowledge_version(tmp_path: Path) -> None:
    """The reloader swaps in a new knowledge base only when its version changes."""
    folder = _folder(tmp_path)
    (folder / "account.yaml").write_text(ACCOUNT_OK, encoding="utf-8")
    before = load_knowledge_base(folder).version
    edited = ACCOUNT_OK.replace('related: ["i forgot my password"]', "related: []")
    (folder / "account.yaml").write_text(edited, encoding="utf-8")
    assert load_knowledge_base(folder).version != before
