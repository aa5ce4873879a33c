"""The chat UI's part in learning (issue 22), over Chainlit's real protocol and database.

After a "Did you mean" choice the chosen entry's answer sits inside a `run` step, as a typed
question's answer does: Chainlit's UI draws its thumbs only there (Buttons/index.tsx), and the
rating (sent for the run, as the UI does) lands on the answer's turn row. The choice is stored as
evidence with the question the visitor typed, and /admin/learn proposes it for that entry.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e_support import ChatClient, chainlit_server, server_logs_on_failure

pytestmark = pytest.mark.chainlit
UNSURE_Q = "Is there a refund if I cancel my annual plan?"
TOKEN = "learning-chat-admin-token-0123456789"


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


async def test_a_choice_is_evidence_and_its_answer_carries_thumbs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        "DATA_DIR": str(data),
        "CONFIDENCE_THRESHOLD": "1.0",  # every partial match is a "Did you mean"
        "SUGGEST_THRESHOLD": "0.0",
        "ANALYTICS_ENABLED": "true",
        "ADMIN_TOKEN": TOKEN,
    }
    with chainlit_server(env) as url:
        async with ChatClient(url) as chat:
            turn = await chat.ask(UNSURE_Q)
            chosen = turn.actions[0]
            response, clicked = await chat.click(chosen)
            assert response["success"] is True
            reply = clicked.replies[-1]
            runs = {m["id"]: m for m in clicked.messages if m.get("type") == "run"}
            # the UI shows thumbs under a message only inside a run step
            assert reply.get("parentId") in runs, (reply.get("parentId"), list(runs))
            run_id = reply["parentId"]
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                rated = await http.put(
                    "/feedback",
                    json={
                        "sessionId": chat.session_id,
                        "feedback": {"forId": run_id, "threadId": clicked.thread_id,
                                     "value": 0, "comment": "not the plan I meant"},
                    },
                )  # fmt: skip
                assert rated.status_code == 200, rated.text
                page = await http.get("/admin/learn", headers={"authorization": f"Bearer {TOKEN}"})
    entry_id = chosen["payload"]["entry_id"]
    con = sqlite3.connect(data / "faqbot.db")
    try:
        evidence = con.execute(
            "SELECT question, entry_id, kind FROM faqbot_learn_evidence"
        ).fetchall()
        ratings = con.execute(
            'SELECT t.routed_by, t.entry_ids, f."value" FROM feedbacks f '
            'JOIN faqbot_turns t ON t.id = f."forId"'
        ).fetchall()
    finally:
        con.close()
    assert evidence == [(UNSURE_Q, entry_id, "chosen")]
    assert ratings == [("suggestion", f'["{entry_id}"]', 0)]  # the rating reached the answer
    assert page.status_code == 200
    row = re.search(rf'<tr class="suggestion" data-question="{re.escape(UNSURE_Q)}".*?</tr>',
                    page.text, re.S)  # fmt: skip
    assert row, page.text[:3000]
    assert f'<option value="{entry_id}" selected>' in row.group(0)


@pytest.mark.browser
def test_in_the_browser_the_chosen_answer_has_thumbs(tmp_path: Path) -> None:
    """Chromium: the answer to a "Did you mean" choice shows thumbs like any answer, and a
    thumbs-down clicked there is stored against that answer."""
    import asyncio

    from tests.browser_support import ARTIFACTS, browser_page, send_message

    data = tmp_path / "data"
    env = {"DATA_DIR": str(data), "CONFIDENCE_THRESHOLD": "1.0", "SUGGEST_THRESHOLD": "0.0"}
    with chainlit_server(env) as url:

        async def offered() -> str:  # the same question offers the same entries (deterministic)
            async with ChatClient(url) as chat:
                return str((await chat.ask(UNSURE_Q)).actions[0]["label"])

        label = asyncio.run(offered())
        with browser_page() as page_obj:
            page: Any = page_obj
            page.goto(url)
            send_message(page, UNSURE_Q)
            choice = page.get_by_role("button", name=label)
            choice.wait_for(timeout=30_000)
            page.locator("#stop-button").wait_for(state="detached", timeout=20_000)
            thumbs = page.locator("button.negative-feedback-off")
            assert thumbs.count() == 1  # under the "Did you mean" message
            choice.click()
            page.locator(".step[data-step-type=user_message]").nth(1).wait_for(timeout=20_000)
            page.wait_for_function(
                "document.querySelectorAll('button.negative-feedback-off').length >= 2",
                timeout=20_000,
            )
            thumbs.last.click()
            dialog = page.get_by_role("dialog")
            dialog.locator("textarea").fill("not that one")
            dialog.locator("#submit-feedback").click()
            page.locator("button.negative-feedback-on").wait_for(timeout=10_000)
            page.screenshot(path=str(ARTIFACTS / "learning-chosen-thumbs.png"))
    con = sqlite3.connect(data / "faqbot.db")
    try:
        rows = con.execute(
            'SELECT t.routed_by, f."value", f."comment" FROM feedbacks f '
            'JOIN faqbot_turns t ON t.id = f."forId"'
        ).fetchall()
    finally:
        con.close()
    assert rows == [("suggestion", 0, "not that one")]
