"""The thumbs of the chat UI reach the owners (issue 20, finding 13), in headless Chromium
against `chainlit run`: ask a question, click thumbs-down, write a comment, send it; then
`python -m faqbot report --json` (a fresh process on the same DATA_DIR) and /admin count that
thumbs-down, with its comment, against the FAQ entry that answered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import ARTIFACTS, browser_page, send_message
from tests.e2e_support import ROOT, chainlit_server, server_logs_on_failure

pytestmark = [pytest.mark.browser, pytest.mark.chainlit]
REFUND_Q = "What is your refund policy?"
REFUND = "30-day money-back guarantee"
REFUND_ID = "sales-what-is-your-refund-policy"
COMMENT = "I asked about annual plans"
TOKEN = "feedback-browser-token-0123456789"


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


def report_json(data: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DATABASE_"))}
    done = subprocess.run(
        [sys.executable, "-m", "faqbot", "report", "--since", "1d", "--json", "--words"],
        cwd=ROOT, env={**env, "DATA_DIR": str(data)}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_a_thumbs_down_clicked_in_the_chat_reaches_the_report_and_admin(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        "DATA_DIR": str(data),
        "RATE_LIMIT_REQUESTS": "1000",
        "ANALYTICS_ENABLED": "true",
        "ADMIN_TOKEN": TOKEN,
    }
    with chainlit_server(env) as url, browser_page() as page_obj:
        page: Any = page_obj
        page.goto(url)
        page.get_by_text("Hi! I answer questions from our FAQ.").wait_for(timeout=20_000)
        send_message(page, REFUND_Q)
        page.get_by_text(REFUND).first.wait_for(timeout=30_000)
        page.locator("#stop-button").wait_for(state="detached", timeout=20_000)

        down = page.locator("button.negative-feedback-off").last
        down.wait_for(timeout=10_000)
        down.click()
        dialog = page.get_by_role("dialog")
        dialog.locator("textarea").fill(COMMENT)
        dialog.locator("#submit-feedback").click()
        page.locator("button.negative-feedback-on").wait_for(timeout=10_000)
        page.screenshot(path=str(ARTIFACTS / "feedback-thumbs-down.png"))

        report = report_json(data)
        rated = {e["entry_id"]: e for e in report["disliked_entries"]}
        assert REFUND_ID in rated, report["disliked_entries"]
        assert (rated[REFUND_ID]["down"], rated[REFUND_ID]["comments"]) == (1, [COMMENT])

        page.set_extra_http_headers({"Authorization": f"Bearer {TOKEN}"})
        assert page.goto(f"{url}/admin?since=1d").status == 200
        first = page.locator("#disliked tr").nth(1)  # the header row comes first
        cells = [c.strip() for c in first.locator("td").all_inner_texts()]
        assert cells == ["1", "0", REFUND_ID, COMMENT]
