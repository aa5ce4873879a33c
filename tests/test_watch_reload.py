"""`chainlit run --watch` (RELOAD=true): a code change re-imports the app inside the server.

Before, the re-import tried to add the HTTP API's middleware to a running Starlette app
("Cannot add middleware after an application has started") and built a second bot that no FAQ
watcher refreshed. Now the running server keeps its bot, watcher and limits; the UI and the API
answer after the reload, and an FAQ edit still reaches both.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e_support import ROOT, ChatClient, chainlit_server, server_log, server_logs_on_failure

APP_FILES = ("chainlit_app.py", "chainlit.md", ".chainlit", "public", "faqs")
DISCOUNT = "Yes, we offer a 20% discount for annual subscriptions on all plans."


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


def _copy_app(target: Path) -> Path:
    target.mkdir()
    for name in APP_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        else:
            shutil.copy2(source, target / name)
    return target


async def _wait_for(
    predicate: Callable[[], Awaitable[bool]], what: str, wait_s: float = 20
) -> None:
    deadline = time.monotonic() + wait_s
    while not await predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


async def test_a_code_change_reloads_the_app_and_it_keeps_answering(tmp_path: Path) -> None:
    root = _copy_app(tmp_path / "app")
    env = {"FAQ_DIR": str(root / "faqs")}
    with chainlit_server(env, root=root, args=("--watch",)) as url:
        async with ChatClient(url) as chat:
            assert DISCOUNT in (await chat.ask("Do you offer annual discounts?")).text
        app = root / "chainlit_app.py"
        app.write_text(app.read_text() + "\n# edited while serving\n")

        async def reloaded() -> bool:
            return "Reloading app" in server_log(url, 100_000)

        await _wait_for(reloaded, "no reload was logged")
        await asyncio.sleep(1.5)  # Chainlit re-imports, then tells the browsers to reload
        async with ChatClient(url) as chat:
            assert DISCOUNT in (await chat.ask("Do you offer annual discounts?")).text
        async with httpx.AsyncClient(timeout=10) as http:
            api = await http.post(f"{url}/api/chat", json={"question": "annual discounts?"})
        assert api.status_code == 200
        assert DISCOUNT in api.json()["answer"]

        sales = root / "faqs" / "sales.txt"  # the FAQ watcher still serves the UI's bot
        sales.write_text(
            sales.read_text() + "\nQ: Do you sell gift cards?\nA: Gift cards from $25.\n"
        )

        async def api_knows_gift_cards() -> bool:
            async with httpx.AsyncClient(timeout=10) as http:
                reply = await http.post(
                    f"{url}/api/chat", json={"question": "Do you sell gift cards?"}
                )
            return "from $25" in reply.json()["answer"]

        await _wait_for(api_knows_gift_cards, "the API never saw the FAQ edit")
        async with ChatClient(url) as chat:
            assert "from $25" in (await chat.ask("Do you sell gift cards?")).text
        log = server_log(url, 1_000_000)
    assert "Cannot add middleware" not in log
    assert "Error reloading module" not in log
