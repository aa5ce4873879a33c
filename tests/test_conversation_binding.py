"""A conversation id is not a password (issue 14, "conversation ids work as passwords").

Before: whoever knew an API `conversation_id` (it is logged, and sent in every SSE `route`
event) continued that conversation and read its earlier question back through
`route.standalone_question` (the follow-up rewrite quotes it), and wrote into it. Now the first
answer hands out a `conversation_token` (HMAC of the id under CONVERSATION_SECRET, or a
per-process secret); a follow-up continues the conversation only with that token, and without
it starts a new conversation that sees none of the earlier turns.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from faqbot.answering.factory import build_bot
from faqbot.config import load_settings
from faqbot.errors import ConfigError
from faqbot.state.conversations import ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.web.app import create_api
from tests import fake_openai as fo

ALICE = "Which payment methods do you accept?"
FOLLOW_UP = "and for annual ones?"
PAYMENT_ENTRY = "sales-which-payment-methods-do-you-accept"
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."


def client_for(settings: Any, store: ConversationStore | None = None) -> httpx.AsyncClient:
    bot = build_bot(settings)
    store = ConversationStore() if store is None else store  # an empty store is falsy
    api = create_api(lambda: bot, RateLimiter(1000, 60), settings, store)
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def sse_events(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


async def stream(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """The stream's `route` and `done` events."""
    resp = await client.post("/chat/stream", json=body)
    assert resp.status_code == 200
    events = dict(sse_events(resp.text))
    return {"route": events["route"], "done": events["done"]}


async def test_a_known_conversation_id_alone_reads_nothing_back(make_settings: Any) -> None:
    """The probe: Mallory learns Alice's id and asks a follow-up with it (SSE)."""
    store = ConversationStore()
    async with client_for(make_settings(), store) as c:
        alice = (await c.post("/chat", json={"question": ALICE})).json()
        cid = alice["conversation_id"]
        mallory = await stream(c, {"question": FOLLOW_UP, "conversation_id": cid})
    assert "payment" not in mallory["route"]["standalone_question"].lower()
    assert mallory["route"]["standalone_question"] == FOLLOW_UP
    assert mallory["done"]["conversation_id"] != cid, "a new conversation must be started"
    assert mallory["route"]["conversation_id"] == mallory["done"]["conversation_id"]
    assert PAYMENT_ENTRY not in [s["id"] for s in mallory["done"]["sources"]]
    # ... and nothing was written into Alice's conversation
    assert [t.content for t in await store.history(cid)] == [ALICE, alice["answer"]]


async def test_a_known_id_alone_does_not_continue_the_json_api_either(make_settings: Any) -> None:
    async with client_for(make_settings()) as c:
        alice = (await c.post("/chat", json={"question": ALICE})).json()
        mallory = await c.post(
            "/chat", json={"question": FOLLOW_UP, "conversation_id": alice["conversation_id"]}
        )
    assert mallory.status_code == 200
    body = mallory.json()
    assert body["conversation_id"] != alice["conversation_id"]
    assert body["conversation_token"] != alice["conversation_token"]
    assert PAYMENT_ENTRY not in [s["id"] for s in body["sources"]]


@pytest.mark.parametrize("forged", ["other", "tampered", "garbage", "empty"])
async def test_a_wrong_token_starts_a_new_conversation(make_settings: Any, forged: str) -> None:
    async with client_for(make_settings()) as c:
        alice = (await c.post("/chat", json={"question": ALICE})).json()
        other = (await c.post("/chat", json={"question": "What is your refund policy?"})).json()
        token = alice["conversation_token"]
        wrong = {
            "other": other["conversation_token"],  # valid, but for another conversation
            "tampered": token[:-1] + ("A" if token[-1] != "A" else "B"),
            "garbage": "v1.abc",
            "empty": "",
        }[forged]
        body = {"question": FOLLOW_UP, "conversation_id": alice["conversation_id"]}
        if forged == "empty":
            resp = await c.post("/chat", json={**body, "conversation_token": wrong})
            assert resp.status_code == 422  # a token, when sent, is not blank
            return
        mallory = await stream(c, {**body, "conversation_token": wrong})
    assert mallory["route"]["standalone_question"] == FOLLOW_UP
    assert mallory["done"]["conversation_id"] != alice["conversation_id"]


async def test_the_owner_continues_with_the_token(make_settings: Any) -> None:
    """JSON then SSE: the token comes with every answer and carries the conversation on."""
    async with client_for(make_settings()) as c:
        first = (await c.post("/chat", json={"question": ALICE})).json()
        cid, token = first["conversation_id"], first["conversation_token"]
        assert token.startswith("v1.")
        owner = {"conversation_id": cid, "conversation_token": token}
        follow = await stream(c, {"question": FOLLOW_UP, **owner})
        again = (await c.post("/chat", json={"question": "and for monthly ones?", **owner})).json()
    assert follow["route"]["standalone_question"] == f"{ALICE} {FOLLOW_UP}"
    assert follow["done"]["conversation_id"] == cid
    assert follow["done"]["conversation_token"] == token
    assert follow["done"]["sources"][0]["id"] == PAYMENT_ENTRY
    assert again["conversation_id"] == cid
    assert again["conversation_token"] == token


