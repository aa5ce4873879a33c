"""No secret ever leaves the server, and no provider error body reaches a client (issue 14, item 4).

One `chainlit run` process with recognisable secrets (OPENAI_API_KEY, EMBEDDINGS_API_KEY,
CONVERSATION_SECRET), talking to the loopback fake OpenAI server, goes through a whole session:
the chat UI over socket.io (answers, a provider 401 and 500 whose error bodies echo the key), the
API (chat, follow-up, stream, the same errors, 422/413/404), health (plain, deep, HEAD), metrics,
with the embeddings endpoint failing the same way. Every byte a client received (HTTP status,
headers, bodies, socket.io frames) and everything the server printed (structlog JSON on stderr,
uvicorn and library logs, at DEBUG) is searched for the secrets; client-visible output is also
searched for a marker that only the provider's error bodies contain.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests import fake_openai as fo
from tests.e2e_support import ChatClient, chainlit_server, server_log

pytestmark = [pytest.mark.chainlit, pytest.mark.llm]

API_KEY = "sk-test-SECRET-0123456789abcdef"
EMBEDDINGS_KEY = "emb-test-KEYSECRET-fedcba9876543210"
CONVERSATION_SECRET = "conv-test-SIGNING-5a5a5a5a5a5a5a5a"
SECRETS = {
    "OPENAI_API_KEY": API_KEY,
    "EMBEDDINGS_API_KEY": EMBEDDINGS_KEY,
    "CONVERSATION_SECRET": CONVERSATION_SECRET,
}
MARKER = "PROVIDER-BODY-MARKER-7f3a9c"  # only ever in the fake provider's error bodies
REFUND = "What is your refund policy?"


def echoing_error(status: int, key: str) -> fo.Reply:
    """A provider error whose body echoes the key, as real providers do for a bad key."""
    message = f"Incorrect API key provided: {key}. {MARKER} (request rejected with {status})"
    return fo.error(status, message=message)


def fragments(secret: str) -> list[str]:
    """The secret and its distinctive parts (a log line may cut or mask part of it)."""
    return [secret, secret[-16:], secret.split("-")[2]]


class RecordingClient(ChatClient):
    """A ChatClient that keeps every socket.io frame the server sent, as JSON text."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.frames: list[str] = []

    async def _on_event(self, event: str, data: Any = None) -> None:
        self.frames.append(f"{event} {json.dumps(data, ensure_ascii=False, default=str)}")
        await super()._on_event(event, data)


