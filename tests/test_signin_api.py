"""With sign-in on, /api wants a session (issue 20, item 8), on a real `chainlit run` in LLM mode.

Anonymous `POST /api/chat` and `/api/feedback` are refused with 401 and the ErrorResponse body,
and the LLM is never called for them (no token spent); the chat UI's session works on /api as a
cookie or as `Authorization: Bearer <session JWT>`; health, metrics and docs stay open to load
balancers and monitoring; PUBLIC_API=true opens /api again, as documented.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from faqbot.passwords import MIN_ITERATIONS, hash_password
from tests.e2e_support import chainlit_server, server_logs_on_failure, sign_in

pytestmark = pytest.mark.chainlit
QUESTION = "Do you offer discounts for annual subscriptions?"
PUBLIC = ("/api/health", "/api/health/live", "/api/health/ready", "/api/metrics", "/api/docs",
          "/api/openapi.json")  # fmt: skip


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


def _env(fake_openai: Any, **extra: str) -> dict[str, str]:
    return {
        "AUTH_USERS": f"alice:{hash_password('alice-pw', iterations=MIN_ITERATIONS)}",
        "CHAINLIT_AUTH_SECRET": "api-sign-in-test-secret-" + "a" * 40,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "ANSWER_CACHE_TTL": "0",
        "RATE_LIMIT_REQUESTS": "1000",
        **extra,
    }


def _is_sign_in_error(response: httpx.Response) -> bool:
    body = response.json()
    return (
        response.status_code == 401
        and set(body) == {"error", "detail", "error_code"}
        and body["error_code"] == "SIGN_IN_REQUIRED"
        and response.headers["www-authenticate"] == "Bearer"
    )


async def test_api_wants_a_session_when_sign_in_is_on(fake_openai: Any) -> None:
    with chainlit_server(_env(fake_openai)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as anonymous:
            chat = await anonymous.post("/api/chat", json={"question": QUESTION})
            stream = await anonymous.post("/api/chat/stream", json={"question": QUESTION})
            feedback = await anonymous.post("/api/feedback", json={"answer_id": "a1", "value": -1})
            entry = await anonymous.get("/api/faq/sales-do-you-offer-discounts")
            forged = await anonymous.post(
                "/api/chat", json={"question": QUESTION},
                headers={"Authorization": "Bearer not-a-session-token"},
            )  # fmt: skip
            opened = [(path, (await anonymous.get(path)).status_code) for path in PUBLIC]
        for refused in (chat, stream, feedback, entry, forged):
            assert _is_sign_in_error(refused), (refused.status_code, refused.text)
        assert fake_openai.requests == []  # nothing was spent on anonymous requests
        assert opened == [(path, 200) for path in PUBLIC]

        cookie = await sign_in(url, "alice", "alice-pw")
        token = cookie["Cookie"].split("=", 1)[1]
        async with httpx.AsyncClient(base_url=url, timeout=30) as signed:
            by_cookie = await signed.post("/api/chat", json={"question": QUESTION},
                                          headers=cookie)  # fmt: skip
            by_bearer = await signed.post(
                "/api/chat", json={"question": QUESTION},
                headers={"Authorization": f"Bearer {token}"},
            )  # fmt: skip
            thumbs = await signed.post(
                "/api/feedback", json={"answer_id": by_cookie.json()["answer_id"], "value": 1},
                headers=cookie,
            )  # fmt: skip
        assert by_cookie.status_code == 200, by_cookie.text
        assert by_bearer.status_code == 200, by_bearer.text
        assert thumbs.status_code == 200, thumbs.text
        assert fake_openai.requests  # the signed-in questions reached the LLM


async def test_public_api_opens_it_again(fake_openai: Any) -> None:
    with chainlit_server(_env(fake_openai, PUBLIC_API="true")) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as anonymous:
            chat = await anonymous.post("/api/chat", json={"question": QUESTION})
            analytics = await anonymous.get("/api/analytics")
        assert chat.status_code == 200, chat.text
        assert analytics.status_code == 401  # /analytics keeps its own gate (admins)
