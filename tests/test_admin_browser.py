"""/admin and /api/analytics on a real `chainlit run` with password sign-in (issue 12): the page's
charts render in headless Chromium; a signed-in admin (ADMIN_USERS) gets the report, another
user 403, no session 401, and the ADMIN_TOKEN works without a session. The same server runs
with RETENTION_DAYS=30: the seed's 40-day-old conversation is deleted at start."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from faqbot.passwords import MIN_ITERATIONS, hash_password
from tests.analytics_support import seed_data_dir
from tests.browser_support import ARTIFACTS, browser_page
from tests.e2e_support import chainlit_server, server_logs_on_failure

pytestmark = [pytest.mark.browser, pytest.mark.chainlit]
TOKEN = "browser-admin-token-0123456789"


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("admin") / "data"
    seed_data_dir(folder)
    return folder


@pytest.fixture(scope="module")
def app_url(data_dir: Path) -> Iterator[str]:
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
        "RETENTION_DAYS": "30",
    }
    with chainlit_server(env) as url:
        yield url


def test_admin_page_renders_its_charts(app_url: str) -> None:
    with browser_page() as page_obj:
        page: Any = page_obj
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        denied = page.goto(f"{app_url}/admin")
        assert denied.status == 401
        problems.clear()  # the browser reports the 401 itself
        page.set_extra_http_headers({"Authorization": f"Bearer {TOKEN}"})
        response = page.goto(f"{app_url}/admin?since=30d")
        assert response.status == 200
        assert "script-src 'self'" in response.headers["content-security-policy"]
        daily = page.locator("#chart-daily rect.bar")
        categories = page.locator("#chart-categories rect.bar")
        assert daily.count() >= 5
        labels = page.locator("#chart-daily text.day")
        assert labels.count() >= 8  # the time axis has every day, with questions or not
        assert categories.count() == 5  # sales: answered + suggested; labs, reports, (none): 1
        box = page.locator("#chart-daily").bounding_box()
        assert box is not None
        assert box["width"] > 300
        assert box["height"] > 100
        tallest = max(daily.nth(i).bounding_box()["height"] for i in range(daily.count()))
        assert tallest > 20  # bars are drawn with a real height, not collapsed
        first = page.locator("#unanswered tr.group").first
        assert first.locator("td").first.inner_text() == "3"
        assert "How do I delete my account?" in first.inner_text()
        assert page.locator("#totals .tile").count() == 8
        shot = ARTIFACTS / "admin-page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert Path(shot).stat().st_size > 10_000
        assert problems == []  # no CSP violation, nothing failed to load


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


def test_retention_runs_when_the_app_starts(app_url: str, data_dir: Path) -> None:
    import sqlite3
    import time

    def questions() -> set[str]:
        with sqlite3.connect(data_dir / "faqbot.db") as con:
            return {r[0] for r in con.execute("SELECT question FROM faqbot_turns")}

    deadline = time.monotonic() + 30
    while "An old question about invoices?" in questions() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "An old question about invoices?" not in questions()  # 40 days old: deleted
    assert "How do I delete my account?" in questions()  # recent: kept


# --- /admin from a browser (issue 20, item 15) ---------------------------------------------


@pytest.fixture(scope="module")
def token_only_url(data_dir: Path) -> Iterator[str]:
    """Sign-in off, analytics on behind the token: the set-up a browser could not open."""
    env = {"DATA_DIR": str(data_dir), "ANALYTICS_ENABLED": "true", "ADMIN_TOKEN": TOKEN}
    with chainlit_server(env) as url:
        yield url


def test_the_token_form_opens_admin_in_a_browser(token_only_url: str) -> None:
    with browser_page() as page_obj:
        page: Any = page_obj
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        denied = page.goto(f"{token_only_url}/admin?since=30d")
        assert denied.status == 401
        page.screenshot(path=str(ARTIFACTS / "admin-token-form.png"))
        page.fill("#token", "not-the-token-at-all-000")
        page.locator("#token-form button").click()
        page.locator("#error").wait_for(timeout=10_000)
        assert page.locator("#chart-daily").count() == 0
        page.fill("#token", TOKEN)
        page.locator("#token-form button").click()
        page.locator("#chart-daily").wait_for(timeout=20_000)
        assert page.url.endswith("/admin?since=30d")  # the period chosen is kept
        assert page.locator("#chart-daily rect.bar").count() >= 5
        (cookie,) = [c for c in page.context.cookies() if c["name"] == "faqbot_admin"]
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert cookie["secure"] is False  # plain http here; Secure behind https
        assert TOKEN not in cookie["value"]  # an HMAC of it, with an expiry
        assert 7 * 3600 < cookie["expires"] - time.time() <= 8 * 3600 + 60
        assert page.goto(f"{token_only_url}/admin?since=30d").status == 200  # the cookie holds
        problems = [p for p in problems if "401" not in p]  # the browser reports the 401s
        assert problems == []  # no CSP violation: a form, no script


def test_the_admin_cookie_is_refused_when_forged_or_for_another_token(
    token_only_url: str,
) -> None:
    from faqbot.web.admin_access import admin_cookie

    with httpx.Client(base_url=token_only_url, timeout=30) as http:
        right = http.post("/admin", data={"token": TOKEN})
        assert right.status_code == 303
        value = right.cookies["faqbot_admin"]
        assert http.get("/admin").status_code == 200
        for forged in (
            value[:-1] + ("0" if value[-1] != "0" else "1"),
            admin_cookie("another-token-of-enough-length"),
            admin_cookie(TOKEN, now=time.time() - 9 * 3600),  # expired
            "9999999999.",
        ):
            http.cookies.clear()
            http.cookies.set("faqbot_admin", forged)
            assert http.get("/admin").status_code == 401, forged
        wrong = http.post("/admin", data={"token": "a-wrong-token-0123456789"})
        assert wrong.status_code == 401
        assert "faqbot_admin" not in wrong.cookies


def test_an_admin_user_signs_in_from_the_admin_page(app_url: str) -> None:
    with browser_page() as page_obj:
        page: Any = page_obj
        assert page.goto(f"{app_url}/admin").status == 401
        assert page.locator("#token-form").count() == 1  # the token works with sign-in too
        page.locator("#sign-in").click()
        page.wait_for_url(re.compile(r"/login"), timeout=20_000)
        page.fill("#email", "alice")
        page.fill("#password", "alice-pw")
        page.locator("button[type=submit]").click()
        page.locator("#chat-input").wait_for(timeout=20_000)
        response = page.goto(f"{app_url}/admin?since=30d")
        assert response.status == 200
        page.locator("#chart-daily").wait_for(timeout=10_000)
