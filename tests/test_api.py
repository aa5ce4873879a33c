"""The JSON/SSE API: every route, status code and error shape.

In process through httpx's ASGI transport first, then against a running `chainlit run` over
loopback (the API mounted on Chainlit's server, the rate limit shared with the chat UI).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from pydantic import TypeAdapter, ValidationError

from faqbot.answering.bot import FaqBot
from faqbot.answering.factory import build_bot
from faqbot.errors import InputError
from faqbot.state.conversations import ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.validation import clean_question
from faqbot.web.app import create_api
from faqbot.web.schemas import VISIBLE_CHAR, ChatRequest
from tests import fake_openai as fo
from tests.e2e_support import ChatClient, chainlit_server

DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
ERROR_KEYS = {"error", "detail", "error_code"}


def client_for(bot: FaqBot | None, settings: Any, limit: int = 1000) -> httpx.AsyncClient:
    api = create_api(
        lambda: bot, RateLimiter(limit, 60), settings, ConversationStore(), prefix="/api"
    )
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def client(make_settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings()
    async with client_for(build_bot(settings), settings) as c:
        yield c


def sse_events(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


async def test_health_reports_mode_categories_and_breaker(client: httpx.AsyncClient) -> None:
    resp = await client.get("/health")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok"
    assert body["mode"] == "offline"
    assert {c["name"]: c["entries"] for c in body["categories"]} == {
        "labs": 3,
        "reports": 2,
        "sales": 4,
    }
    assert body["circuit_breaker"]["state"] == "closed"
    assert len(body["knowledge_version"]) == 12
    assert body["uptime_s"] >= 0


async def test_chat_answers_with_the_seed_shape(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/chat", json={"question": "Do you offer discounts for annual subscriptions?"}
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["answer"] == DISCOUNT
    assert body["category"] == "sales"
    assert 0.9 <= body["confidence"] <= 1.0
    assert len(body["conversation_id"]) == 32
    assert body["processing_time"] >= 0
    assert body["fallback"] is False
    assert body["refused"] is False
    src = body["sources"][0]
    assert src["id"] == "sales-do-you-offer-discounts-for-annual-subscriptions"
    entry = await client.get(src["url"].removeprefix("/api"))
    assert entry.status_code == 200
    assert entry.json()["answer"] == DISCOUNT


async def test_out_of_scope_is_refused(client: httpx.AsyncClient) -> None:
    body = (await client.post("/chat", json={"question": "What's the weather in Paris?"})).json()
    assert body["refused"] is True
    assert body["category"] is None
    assert body["sources"] == []
    assert body["answer"].startswith("I don't have that information")


async def test_follow_up_with_conversation_id_offline(client: httpx.AsyncClient) -> None:
    first = await client.post("/chat", json={"question": "Which payment methods do you accept?"})
    cid, token = first.json()["conversation_id"], first.json()["conversation_token"]
    follow = await client.post(
        "/chat",
        json={
            "question": "and for annual ones?",
            "conversation_id": cid,
            "conversation_token": token,
        },
    )
    assert follow.json()["conversation_id"] == cid
    assert follow.json()["sources"][0]["id"] == "sales-which-payment-methods-do-you-accept"
    fresh = await client.post("/chat", json={"question": "and for annual ones?"})
    assert fresh.json()["sources"][0]["id"] != "sales-which-payment-methods-do-you-accept"


async def test_follow_up_with_conversation_id_reaches_the_llm_router(
    make_settings: Any, fake_openai: Any
) -> None:
    settings = make_settings(
        openai_api_key="k", openai_base_url=fake_openai.base_url, openai_max_retries=0
    )
    standalone = "Do you offer discounts for annual subscriptions?"
    fake_openai.script(
        fo.tool("faq_sales", question="Do you offer discounts?"),
        fo.text(DISCOUNT),
        fo.tool("faq_sales", question=standalone),
        fo.text(DISCOUNT),
    )
    async with client_for(build_bot(settings), settings) as c:
        first = await c.post("/chat", json={"question": "Do you offer discounts?"})
        cid, token = first.json()["conversation_id"], first.json()["conversation_token"]
        follow = {"question": "and for annual plans?", "conversation_id": cid}
        await c.post("/chat", json={**follow, "conversation_token": token})
    contents = [m["content"] for m in fake_openai.requests[2]["messages"]]
    assert contents[1:] == ["Do you offer discounts?", DISCOUNT, "and for annual plans?"]


@pytest.mark.parametrize(
    "payload",
    [
        {"question": ""},
        {"question": "x" * 1001},
        {},
        {"question": 42},
        {"question": "ok", "conversation_id": "../etc/passwd"},
        {"question": "   "},
        {"question": "\u200b"},
    ],
)
async def test_invalid_requests_get_422_in_the_error_shape(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    for path in ("/chat", "/chat/stream"):
        resp = await client.post(path, json=payload)
        assert resp.status_code == 422, (path, payload, resp.text)
        body = resp.json()
        assert set(body) == ERROR_KEYS
        assert body["error_code"] in {"VALIDATION_ERROR", "INVALID_INPUT"}


async def test_malformed_json_body_is_422(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/chat", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 422
    assert resp.json()["error_code"] == "VALIDATION_ERROR"


async def test_rate_limit_gives_429_with_retry_after(make_settings: Any) -> None:
    settings = make_settings()
    async with client_for(build_bot(settings), settings, limit=2) as c:
        for _ in range(2):
            assert (await c.post("/chat", json={"question": "refund?"})).status_code == 200
        resp = await c.post("/chat", json={"question": "refund?"})
        stream = await c.post("/chat/stream", json={"question": "refund?"})
    assert resp.status_code == 429
    assert 1 <= int(resp.headers["retry-after"]) <= 60
    assert resp.json()["error_code"] == "RATE_LIMITED"
    assert set(resp.json()) == ERROR_KEYS
    assert stream.status_code == 429


async def test_503_when_no_knowledge_base_is_loaded(make_settings: Any) -> None:
    async with client_for(None, make_settings()) as c:
        for resp in (
            await c.get("/health"),
            await c.post("/chat", json={"question": "refund?"}),
            await c.post("/chat/stream", json={"question": "refund?"}),
        ):
            assert resp.status_code == 503
            assert resp.json()["error_code"] == "NO_KNOWLEDGE_BASE"


class ExplodingBot:
    """A bot double whose answer() fails with an internal error."""

    def __init__(self, real: FaqBot) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def answer(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise RuntimeError("secret detail: db password hunter2")
        yield  # pragma: no cover


async def test_500_never_leaks_internals(make_settings: Any) -> None:
    settings = make_settings()
    bot: Any = ExplodingBot(build_bot(settings))
    async with client_for(bot, settings) as c:
        resp = await c.post("/chat", json={"question": "refund?"})
        stream = await c.post("/chat/stream", json={"question": "refund?"})
    assert resp.status_code == 500
    assert resp.json() == {
        "error": "Internal server error",
        "detail": "An unexpected error occurred.",
        "error_code": "INTERNAL_ERROR",
    }
    assert "hunter2" not in resp.text
    assert stream.status_code == 200
    assert sse_events(stream.text) == [
        ("error", {"error": "Internal server error", "error_code": "INTERNAL_ERROR"})
    ]


async def test_unknown_faq_entry_is_404_in_the_error_shape(client: httpx.AsyncClient) -> None:
    resp = await client.get("/faq/nope")
    assert resp.status_code == 404
    assert resp.json()["error_code"] == "HTTP_404"


async def test_stream_emits_route_tokens_sources_done(client: httpx.AsyncClient) -> None:
    resp = await client.post("/chat/stream", json={"question": "What is your refund policy?"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = sse_events(resp.text)
    names = [e for e, _ in events]
    assert names[0] == "route"
    assert names[-2:] == ["sources", "done"]
    assert names.count("token") >= 5
    text = "".join(d["text"] for e, d in events if e == "token")
    done = events[-1][1]
    assert text == done["answer"]
    assert done["category"] == "sales"
    assert events[0][1]["conversation_id"] == done["conversation_id"]


async def test_deep_health_is_degraded_when_only_the_llm_is_down(make_settings: Any) -> None:
    settings = make_settings(openai_api_key="k", openai_base_url="http://127.0.0.1:9/v1")
    async with client_for(build_bot(settings), settings) as c:
        shallow = await c.get("/health")
        deep = await c.get("/health", params={"deep": "true"})
        chat = await c.post("/chat", json={"question": "refund policy?"})
    assert shallow.json()["status"] == "ok"
    assert deep.status_code == 200
    assert deep.json()["status"] == "degraded"
    assert deep.json()["llm"] == {"reachable": False, "error_code": "LLM_UNAVAILABLE"}
    assert chat.json()["fallback"] is True
    assert "money-back" in chat.json()["answer"]


async def test_deep_health_ok_with_a_reachable_llm(make_settings: Any, fake_openai: Any) -> None:
    settings = make_settings(openai_api_key="k", openai_base_url=fake_openai.base_url)
    async with client_for(build_bot(settings), settings) as c:
        deep = await c.get("/health", params={"deep": "true"})
    assert deep.json()["status"] == "ok"
    assert deep.json()["llm"]["reachable"] is True
    assert deep.json()["mode"] == "llm"


async def test_metrics_count_turns(client: httpx.AsyncClient) -> None:
    await client.post("/chat", json={"question": "refund policy?"})
    text = (await client.get("/metrics")).text
    assert 'faqbot_turns_total{category="sales",mode="offline",outcome="answered"}' in text


async def test_cors_preflight_allows_listed_origins_only(make_settings: Any) -> None:
    settings = make_settings(cors_origins=["http://allowed.test"])
    async with client_for(build_bot(settings), settings) as c:
        ok = await c.options(
            "/chat",
            headers={"Origin": "http://allowed.test", "Access-Control-Request-Method": "POST"},
        )
        bad = await c.options(
            "/chat",
            headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"},
        )
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "http://allowed.test"
    assert bad.status_code == 400
    assert "access-control-allow-origin" not in bad.headers


async def test_openapi_schema_documents_every_route(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    paths = schema["paths"]
    assert set(paths) >= {"/health", "/chat", "/chat/stream", "/faq/{entry_id}", "/metrics"}
    assert {"422", "429", "500", "503"} <= set(paths["/chat"]["post"]["responses"])


async def test_stream_parsed_by_an_sse_client(client: httpx.AsyncClient) -> None:
    events: list[tuple[str, Any]] = []
    body = {"question": "Do you offer discounts for annual subscriptions?"}
    async with aconnect_sse(client, "POST", "/chat/stream", json=body) as source:
        async for sse in source.aiter_sse():
            events.append((sse.event, sse.json()))
    names = [name for name, _ in events]
    assert names[0] == "route"
    assert names[-2:] == ["sources", "done"]
    assert set(names[1:-2]) == {"token"}
    assert events[0][1]["category"] == "sales"
    assert "".join(d["text"] for n, d in events if n == "token") == DISCOUNT
    source = events[-2][1]["sources"][0]
    assert source["id"] == "sales-do-you-offer-discounts-for-annual-subscriptions"
    assert source["url"] == f"/api/faq/{source['id']}"
    assert events[-1][1]["sources"] == events[-2][1]["sources"]


async def test_stream_reports_a_fallback_when_the_llm_is_down(make_settings: Any) -> None:
    settings = make_settings(openai_api_key="k", openai_base_url="http://127.0.0.1:9/v1")
    async with client_for(build_bot(settings), settings) as c:
        resp = await c.post("/chat/stream", json={"question": "What is your refund policy?"})
    events = sse_events(resp.text)
    assert events[0][0] == "fallback"
    assert events[0][1]["reason"] == "LLM_UNAVAILABLE"
    assert events[-1][1]["fallback"] is True


def test_the_question_pattern_means_what_clean_question_means() -> None:
    """Schema-valid questions (Python re, as schemathesis generates them) are exactly those
    pydantic (Rust regex) accepts and clean_question keeps non-empty: over every code point."""
    python = re.compile(VISIBLE_CHAR)
    pydantic = TypeAdapter(ChatRequest)
    disagree = []
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        try:
            pydantic.validate_python({"question": char})
            accepted = True
        except ValidationError:
            accepted = False
        try:
            clean_question(char, 1000)
            usable = True
        except InputError:
            usable = False
        if not (bool(python.search(char)) == accepted == usable):
            disagree.append(hex(code))
    assert disagree == []


async def test_schema_states_the_configured_question_limit(make_settings: Any) -> None:
    settings = make_settings(max_question_chars=200)
    async with client_for(build_bot(settings), settings) as c:
        schema = (await c.get("/openapi.json")).json()
        long = await c.post("/chat", json={"question": "x" * 201})
    question = schema["components"]["schemas"]["ChatRequest"]["properties"]["question"]
    assert question["maxLength"] == 200
    assert question["pattern"] == VISIBLE_CHAR
    assert long.status_code == 422


# --- against a running `chainlit run` ----------------------------------------------------------


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    with chainlit_server({"RATE_LIMIT_REQUESTS": "1000"}) as url:
        yield url


@pytest.mark.chainlit
async def test_chat_and_follow_up_on_the_running_app(app_url: str) -> None:
    async with httpx.AsyncClient(base_url=f"{app_url}/api", timeout=20) as c:
        health = (await c.get("/health")).json()
        first = await c.post("/chat", json={"question": "Which payment methods do you accept?"})
        cid, token = first.json()["conversation_id"], first.json()["conversation_token"]
        follow = await c.post(
            "/chat",
            json={
                "question": "and for annual ones?",
                "conversation_id": cid,
                "conversation_token": token,
            },
        )
        entry = await c.get(follow.json()["sources"][0]["url"].removeprefix("/api"))
        bad = await c.post("/chat", json={"question": ""})
    assert health["status"] == "ok"
    assert health["mode"] == "offline"
    assert first.status_code == 200
    assert first.json()["category"] == "sales"
    assert follow.json()["conversation_id"] == cid
    assert follow.json()["sources"][0]["id"] == "sales-which-payment-methods-do-you-accept"
    assert entry.json()["question"] == "Which payment methods do you accept?"
    assert bad.status_code == 422
    assert set(bad.json()) == ERROR_KEYS


@pytest.mark.chainlit
async def test_sse_stream_on_the_running_app(app_url: str) -> None:
    """Tokens arrive as separate events while the answer streams (no buffering by a proxy or
    Chainlit's gzip), parsed by an SSE client over a real socket."""
    events: list[tuple[str, Any]] = []
    body = {"question": "What is your refund policy?"}
    async with (
        httpx.AsyncClient(base_url=f"{app_url}/api", timeout=20) as c,
        aconnect_sse(c, "POST", "/chat/stream", json=body) as source,
    ):
        assert source.response.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in source.response.headers
        assert source.response.headers["x-content-type-options"] == "nosniff"
        async for sse in source.aiter_sse():
            events.append((sse.event, sse.json()))
    names = [name for name, _ in events]
    assert names[0] == "route"
    assert names.count("token") >= 5
    assert names[-2:] == ["sources", "done"]
    done = events[-1][1]
    assert "".join(d["text"] for n, d in events if n == "token") == done["answer"]
    assert "30-day money-back guarantee" in done["answer"]
    assert done["conversation_id"] == events[0][1]["conversation_id"]


@pytest.mark.chainlit
async def test_the_ui_and_the_api_share_one_rate_limit() -> None:
    """Same client IP, same budget: two chat-UI messages and one API call use up a limit of 3."""
    with chainlit_server({"RATE_LIMIT_REQUESTS": "3", "RATE_LIMIT_WINDOW": "60"}) as url:
        async with ChatClient(url) as ui:
            for _ in range(2):
                turn = await ui.ask("What is your refund policy?")
                assert "money-back" in turn.reply
            async with httpx.AsyncClient(base_url=f"{url}/api", timeout=20) as c:
                ok = await c.post("/chat", json={"question": "refund policy?"})
                limited = await c.post("/chat", json={"question": "refund policy?"})
                stream = await c.post("/chat/stream", json={"question": "refund policy?"})
            refused = await ui.ask("What is your refund policy?")
    assert ok.status_code == 200
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.json()["error_code"] == "RATE_LIMITED"
    assert set(limited.json()) == ERROR_KEYS
    assert stream.status_code == 429
    assert "too quickly" in refused.reply
