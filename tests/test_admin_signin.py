"""/admin and /api/analytics with Chainlit's password sign-in on (a real `chainlit run`):
a signed-in admin (ADMIN_USERS) gets the report, another user 403, no session 401, and the
ADMIN_TOKEN works without a session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from faqbot.passwords import MIN_ITERATIONS, hash_password
from tests.analytics_support import seed_data_dir
from tests.e2e_support import chainlit_server, server_logs_on_failure

pytestmark = pytest.mark.chainlit
TOKEN = "signin-admin-token-0123456789"


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir: Path = tmp_path_factory.mktemp("signin") / "data"
    seed_data_dir(data_dir)
    users = ",".join(
        f"{name}:{hash_password(name + '-pw', iterations=MIN_ITERATIONS)}"
        for name in ("alice", "bob")
    )
    env = {
        "DATA_DIR": str(data_dir),
        "AUTH_USERS": users,
        "CHAINLIT_AUTH_SECRET": "a-test-secret-for-signing-chainlit-sessions-0123456789",
        "ADMIN_USERS": "alice",
        "ADMIN_TOKEN": TOKEN,
    }
    with chainlit_server(env) as url:
        yield url


def _signed_in(url: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    response = client.post("/login", data={"username": name, "password": f"{name}-pw"})
    assert response.status_code == 200, response.text
    assert any(c.startswith("access_token") for c in client.cookies), client.cookies
    return client


def _statuses(client: httpx.Client, **headers: str) -> tuple[int, int]:
    api = client.get("/api/analytics", headers=headers)
    page = client.get("/admin", headers=headers)
    return api.status_code, page.status_code


def test_only_admins_see_the_analytics(app_url: str) -> None:
    with httpx.Client(base_url=app_url, timeout=30) as anonymous:
        assert _statuses(anonymous) == (401, 401)
        assert _statuses(anonymous, authorization="Bearer wrong-token-wrong-token") == (401, 401)
        assert _statuses(anonymous, authorization=f"Bearer {TOKEN}") == (200, 200)
    bob = _signed_in(app_url, "bob")
    try:
        assert _statuses(bob) == (403, 403)
    finally:
        bob.close()
    alice = _signed_in(app_url, "alice")
    try:
        assert _statuses(alice) == (200, 200)
        report = alice.get("/api/analytics?since=30d").json()
        assert report["unanswered"][0]["count"] == 3
        assert 'id="chart-daily"' in alice.get("/admin").text
    finally:
        alice.close()
