"""A broken FAQ folder at start-up: the app runs, says it is unavailable (503), then recovers."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import FAQ_DIR
from tests.e2e_support import ChatClient, chainlit_server

pytestmark = pytest.mark.chainlit


async def test_broken_faq_gives_503_then_recovers_when_fixed(tmp_path: Path) -> None:
    folder = tmp_path / "faqs"
    shutil.copytree(FAQ_DIR, folder)
    sales = folder / "sales.txt"
    good = sales.read_text(encoding="utf-8")
    sales.write_text(good + "\n\nQ: A question nobody answered?\n", encoding="utf-8")
    with chainlit_server({"FAQ_DIR": str(folder), "RATE_LIMIT_REQUESTS": "1000"}) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            health = await http.get("/api/health")
            chat = await http.post("/api/chat", json={"question": "refund policy?"})
            assert health.status_code == 503
            assert chat.status_code == 503
            assert chat.json()["error_code"] == "NO_KNOWLEDGE_BASE"
            async with ChatClient(url) as ui:
                turn = await ui.ask("What is your refund policy?")
            assert "FAQ is not available right now" in turn.reply

            sales.write_text(good, encoding="utf-8")  # the watcher picks the fix up
            for _ in range(50):
                if (await http.get("/api/health")).status_code == 200:
                    break
                await asyncio.sleep(0.2)
            chat = await http.post("/api/chat", json={"question": "What is your refund policy?"})
            assert chat.status_code == 200
            assert "30-day money-back guarantee" in chat.json()["answer"]
