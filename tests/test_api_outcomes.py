"""The API's outcome of a turn (answered / suggested / refused), suggestions, support contact,
and the FAQ entry page for people (content negotiation on /api/faq/{id})."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from faqbot.answering.factory import build_bot
from faqbot.answering.offline import SUGGEST_TEXT
from tests.conftest import FAQ_DIR
from tests.test_api import client_for, sse_events

DISCOUNT_Q = "Do you offer discounts for annual subscriptions?"
OUT_OF_SCOPE = "What's the weather in Paris?"
# Shares words with several entries but matches none exactly: with CONFIDENCE_THRESHOLD=1.0 and
# SUGGEST_THRESHOLD=0.0 (every partial match is "unsure") it is a suggestion turn in any engine.
UNSURE_Q = "Is there a refund if I cancel my annual plan?"
SUGGEST = {"confidence_threshold": 1.0, "suggest_threshold": 0.0}
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def _client(settings: Any) -> httpx.AsyncClient:
    return client_for(build_bot(settings), settings)


async def _chat(settings: Any, question: str) -> dict[str, Any]:
    async with _client(settings) as client:
        resp = await client.post("/chat", json={"question": question})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_an_answer_has_outcome_answered_and_no_suggestions(make_settings: Any) -> None:
    body = await _chat(make_settings(), DISCOUNT_Q)
    assert body["outcome"] == "answered"
    assert body["refused"] is False
    assert body["suggestions"] == []
    assert body["support_contact"] is None


async def test_an_unsure_turn_suggests_entries_with_their_urls(make_settings: Any) -> None:
    body = await _chat(make_settings(**SUGGEST), UNSURE_Q)
    assert body["outcome"] == "suggested"
    assert body["refused"] is False
    assert body["sources"] == []
    assert body["answer"].startswith(SUGGEST_TEXT)
    assert 2 <= len(body["suggestions"]) <= 3
    for s in body["suggestions"]:
        assert s["url"] == f"/api/faq/{s['id']}"
        assert f"- {s['question']}" in body["answer"]


async def test_a_suggested_entry_url_gives_its_answer(make_settings: Any) -> None:
    settings = make_settings(**SUGGEST)
    async with _client(settings) as client:
        body = (await client.post("/chat", json={"question": UNSURE_Q})).json()
        first = body["suggestions"][0]
        entry = (await client.get(first["url"].removeprefix("/api"))).json()
    assert entry["question"] == first["question"]
    assert entry["answer"]


async def test_a_refusal_has_outcome_refused_and_the_configured_contact(
    make_settings: Any,
) -> None:
    body = await _chat(make_settings(support_contact="help@example.org"), OUT_OF_SCOPE)
    assert body["outcome"] == "refused"
    assert body["refused"] is True
    assert body["suggestions"] == []
    assert body["support_contact"] == "help@example.org"


async def test_a_refusal_without_any_contact_says_none(make_settings: Any) -> None:
    body = await _chat(make_settings(), OUT_OF_SCOPE)  # the small FAQ names no contact
    assert body["support_contact"] is None


async def test_the_shipped_faq_names_its_own_support_contact(make_settings: Any) -> None:
    body = await _chat(make_settings(faq_dir=FAQ_DIR, embeddings="off"), OUT_OF_SCOPE)
    assert body["support_contact"] == "support@lablens.example"


async def test_the_stream_sends_suggestions_and_the_outcome(make_settings: Any) -> None:
    async with _client(make_settings(**SUGGEST)) as client:
        resp = await client.post("/chat/stream", json={"question": UNSURE_Q})
    events = sse_events(resp.text)
    names = [name for name, _ in events]
    assert names[0] == "route"
    assert names[-3:] == ["sources", "suggestions", "done"]
    offered = events[-2][1]["suggestions"]
    assert 2 <= len(offered) <= 3
    assert all(s["url"] == f"/api/faq/{s['id']}" for s in offered)
    done = events[-1][1]
    assert done["outcome"] == "suggested"
    assert done["suggestions"] == offered


async def test_the_stream_done_event_of_a_refusal_carries_the_contact(make_settings: Any) -> None:
    async with _client(make_settings(support_contact="+1 555 0100")) as client:
        resp = await client.post("/chat/stream", json={"question": OUT_OF_SCOPE})
    events = sse_events(resp.text)
    assert "suggestions" not in [name for name, _ in events]
    done = events[-1][1]
    assert done["outcome"] == "refused"
    assert done["support_contact"] == "+1 555 0100"


# --- /api/faq/{id}: JSON for programs, an escaped HTML page for people ------------------------

HOSTILE_Q = 'Can I use <b>bold</b> & "quotes" in a <script>alert(1)</script> title?'
HOSTILE_A = 'Type <img src=x onerror="alert(2)"> and </p><a href="javascript:alert(3)">x</a>.'


def _hostile_faq(tmp_path: Path) -> Path:
    folder = tmp_path / "hostile"
    folder.mkdir(exist_ok=True)
    (folder / "web.txt").write_text(f"WEB FAQ\n\nQ: {HOSTILE_Q}\nA: {HOSTILE_A}\n", "utf-8")
    return folder


async def _entry_page(make_settings: Any, tmp_path: Path, accept: str) -> httpx.Response:
    settings = make_settings(faq_dir=_hostile_faq(tmp_path))
    bot = build_bot(settings)
    entry = bot.kb.entries[0]
    async with client_for(bot, settings) as client:
        return await client.get(f"/faq/{entry.id}", headers={"Accept": accept})


async def test_a_browser_gets_an_escaped_html_page(make_settings: Any, tmp_path: Path) -> None:
    resp = await _entry_page(make_settings, tmp_path, BROWSER_ACCEPT)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "accept" in resp.headers["vary"].lower()
    page = resp.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page
    assert "&lt;/p&gt;&lt;a href=&quot;javascript:alert(3)&quot;&gt;" in page
    for raw in ("<script>", "<img", "<b>", 'href="javascript'):
        assert raw not in page
    assert "category <strong>web</strong>" in page
    assert '<a href="/">' in page  # back to the chat


async def test_api_clients_still_get_json(make_settings: Any, tmp_path: Path) -> None:
    for accept in ("*/*", "application/json", "application/json, text/html", ""):
        resp = await _entry_page(make_settings, tmp_path, accept)
        assert resp.headers["content-type"] == "application/json", accept
        assert resp.json()["question"] == HOSTILE_Q
        assert resp.json()["answer"] == HOSTILE_A