async def test_a_client_chosen_id_is_not_adopted(make_settings: Any) -> None:
    """An id the server never issued (no token) cannot be squatted for someone to join later."""
    async with client_for(make_settings()) as c:
        resp = (await c.post("/chat", json={"question": ALICE, "conversation_id": "mine"})).json()
    assert resp["conversation_id"] != "mine"


@pytest.mark.llm
async def test_the_router_never_sees_another_clients_turns(
    make_settings: Any, fake_openai: Any
) -> None:
    """LLM path: Mallory's router call carries her question alone, none of Alice's turns."""
    settings = make_settings(
        openai_api_key="k",
        openai_base_url=fake_openai.base_url,
        openai_max_retries=0,
        local_routing=False,
    )
    fake_openai.script(
        fo.tool("faq_sales", question="Do you offer discounts?"),
        fo.text(DISCOUNT),
        fo.tool("faq_sales", question="and for annual plans?"),
        fo.text(DISCOUNT),
    )
    secret = "Do you offer discounts? My account is ACME-4417."
    async with client_for(settings) as c:
        alice = (await c.post("/chat", json={"question": secret})).json()
        await c.post(
            "/chat",
            json={"question": "and for annual plans?", "conversation_id": alice["conversation_id"]},
        )
    mallory_router = fake_openai.requests[2]
    contents = [str(m.get("content")) for m in mallory_router["messages"]]
    assert not any("ACME-4417" in text for text in contents)
    assert contents[-1] == "and for annual plans?"


async def test_replicas_sharing_conversation_secret_accept_each_others_tokens(
    make_settings: Any,
) -> None:
    """Two replicas (one store standing in for sticky routing/shared history) with the same
    CONVERSATION_SECRET continue each other's conversations; a replica with another secret, or
    with none (a random per-process secret), starts a new one."""
    store = ConversationStore()
    shared = "s3cret-shared-by-all-replicas-0123456789"
    async with (
        client_for(make_settings(conversation_secret=shared), store) as one,
        client_for(make_settings(conversation_secret=shared), store) as two,
        client_for(make_settings(conversation_secret="another-secret-0123456789"), store) as other,
        client_for(make_settings(), store) as unset,
    ):
        first = (await one.post("/chat", json={"question": ALICE})).json()
        owner = {
            "question": FOLLOW_UP,
            "conversation_id": first["conversation_id"],
            "conversation_token": first["conversation_token"],
        }
        on_two = await stream(two, owner)
        on_other = await stream(other, owner)
        on_unset = await stream(unset, owner)
    assert on_two["done"]["conversation_id"] == first["conversation_id"]
    assert on_two["route"]["standalone_question"] == f"{ALICE} {FOLLOW_UP}"
    for refused in (on_other, on_unset):
        assert refused["done"]["conversation_id"] != first["conversation_id"]
        assert refused["route"]["standalone_question"] == FOLLOW_UP


def test_signer_tokens_are_bound_to_id_and_secret() -> None:
    # new here: the module imports without
    from faqbot.state.conversations import ConversationSigner

    signer = ConversationSigner(b"k" * 32)
    token = signer.token("abc")
    assert signer.verify("abc", token)
    assert not signer.verify("abd", token)
    assert not signer.verify("abc", None)
    assert not signer.verify("abc", "")
    assert not ConversationSigner(b"j" * 32).verify("abc", token)
    assert ConversationSigner(b"k" * 32).verify("abc", token)
    per_process = ConversationSigner()
    assert per_process.per_process
    assert per_process.verify("abc", per_process.token("abc"))
    assert not per_process.verify("abc", token)
    assert "k" * 8 not in repr(signer)


def test_conversation_secret_is_validated_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVERSATION_SECRET", "tiny")
    with pytest.raises(ConfigError, match="CONVERSATION_SECRET") as err:
        load_settings()
    assert "tiny" not in str(err.value)
    monkeypatch.setenv("CONVERSATION_SECRET", "   ")
    assert load_settings().conversation_secret is None
    value = "a-long-enough-conversation-secret-value"
    monkeypatch.setenv("CONVERSATION_SECRET", value)
    settings = load_settings()
    assert settings.conversation_secret is not None
    assert settings.conversation_secret.get_secret_value() == value
    assert value not in repr(settings)
    assert value not in str(settings.model_dump())
