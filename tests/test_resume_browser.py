"""Sign-in and resume in headless Chromium (issue 12): sign in with a password, ask, reload the
page, open the conversation from the history sidebar, and ask a follow-up that is answered with
the old context (offline, a follow-up is searched together with the question before it)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faqbot.passwords import hash_password
from tests.browser_support import ARTIFACTS, browser_page, send_message
from tests.e2e_support import chainlit_server, server_logs_on_failure

pytestmark = pytest.mark.browser
PASSWORD = "pw-for-alice-1"
REFUND_Q = "What is your refund policy?"
FOLLOW_UP = "and is that for new subscriptions only?"
REFUND = "30-day money-back guarantee"


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


def test_sign_in_ask_reload_resume_from_sidebar_and_follow_up(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        "DATA_DIR": str(data),
        "AUTH_USERS": f"alice:{hash_password(PASSWORD, iterations=100_000)}",
        "CHAINLIT_AUTH_SECRET": "browser-test-secret-" + "y" * 44,
        "RATE_LIMIT_REQUESTS": "1000",
    }
    with chainlit_server(env) as url, browser_page() as page_obj:
        page: Any = page_obj
        page.goto(url)
        page.wait_for_url(re.compile(r"/login"), timeout=20_000)  # sign-in is required
        page.fill("#email", "alice")
        page.fill("#password", "wrong password")
        page.locator("button[type=submit]").click()
        page.locator("#chat-input").wait_for(state="detached", timeout=2_000)
        page.fill("#password", PASSWORD)
        page.locator("button[type=submit]").click()
        page.get_by_text("Hi! I answer questions from our FAQ.").wait_for(timeout=20_000)

        send_message(page, REFUND_Q)
        page.get_by_text(REFUND).first.wait_for(timeout=30_000)
        page.wait_for_url(re.compile(r"/thread/"), timeout=10_000)
        thread_id = page.url.rsplit("/", 1)[-1]

        page.reload()
        page.get_by_text(REFUND).first.wait_for(timeout=20_000)  # reloaded: still there
        page.goto(url + "/")  # a new, empty chat; the old one is in the sidebar
        page.get_by_text("Hi! I answer questions from our FAQ.").wait_for(timeout=20_000)
        link = page.locator(f'a[href="/thread/{thread_id}"]')
        link.wait_for(timeout=20_000)
        assert REFUND_Q in link.inner_text()
        link.click()
        page.get_by_text(REFUND).first.wait_for(timeout=20_000)  # the old answer is back

        page.locator("#chat-input").wait_for(timeout=20_000)
        send_message(page, FOLLOW_UP)
        page.locator('[id="step-FAQ lookup"]').nth(1).wait_for(timeout=30_000)
        page.get_by_text(FOLLOW_UP).first.wait_for()
        page.locator("#stop-button").wait_for(state="detached", timeout=20_000)
        page.screenshot(path=str(ARTIFACTS / "resume-follow-up.png"))
    con = sqlite3.connect(data / "faqbot.db")
    try:
        turns = con.execute(
            "SELECT question, standalone_question, user_identifier FROM faqbot_turns "
            "WHERE thread_id = ? ORDER BY created_at",
            (thread_id,),
        ).fetchall()
    finally:
        con.close()
    # the follow-up went into the same thread, routed with the old question
    assert turns == [
        (REFUND_Q, REFUND_Q, "alice"),
        (FOLLOW_UP, f"{REFUND_Q} {FOLLOW_UP}", "alice"),
    ]
