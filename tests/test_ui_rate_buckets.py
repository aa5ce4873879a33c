"""Chat-UI rate limits count per client address, decided as for the API (issue 11, 2nd defect).

python-engineio's ASGI driver puts 127.0.0.1 in every socket.io environ's REMOTE_ADDR, so the
chat UI counted every anonymous visitor as one client. The address now comes from the
connection's ASGI scope, where uvicorn's proxy-headers middleware has put the X-Forwarded-For
client only when the direct peer is a trusted proxy (FORWARDED_ALLOW_IPS; 127.0.0.1 here).

Sessions connect from distinct loopback source addresses (127.0.0.2, 127.0.0.3, ...: Linux routes
all of 127/8 to loopback); each test uses its own addresses, so buckets never leak between tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from faqbot.web.security import peer_address
from tests.e2e_support import (
    ChatClient,
    Turn,
    chainlit_server,
    loopback_aliases_work,
    server_logs_on_failure,
)

LIMIT = 2
QUESTION = "What is your refund policy?"
REFUND = "30-day money-back guarantee"
LIMITED = re.compile(r"slow down.*try again in \d+ s", re.I | re.S)
needs_aliases = pytest.mark.skipif(
    not loopback_aliases_work(), reason="cannot bind 127.0.0.2 (no loopback aliases)"
)


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    env = {
        "RATE_LIMIT_REQUESTS": str(LIMIT),
        "RATE_LIMIT_WINDOW": "300",
        "FORWARDED_ALLOW_IPS": "127.0.0.1",  # the trusted proxy (uvicorn's default, made explicit)
    }
    with chainlit_server(env) as url:
        yield url


def answered(turn: Turn) -> bool:
    return REFUND in turn.reply and not LIMITED.search(turn.reply)


def limited(turn: Turn) -> bool:
    return bool(LIMITED.search(turn.reply)) and turn.router is None


async def ask_from(url: str, addr: str | None, times: int, **headers: str) -> list[Turn]:
    """One session from source address `addr` (None: 127.0.0.1) asking QUESTION `times` times."""
    async with ChatClient(url, local_addr=addr, headers=headers) as chat:
        return [await chat.ask(QUESTION) for _ in range(times)]


# --- the UI, one address per client ----------------------------------------------------------


@pytest.mark.chainlit
@needs_aliases
async def test_a_client_exhausting_its_limit_leaves_another_address_answered(url: str) -> None:
    first = await ask_from(url, "127.0.0.2", LIMIT + 1)
    assert [answered(t) for t in first[:LIMIT]] == [True] * LIMIT
    assert limited(first[LIMIT]), first[LIMIT].reply
    (other,) = await ask_from(url, "127.0.0.3", 1)
    assert answered(other), other.reply
    # The bucket belongs to the address, not to the session: a new tab is still limited.
    (again,) = await ask_from(url, "127.0.0.2", 1)
    assert limited(again), again.reply


# --- behind a proxy ------------------------------------------------------------------------


@pytest.mark.chainlit
async def test_forwarded_for_from_the_trusted_proxy_names_the_client(url: str) -> None:
    """Through the proxy (127.0.0.1): each forwarded client has its own bucket."""
    first = await ask_from(url, None, LIMIT + 1, **{"X-Forwarded-For": "198.51.100.7"})
    assert [answered(t) for t in first[:LIMIT]] == [True] * LIMIT
    assert limited(first[LIMIT]), first[LIMIT].reply
    (other,) = await ask_from(url, None, 1, **{"X-Forwarded-For": "198.51.100.8"})
    assert answered(other), other.reply
    # A proxy chain: the client is the last address the trusted proxy did not add itself.
    (chain,) = await ask_from(url, None, 1, **{"X-Forwarded-For": "203.0.113.5, 198.51.100.7"})
    assert limited(chain), chain.reply


@pytest.mark.chainlit
@needs_aliases
async def test_forwarded_for_from_an_untrusted_peer_is_ignored(url: str) -> None:
    """A client cannot pick its bucket by sending X-Forwarded-For itself."""
    spent = await ask_from(url, "127.0.0.4", LIMIT)
    assert all(answered(t) for t in spent)
    (spoofed,) = await ask_from(url, "127.0.0.4", 1, **{"X-Forwarded-For": "198.51.100.99"})
    assert limited(spoofed), spoofed.reply
    # ... nor charge someone else's: 127.0.0.5 naming the spent 127.0.0.4 is still answered.
    (framed,) = await ask_from(url, "127.0.0.5", 1, **{"X-Forwarded-For": "127.0.0.4"})
    assert answered(framed), framed.reply


@pytest.mark.chainlit
@needs_aliases
async def test_the_ui_and_the_api_share_one_budget_per_address(url: str) -> None:
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.6")
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=10) as api:
        for _ in range(LIMIT):
            resp = await api.post("/api/chat", json={"question": QUESTION})
            assert resp.status_code == 200, resp.text
    (turn,) = await ask_from(url, "127.0.0.6", 1)
    assert limited(turn), turn.reply
    (elsewhere,) = await ask_from(url, "127.0.0.7", 1)
    assert answered(elsewhere), elsewhere.reply


# --- the address itself (no server) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"REMOTE_ADDR": "127.0.0.1", "asgi.scope": {"client": ("10.1.2.3", 5555)}}, "10.1.2.3"),
        ({"asgi.scope": {"client": ["2001:db8::1", 1]}}, "2001:db8::1"),
        ({"REMOTE_ADDR": "127.0.0.1", "asgi.scope": {"client": None}}, None),
        ({"REMOTE_ADDR": "127.0.0.1"}, None),  # engineio's fixed value is never trusted
        ({"asgi.scope": {}}, None),
        ({"asgi.scope": {"client": ("", 0)}}, None),
    ],
)
def test_peer_address_reads_the_asgi_scope_only(environ: dict[str, Any], expected: str) -> None:
    assert peer_address(environ) == expected
