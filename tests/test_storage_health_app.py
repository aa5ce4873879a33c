"""The real app (`chainlit run`) with DATA_DIR on a small tmpfs that fills up (issue 20, item 6).

The issue's own steps: the app starts (its database is made), the disk fills, then the first API
call comes. Every /api/chat answered 500 (the conversation key was written as an empty file);
/api/health said "ok" and /api/health/ready 200 while the chat UI's turns were not stored. Now:
answers keep coming (API and chat UI), health says "degraded", ready 503 with the reasons, and
both turn green again by themselves once the disk has room.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e_support import ChatClient, chainlit_server, server_logs_on_failure
from tests.test_storage_health import DISK_MB, SmallDisk, _mount_problem

pytestmark = pytest.mark.chainlit
QUESTION = "Do you offer discounts for annual subscriptions?"


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    target = tmp_path / "disk"
    problem = _mount_problem(target)
    if problem:
        pytest.skip(problem)
    try:
        yield SmallDisk(target)
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


async def _health(http: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await http.get("/api/health")).json()
    body["ready_code"] = (await http.get("/api/health/ready")).status_code
    return body


async def test_the_app_on_a_disk_that_fills_before_the_first_call(small_disk: SmallDisk) -> None:
    data_dir = small_disk.path / "data"
    assert DISK_MB >= 8  # room for the app's database before the disk is filled
    with chainlit_server({"DATA_DIR": str(data_dir)}) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            assert (data_dir / "faqbot.db").exists()
            small_disk.fill()
            answers = [await http.post("/api/chat", json={"question": QUESTION}) for _ in range(3)]
            assert [a.status_code for a in answers] == [200] * 3, answers[-1].text
            assert not (data_dir / "conversation.key").exists()
            async with ChatClient(url) as chat:  # the chat UI: Chainlit's writes fail too
                turn = await chat.ask(QUESTION)
                assert "discount" in turn.text.lower()
            health = await _health(http)
            assert health["status"] == "degraded"
            assert health["ready_code"] == 503
            reasons = " | ".join(health["not_ready"])
            assert "database or disk is full" in reasons, reasons
            assert "conversation key not saved" in reasons, reasons
            assert health["persistence"]["state"] == "failing"

            os.remove(small_disk.filler)
            for _ in range(40):  # no request but the probes: the replica comes back
                health = await _health(http)
                if health["ready_code"] == 200:
                    break
                await asyncio.sleep(0.25)
            assert health["ready_code"] == 200, health["not_ready"]
            assert health["status"] == "ok"
            assert len((data_dir / "conversation.key").read_bytes()) == 32
            assert (await http.post("/api/chat", json={"question": QUESTION})).status_code == 200
