"""A person's journey through the chat UI in real headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser_support import ARTIFACTS, browser_page
from tests.e2e_support import chainlit_server

pytestmark = pytest.mark.browser
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    with chainlit_server({"RATE_LIMIT_REQUESTS": "1000"}) as url:
        yield url


def test_welcome_starter_router_step_and_follow_up(app_url: str) -> None:
    page: Any
    with browser_page() as page:
        page.goto(app_url)
        page.get_by_text("Hi! I answer questions from our FAQ.").wait_for(timeout=20_000)
        assert page.get_by_text("answers are quoted directly from the FAQ").is_visible()
        starter = page.get_by_role(
            "button", name="Do you offer discounts for annual subscriptions?"
        )
        starter.wait_for()
        assert page.get_by_role("button", name="How do I reset my password?").is_visible()

        starter.click()
        page.get_by_text(DISCOUNT).first.wait_for(timeout=15_000)
        router = page.locator("#step-Router").first
        router.wait_for()
        assert "Router" in router.inner_text()
        page.get_by_text("Category: sales").first.wait_for()
        page.get_by_text("sales · confidence").first.wait_for()

        page.fill("#chat-input", "and what about for the Enterprise plan?")
        page.click("#chat-submit")
        page.locator("#step-Router").nth(1).wait_for(timeout=15_000)
        meta = page.get_by_text("offline: quoted from the FAQ")
        meta.nth(1).wait_for(timeout=15_000)
        assert meta.nth(1).inner_text().startswith("sales")
        assert page.locator("#stop-button").count() == 0
        page.screenshot(path=str(ARTIFACTS / "chainlit-conversation.png"), full_page=True)
    assert (ARTIFACTS / "chainlit-conversation.png").stat().st_size > 10_000
