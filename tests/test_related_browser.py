"""Related questions as buttons under an answer, in headless Chromium against `chainlit run`
(issue 21 item 2): clicking one asks it in the same conversation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from faqbot.knowledge.loader import load_knowledge_base
from tests.browser_support import ARTIFACTS, browser_page, send_message
from tests.e2e_support import ROOT, chainlit_server, server_logs_on_failure

pytestmark = pytest.mark.browser
KB = load_knowledge_base(ROOT / "faqs")
INVITE = KB.entry("account-how-do-i-invite-a-new-user-to-my-workspace")
ROLES = KB.entry("account-what-user-roles-are-available")
REMOVE = KB.entry("account-how-do-i-remove-a-user-from-my-workspace")


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    with chainlit_server({"EMBEDDINGS": "off", "RATE_LIMIT_REQUESTS": "1000"}) as url:
        yield url


def test_clicking_a_related_question_asks_it_in_the_same_thread(app_url: str) -> None:
    page: Any
    with browser_page() as page:
        page.goto(app_url)
        send_message(page, INVITE.question)
        page.get_by_text(INVITE.answer[:60]).first.wait_for(timeout=20_000)
        # the author's `related:` list in faqs/account.yaml, as buttons under the answer
        page.get_by_role("button", name=ROLES.question).wait_for(timeout=15_000)
        assert page.get_by_role("button", name=REMOVE.question).count() == 1
        _assert_one_question_per_row(page, [ROLES.question, REMOVE.question])
        page.screenshot(path=str(ARTIFACTS / "related.png"))
        page.get_by_role("button", name=REMOVE.question).click()

        page.get_by_text(REMOVE.answer[:60]).first.wait_for(timeout=15_000)
        users = page.locator(".step[data-step-type=user_message]")
        users.nth(1).wait_for(timeout=15_000)
        assert [t.strip() for t in users.all_inner_texts()] == [INVITE.question, REMOVE.question]
        link = page.get_by_role("link", name=REMOVE.question)
        assert link.get_attribute("href") == f"/api/faq/{REMOVE.id}"
        assert len(page.get_by_text(REMOVE.answer[:60]).all()) == 1  # answered once


def _assert_one_question_per_row(page: Any, questions: list[str]) -> None:
    """Issue 24: question buttons sit each on its own row below the copy/thumbs icons, not
    beside them (Chainlit 2.12 puts all of a message's actions in the icons' row)."""
    thumbs = page.locator(".positive-feedback-off").first.bounding_box()
    boxes = [page.get_by_role("button", name=q).bounding_box() for q in questions]
    assert all(box["y"] >= thumbs["y"] + thumbs["height"] - 1 for box in boxes), (thumbs, boxes)
    assert boxes[1]["y"] >= boxes[0]["y"] + boxes[0]["height"] - 1, (
        boxes
    )  # stacked, not side by side
    assert abs(boxes[0]["x"] - boxes[1]["x"]) < 2, boxes  # left-aligned in one column
