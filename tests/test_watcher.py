"""The FAQ watcher on a real filesystem: a real watcher task, real files, bounded waits.

Each case is a way operators and their tools change a FAQ folder: the folder appears after
start-up, a deploy swaps a symlink (Kubernetes ConfigMap: `faqs -> ..data -> ..<timestamp>`),
an editor saves non-atomically (the file is missing for a moment), a bad edit is refused.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from faqbot.answering.bot import collect
from faqbot.ops.reload import BotHolder, watch_knowledge
from faqbot.state.conversations import ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.web.app import create_api
from tests.conftest import SMALL_FAQ

GIFT_Q = "Do you offer gift cards?"
GIFT_ENTRY = "\n\nQ: Do you offer gift cards?\nA: Yes, gift cards are sold in the billing portal.\n"
LABS_Q = "How long do you keep raw instrument data?"
TIMEOUT = 15.0


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll `check` until it holds, at most TIMEOUT seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not await check():
        assert loop.time() < deadline, f"timed out waiting for: {what}"
        await asyncio.sleep(0.05)


async def answers(holder: BotHolder, question: str, needle: str) -> bool:
    if holder.bot is None:
        return False
    result = await collect(holder.bot.answer(question))
    return needle in result.answer


@asynccontextmanager
async def watching(holder: BotHolder) -> AsyncIterator[asyncio.Task[None]]:
    """Run the real watcher on the holder's FAQ_DIR for the duration of the block."""
    stop = asyncio.Event()
    task = asyncio.create_task(watch_knowledge(holder.settings.faq_dir, holder.refresh, stop))
    await asyncio.sleep(0.3)  # let the OS watch be established (as test_reload does)
    try:
        yield task
        assert not task.done(), f"the watcher died: {task.exception()!r}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def write_faqs(folder: Path, extra_sales: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in SMALL_FAQ.items():
        (folder / name).write_text(
            text + (extra_sales if name == "sales.txt" else ""), encoding="utf-8"
        )


async def test_folder_missing_at_start_is_loaded_once_created(
    tmp_path: Path, make_settings: Any
) -> None:
    folder = tmp_path / "later" / "faqs"  # neither the folder nor its parent exist yet
    holder = BotHolder(make_settings(faq_dir=folder))
    assert holder.bot is None
    async with watching(holder):
        write_faqs(folder)
        await eventually(lambda: answers(holder, "refund policy?", "30-day"), "FAQ loaded")
        (folder / "sales.txt").write_text(SMALL_FAQ["sales.txt"] + GIFT_ENTRY, encoding="utf-8")
        await eventually(lambda: answers(holder, GIFT_Q, "gift cards are sold"), "edit loaded")


async def test_configmap_symlink_swap_is_followed(tmp_path: Path, make_settings: Any) -> None:
    mount = tmp_path / "mount"
    write_faqs(mount / "..2026_01")
    (mount / "..data").symlink_to("..2026_01")
    (mount / "faqs").symlink_to("..data")
    holder = BotHolder(make_settings(faq_dir=mount / "faqs"))
    assert holder.bot is not None

    async def swap(new: str, old: str, extra: str) -> None:
        """What the kubelet does: write a new dir, swap `..data` atomically, delete the old."""
        write_faqs(mount / new, extra)
        (mount / "..data_tmp").symlink_to(new)
        os.replace(mount / "..data_tmp", mount / "..data")
        shutil.rmtree(mount / old)

    async with watching(holder):
        await swap("..2026_02", "..2026_01", GIFT_ENTRY)
        await eventually(lambda: answers(holder, GIFT_Q, "gift cards are sold"), "first swap")
        # the watch follows the path, not the first directory it resolved to
        await swap("..2026_03", "..2026_02", GIFT_ENTRY.replace("billing portal", "web shop"))
        await eventually(lambda: answers(holder, GIFT_Q, "web shop"), "second swap")


async def test_configmap_mount_folder_with_file_symlinks_is_followed(
    tmp_path: Path, make_settings: Any
) -> None:
    """FAQ_DIR is the mount itself: `sales.txt -> ..data/sales.txt`, `..data -> ..<ts>`.

    A guard: the old recursive watch saw the new files; the path-following watch must too.
    """
    mount = tmp_path / "mount"
    write_faqs(mount / "..2026_01")
    (mount / "..data").symlink_to("..2026_01")
    for name in SMALL_FAQ:
        (mount / name).symlink_to(f"..data/{name}")
    holder = BotHolder(make_settings(faq_dir=mount))
    assert holder.bot is not None
    async with watching(holder):
        write_faqs(mount / "..2026_02", GIFT_ENTRY)
        (mount / "..data_tmp").symlink_to("..2026_02")
        os.replace(mount / "..data_tmp", mount / "..data")
        shutil.rmtree(mount / "..2026_01")
        await eventually(lambda: answers(holder, GIFT_Q, "gift cards are sold"), "swap")


async def test_release_symlink_swap_keeping_the_old_folder_is_followed(
    tmp_path: Path, make_settings: Any
) -> None:
    """Deploy-tool style: `current -> releases/N` re-pointed; old releases stay on disk."""
    write_faqs(tmp_path / "releases" / "1")
    current = tmp_path / "current"
    current.symlink_to(tmp_path / "releases" / "1")
    holder = BotHolder(make_settings(faq_dir=current))
    async with watching(holder):
        write_faqs(tmp_path / "releases" / "2", GIFT_ENTRY)
        (tmp_path / "current.new").symlink_to(tmp_path / "releases" / "2")
        os.replace(tmp_path / "current.new", current)
        await eventually(lambda: answers(holder, GIFT_Q, "gift cards are sold"), "new release")
        # later edits land in the new release folder and are seen too
        labs = tmp_path / "releases" / "2" / "labs.txt"
        labs.write_text(labs.read_text().replace("seven years", "ten years"), encoding="utf-8")
        await eventually(lambda: answers(holder, LABS_Q, "ten years"), "edit in new release")


