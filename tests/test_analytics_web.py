"""GET /api/analytics and /admin: who may see them (401/403/404 as designed), what they show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from faqbot.state.conversations import ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.web.admin_access import Viewer
from faqbot.web.app import create_api, default_admin_site
from faqbot.web.security import SecurityHeadersMiddleware
from tests.analytics_support import seed_data_dir

TOKEN = "an-admin-token-of-some-length"


class CookieSignIn:
    """A sign-in for tests: the `session` cookie names the user; metadata per user."""

    def __init__(self, users: dict[str, dict[str, Any]], enabled: bool = True) -> None:
        self.users = users
        self.on = enabled

    def enabled(self) -> bool:
        return self.on

    async def viewer(self, request: HTTPConnection) -> Viewer | None:
        name = request.cookies.get("session")
        return Viewer(name, self.users[name]) if name in self.users else None


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    seed_data_dir(tmp_path / "data")
    return tmp_path / "data"


def _client(
    settings: Any, sign_in: CookieSignIn | None = None, **cookies: str
) -> httpx.AsyncClient:
    site = default_admin_site(settings, lambda: None, sign_in)
    api = create_api(lambda: None, RateLimiter(1000, 60), settings, ConversationStore(), admin=site)
    app = Starlette(routes=[site.page_route("/admin")])
    app.mount("/api", api)
    transport = httpx.ASGITransport(app=SecurityHeadersMiddleware(app), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", cookies=cookies)


async def _statuses(client: httpx.AsyncClient, **headers: str) -> tuple[int, int]:
    api = await client.get("/api/analytics", headers=headers)
    page = await client.get("/admin", headers=headers)
    return api.status_code, page.status_code


@pytest.fixture
def bearer() -> dict[str, str]:
    return {"authorization": f"Bearer {TOKEN}"}


async def test_off_without_sign_in_unless_enabled(
    make_settings: Any, data_dir: Path, bearer: dict[str, str]
) -> None:
    settings = make_settings(data_dir=data_dir, admin_token=TOKEN)
    async with _client(settings) as client:
        assert await _statuses(client) == (404, 404)
        assert await _statuses(client, **bearer) == (200, 200)  # the token always opens it
        body = (await client.get("/api/analytics")).json()
        assert body["error_code"] == "HTTP_404"
    async with _client(make_settings(data_dir=data_dir)) as client:
        assert await _statuses(client, authorization="Bearer guess-guess-guess") == (404, 404)


async def test_enabled_without_sign_in_needs_the_token_if_one_is_set(
    make_settings: Any, data_dir: Path, bearer: dict[str, str]
) -> None:
    settings = make_settings(data_dir=data_dir, analytics_enabled=True, admin_token=TOKEN)
    async with _client(settings) as client:
        assert await _statuses(client) == (401, 401)
        assert await _statuses(client, authorization=f"Bearer {TOKEN}x") == (401, 401)
        assert await _statuses(client, authorization=f"Basic {TOKEN}") == (401, 401)
        denied = await client.get("/api/analytics")
        assert denied.headers["www-authenticate"] == "Bearer"
        assert await _statuses(client, **bearer) == (200, 200)
    open_settings = make_settings(data_dir=data_dir, analytics_enabled=True)
    async with _client(open_settings) as client:  # enabled, no token: the operator's choice
        assert await _statuses(client) == (200, 200)


async def test_with_sign_in_only_admins_or_the_token(
    make_settings: Any, data_dir: Path, bearer: dict[str, str]
) -> None:
    settings = make_settings(data_dir=data_dir, admin_token=TOKEN, admin_users="alice, root")
    users = {"alice": {}, "bob": {}, "carol": {"role": "admin"}}
    sign_in = CookieSignIn(users)
    async with _client(settings, sign_in) as client:
        assert await _statuses(client) == (401, 401)
        assert await _statuses(client, **bearer) == (200, 200)
    for name, expected in (("alice", 200), ("carol", 200), ("bob", 403), ("mallory", 401)):
        async with _client(settings, sign_in, session=name) as client:
            assert await _statuses(client) == (expected, expected), name
    no_token = make_settings(data_dir=data_dir, admin_users="alice")
    async with _client(no_token, sign_in, session="bob") as client:
        assert await _statuses(client, authorization="Bearer ") == (403, 403)


async def test_analytics_json_is_the_report(make_settings: Any, data_dir: Path) -> None:
    settings = make_settings(data_dir=data_dir, analytics_enabled=True)
    async with _client(settings) as client:
        response = await client.get("/api/analytics", params={"since": "30d"})
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        data = response.json()
        assert data["period"] == "30d"
        assert data["totals"]["questions"] == 11
        assert data["unanswered"][0] == {
            "question": "How do I delete my account?", "count": 3,
            "examples": ["How can I delete my account?"], "outcomes": {"refused": 3},
            "categories": {}, "last_asked": data["unanswered"][0]["last_asked"],
        }  # fmt: skip
        assert data["grouping"] == "word overlap"  # no bot loaded: no embedder
        assert (await client.get("/api/analytics?since=8w")).json()["totals"]["questions"] == 12
        for bad in ("?since=soon", "?since=0d", "?low_confidence=2"):
            invalid = await client.get(f"/api/analytics{bad}")
            assert invalid.status_code == 422, bad
            assert invalid.json()["error_code"] == "VALIDATION_ERROR"
        assert (await client.get("/admin?since=soon")).status_code == 422


async def test_admin_page_draws_the_report(make_settings: Any, data_dir: Path) -> None:
    settings = make_settings(data_dir=data_dir, analytics_enabled=True, app_name="LabLens <Help>")
    async with _client(settings) as client:
        page = await client.get("/admin")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "sha256-" not in csp  # the page carries no script at all
    html = page.text
    assert "<script" not in html
    assert "LabLens &lt;Help&gt;" in html
    daily = html.split('id="chart-daily"')[1].split("</svg>")[0]
    categories = html.split('id="chart-categories"')[1].split("</svg>")[0]
    assert daily.count('class="bar bar-refused"') >= 2  # refusals on two days or more
    assert daily.count("<title>") == daily.count("<rect")  # every bar has its tooltip
    assert categories.count('class="bar bar-answered"') == 3  # sales, labs, reports
    assert categories.count('class="bar bar-refused"') == 1  # only "(not covered)"
    assert 'data-category="(not covered)"' in categories
    assert "How do I delete my account?" in html


async def test_a_missing_database_is_a_503(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path / "nothing", analytics_enabled=True)
    (tmp_path / "nothing").mkdir()
    async with _client(settings) as client:
        response = await client.get("/api/analytics")
        assert response.status_code == 503
        assert response.json()["error_code"] == "DATABASE_UNAVAILABLE"
        assert (await client.get("/admin")).status_code == 503


def test_deployment_check_warns_about_open_analytics(make_settings: Any) -> None:
    from faqbot.ops.deployment import check_deployment

    def flagged(**values: Any) -> bool:
        return "ANALYTICS_ENABLED" in {
            w.variable for w in check_deployment(make_settings(**values))
        }

    assert flagged(analytics_enabled=True)
    assert not flagged()
    assert not flagged(analytics_enabled=True, admin_token=TOKEN)
    assert not flagged(analytics_enabled=True, auth_header="X-Forwarded-User")
