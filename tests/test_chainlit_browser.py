"""A person's journey through the chat UI in real headless Chromium (offline server).

What the UI shows (Chainlit 2.12.0): the chat profile's markdown_description is the welcome
screen, above the input; the profile's starters are buttons `#starters button` (ids
`starter-<slugified question>`); a tool step renders as "Used FAQ lookup" with id `step-FAQ lookup`;
each message is a `.step` (`data-step-type` user_message, tool, assistant_message); the step's
body sits in the `.step` that holds `[id="step-FAQ lookup"]`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from faqbot.knowledge.loader import load_knowledge_base
from tests.browser_support import ARTIFACTS, browser_page, send_message
from tests.e2e_support import ROOT, chainlit_server, server_logs_on_failure

pytestmark = pytest.mark.browser
QUESTION = "Do you offer discounts for annual subscriptions?"
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."
FOLLOW_UP = "and what about for the Enterprise plan?"
STEP = '[id="step-FAQ lookup"]'  # the route step's accordion button (ROUTE_STEP_NAME)
SCREENSHOT = ARTIFACTS / "chainlit-conversation.png"


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    with chainlit_server({"RATE_LIMIT_REQUESTS": "1000"}) as url:
        yield url


def faq_questions() -> set[str]:
    kb = load_knowledge_base(ROOT / "faqs")
    return {e.question for c in kb.categories.values() for e in c.entries}


def test_welcome_starter_router_step_and_follow_up(app_url: str) -> None:
    page: Any
    errors: list[str] = []
    with browser_page() as page:
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(app_url)

        # Welcome: the chat profile's description, with the mode.
        page.get_by_text("Hi! I answer questions from our FAQ.").wait_for(timeout=20_000)
        assert page.get_by_text(
            "Mode: offline: answers are quoted directly from the FAQ"
        ).is_visible()
        assert page.get_by_text("Topics: account").is_visible()

        # Starters: FAQ questions (two per category), one of them the seed question.
        starters = page.locator("#starters button")
        starters.first.wait_for()
        labels = [t.strip() for t in starters.all_inner_texts()]
        assert QUESTION in labels
        assert len(labels) >= 4
        assert set(labels) <= faq_questions(), labels

        # Click a starter: the user's message, the Router step, the streamed answer.
        page.get_by_role("button", name=QUESTION).click()
        page.get_by_text(DISCOUNT).first.wait_for(timeout=15_000)
        header = page.locator(STEP).first  # the step's accordion button
        header.wait_for()
        assert header.inner_text().split() == ["Used", "FAQ", "lookup"]
        assert header.get_attribute("aria-expanded") == "false"  # collapsed: the answer first
        router = page.locator(f".step[data-step-type=tool]:has({STEP})")
        assert "Topic:" not in router.first.inner_text()
        header.click()  # one click shows how the question was routed
        assert "Topic: sales · confidence" in router.first.inner_text()
        page.get_by_text("sales · confidence").first.wait_for()
        assert page.get_by_text("Sources:").first.is_visible()
        assert page.locator("#starters").count() == 0  # the welcome screen gave way

        # A typed follow-up in the same session, answered from the same category.
        send_message(page, FOLLOW_UP)
        page.locator(STEP).nth(1).wait_for(timeout=15_000)
        page.locator(STEP).nth(1).click()
        assert "Topic: sales" in router.nth(1).inner_text()
        meta = page.get_by_text("offline: quoted from the FAQ")
        meta.nth(1).wait_for(timeout=15_000)
        assert meta.nth(1).inner_text().startswith("sales")
        page.locator("#stop-button").wait_for(state="detached", timeout=10_000)
        users = page.locator(".step[data-step-type=user_message]")
        assert [t.strip() for t in users.all_inner_texts()] == [QUESTION, FOLLOW_UP]

        # The conversation scrolls inside its own pane (full_page does not help): grow the
        # viewport so the screenshot shows both turns.
        page.set_viewport_size({"width": 1280, "height": 1500})
        users.first.scroll_into_view_if_needed()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert errors == []
    assert SCREENSHOT.stat().st_size > 10_000