async def test_folder_replaced_by_rename_is_followed(tmp_path: Path, make_settings: Any) -> None:
    folder = tmp_path / "faqs"
    write_faqs(folder)
    holder = BotHolder(make_settings(faq_dir=folder))
    async with watching(holder):
        write_faqs(tmp_path / "faqs.new", GIFT_ENTRY)
        folder.rename(tmp_path / "faqs.old")
        (tmp_path / "faqs.new").rename(folder)
        await eventually(lambda: answers(holder, GIFT_Q, "gift cards are sold"), "renamed in")
        labs = folder / "labs.txt"
        labs.write_text(labs.read_text().replace("seven years", "ten years"), encoding="utf-8")
        await eventually(lambda: answers(holder, LABS_Q, "ten years"), "edit after rename")


async def _ask_through_a_gap(
    holder: BotHolder, folder: Path, remove: Callable[[Path], None]
) -> None:
    labs = folder / "labs.txt"
    good = labs.read_text(encoding="utf-8")
    asked = refused = 0
    done = asyncio.Event()

    async def ask_continuously() -> None:
        nonlocal asked, refused
        while not done.is_set():
            assert holder.bot is not None
            result = await collect(holder.bot.answer(LABS_Q))
            asked += 1
            refused += result.category != "labs" or "seven years" not in result.answer
            await asyncio.sleep(0.002)

    async with watching(holder):
        asker = asyncio.create_task(ask_continuously())
        await asyncio.sleep(0.1)
        remove(labs)
        gap_start = asked
        await asyncio.sleep(0.25)  # the non-atomic save's gap (< 0.3 s)
        labs.write_text(good.replace("seven years", "seven years (edited)"), encoding="utf-8")
        gap_asks = asked - gap_start
        await eventually(lambda: answers(holder, LABS_Q, "(edited)"), "rewritten file loaded")
        await asyncio.sleep(0.2)
        done.set()
        await asyncio.wait_for(asker, 5)
    assert gap_asks > 20, "the gap must be probed by many questions"
    assert refused == 0, f"{refused} of {asked} labs questions were not answered from labs"


async def test_file_deleted_then_rewritten_keeps_its_category(
    small_faq_dir: Path, make_settings: Any
) -> None:
    await _ask_through_a_gap(BotHolder(make_settings()), small_faq_dir, Path.unlink)


async def test_file_truncated_then_rewritten_keeps_its_category(
    small_faq_dir: Path, make_settings: Any
) -> None:
    """A guard: an empty file was refused as an error before (no gap); it settles now."""
    await _ask_through_a_gap(
        BotHolder(make_settings()), small_faq_dir, lambda p: p.write_bytes(b"")
    )


async def test_file_deleted_for_good_drops_its_category_after_settling(
    small_faq_dir: Path, make_settings: Any
) -> None:
    holder = BotHolder(make_settings(), settle_seconds=0.5)
    assert holder.bot is not None
    async with watching(holder):
        (small_faq_dir / "labs.txt").unlink()
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        async def dropped() -> bool:
            return holder.bot is not None and "labs" not in holder.bot.kb.categories

        await eventually(dropped, "labs dropped")
        assert loop.time() - t0 >= 0.5
    assert not await answers(holder, LABS_Q, "seven years")


async def test_bad_edit_degrades_health_with_file_line_then_recovers(
    small_faq_dir: Path, make_settings: Any
) -> None:
    settings = make_settings()
    holder = BotHolder(settings)
    assert holder.bot is not None
    good_version = holder.bot.kb.version
    api = create_api(
        lambda: holder.bot, RateLimiter(1000, 60), settings, ConversationStore(), prefix="/api"
    )
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    sales = small_faq_dir / "sales.txt"
    good = sales.read_text(encoding="utf-8")
    bad_line = good.count("\n") + 3
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://t") as http,
        watching(holder),
    ):
        health = (await http.get("/health")).json()
        assert health["status"] == "ok"
        assert health["knowledge"]["problems"] == []

        sales.write_text(good + "\n\nQ: A question without an answer?\n", encoding="utf-8")

        async def degraded() -> bool:
            return bool((await http.get("/health")).json()["status"] == "degraded")

        await eventually(degraded, "health degraded by the bad edit")
        health = (await http.get("/health")).json()
        knowledge = health["knowledge"]
        assert knowledge["state"] == "rejected"
        assert knowledge["serving_version"] == good_version == health["knowledge_version"]
        assert any(f"sales.txt:{bad_line}:" in p for p in knowledge["problems"]), knowledge
        assert "30-day" in (await collect(holder.bot.answer("refund policy?"))).answer

        sales.write_text(good + GIFT_ENTRY, encoding="utf-8")

        async def ok() -> bool:
            return bool((await http.get("/health")).json()["status"] == "ok")

        await eventually(ok, "health ok after the fix")
        health = (await http.get("/health")).json()
        assert health["knowledge"]["problems"] == []
        assert health["knowledge"]["serving_version"] != good_version
        assert await answers(holder, GIFT_Q, "gift cards are sold")