class Seen:
    """Everything clients saw: each HTTP response whole, each socket.io frame."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def http(self, resp: httpx.Response) -> httpx.Response:
        headers = "\n".join(f"{k}: {v}" for k, v in resp.headers.items())
        self.parts.append(f"{resp.request.method} {resp.url} {resp.status_code}\n{headers}")
        self.parts.append(resp.text)
        return resp

    @property
    def text(self) -> str:
        return "\n".join(self.parts)


async def ui_session(url: str, fake: Any, seen: Seen) -> dict[str, str]:
    """The chat UI: an answer, then the provider failing with bodies that echo the key."""
    replies: dict[str, str] = {}
    async with RecordingClient(url) as ui:
        replies["ok"] = (await ui.ask(REFUND)).reply
        fake.script(echoing_error(401, API_KEY))
        replies["401"] = (await ui.ask("Which payment methods do you accept?")).reply
        fake.script(echoing_error(500, API_KEY))
        replies["500"] = (await ui.ask("Can I export reports to PDF?")).reply
        seen.parts.extend(ui.frames)
    return replies


async def api_session(url: str, fake: Any, seen: Seen) -> dict[str, Any]:
    """The API: answers, a follow-up, a stream, provider errors, refusals, health, metrics."""
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=f"{url}/api", timeout=30) as c:
        first = seen.http(await c.post("/chat", json={"question": REFUND}))
        ids = {k: first.json()[k] for k in ("conversation_id", "conversation_token")}
        follow = seen.http(await c.post("/chat", json={"question": "and for annual?", **ids}))
        out["continued"] = follow.json()["conversation_id"] == ids["conversation_id"]
        out["first"] = first.json()
        seen.http(await c.post("/chat/stream", json={"question": "Do you offer discounts?"}))
        for status in (401, 500, 429):
            fake.script(echoing_error(status, API_KEY))
            resp = seen.http(await c.post("/chat", json={"question": "How do I set up QC rules?"}))
            out[f"chat_{status}"] = resp.json()
            fake.script(echoing_error(status, API_KEY))
            stream = await c.post("/chat/stream", json={"question": "How do I set up QC rules?"})
            out[f"stream_{status}"] = seen.http(stream).text
        seen.http(await c.post("/chat", json={"question": "   "}))
        seen.http(await c.post("/chat", json={"question": "x", "conversation_id": "forged-id-1"}))
        seen.http(await c.post("/chat", content=b"{" + b" " * 20_000 + b"}"))
        seen.http(await c.get("/faq/nope"))
        out["health"] = seen.http(await c.get("/health")).json()
        seen.http(await c.get("/health", params={"deep": "true"}))
        out["head"] = seen.http(await c.head("/health")).status_code
        seen.http(await c.get("/metrics"))
        seen.http(await c.get("/openapi.json"))
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        seen.http(await c.get("/health"))  # Chainlit's own
        seen.http(await c.get("/"))
        seen.http(await c.get("/project/settings", params={"language": "en-US"}))
    return out


async def test_no_secret_in_any_response_frame_or_log_line(fake_openai: Any) -> None:
    fake = fake_openai
    # The first embedding calls (the FAQ being encoded at start-up) fail with bodies that echo
    # the embeddings key: health reports the embedder's state to anyone who asks.
    fake.script_embeddings(*[echoing_error(401, EMBEDDINGS_KEY)] * 3)
    env = {
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "EMBEDDINGS": "openai",
        "EMBEDDINGS_BASE_URL": fake.base_url,
        "EMBEDDINGS_API_KEY": EMBEDDINGS_KEY,
        "CONVERSATION_SECRET": CONVERSATION_SECRET,
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "json",
        "CIRCUIT_FAILURE_THRESHOLD": "100",  # every question reaches the provider
        "RATE_LIMIT_REQUESTS": "1000",
    }
    seen = Seen()
    with chainlit_server(env) as url:
        ui = await ui_session(url, fake, seen)
        api = await api_session(url, fake, seen)
        logs = server_log(url, tail=100_000_000)

    # The session really used the secrets and really hit the provider's errors.
    assert any(h.get("authorization") == f"Bearer {API_KEY}" for h in fake.headers)
    assert any(h.get("authorization") == f"Bearer {EMBEDDINGS_KEY}" for h in fake.embedding_headers)
    assert "money-back" in ui["ok"]
    assert "not configured correctly" in ui["401"]
    assert "quoted directly from the FAQ" in ui["500"]
    assert api["first"]["mode"] == "llm"
    assert api["first"]["fallback"] is False
    assert api["continued"] is True
    assert all(api[f"chat_{s}"]["fallback"] is True for s in (401, 500, 429))
    assert all("event: fallback" in api[f"stream_{s}"] for s in (401, 500, 429))
    assert api["head"] == 200
    assert '"llm.auth_failed"' in logs
    assert '"llm.failed"' in logs
    # the embeddings endpoint failed too: health says how, the log (for the operator) says why
    assert "HTTP 401" in api["health"]["retrieval"]["degraded"]
    assert MARKER in logs
    # frames and lines scanned (the chat UI joins fast tokens: UI_TOKEN_INTERVAL_MS)
    assert len(seen.parts) > 50

    visible = seen.text
    for name, secret in SECRETS.items():
        for part in fragments(secret):
            assert part not in visible, f"{name} ({part!r}) reached a client"
            assert part not in logs, f"{name} ({part!r}) is in the server log:\n" + "\n".join(
                line for line in logs.splitlines() if part in line
            )
    assert MARKER not in visible, "a provider error body reached a client"
