"""The /admin page in headless Chromium on a real `chainlit run` (issue 12: charts rendered)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import ARTIFACTS, browser_page
from tests.e2e_support import chainlit_server, server_logs_on_failure
from tests.test_analytics_cli import _seed

pytestmark = [pytest.mark.browser, pytest.mark.chainlit]
TOKEN = "browser-admin-token-0123456789"


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("admin") / "data"
    _seed(data_dir)
    env = {"DATA_DIR": str(data_dir), "ANALYTICS_ENABLED": "true", "ADMIN_TOKEN": TOKEN}
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
