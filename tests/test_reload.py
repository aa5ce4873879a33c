"""Hot reload of the FAQ folder: good edits swap in, bad edits keep the last good version."""

import asyncio
from pathlib import Path
from typing import Any

from faqbot.answering.bot import collect
from faqbot.answering.factory import build_bot
from faqbot.ops.reload import BotHolder, ReloadStatus, reload_once, watch_knowledge

NEW_ENTRY = "\n\nQ: Do you offer gift cards?\nA: Yes, gift cards are sold in the billing portal.\n"


async def test_valid_edit_is_swapped_in(small_faq_dir: Path, make_settings: Any) -> None:
    bot = build_bot(make_settings())
    before = bot.kb.version
    assert (await collect(bot.answer("Do you offer gift cards?"))).outcome != "answered"
    with (small_faq_dir / "sales.txt").open("a", encoding="utf-8") as f:
        f.write(NEW_ENTRY)
    status = ReloadStatus()
    assert reload_once(bot, small_faq_dir, status)
    assert bot.kb.version != before
    assert status.reloads == 1
    result = await collect(bot.answer("Do you offer gift cards?"))
    assert "gift cards are sold" in result.answer


async def test_bad_edit_keeps_the_last_good_version(
    small_faq_dir: Path, make_settings: Any
) -> None:
    bot = build_bot(make_settings())
    before = bot.kb.version
    with (small_faq_dir / "sales.txt").open("a", encoding="utf-8") as f:
        f.write("\n\nQ: A question without an answer?\n")
    status = ReloadStatus()
    assert not reload_once(bot, small_faq_dir, status)
    assert bot.kb.version == before
    assert any("sales.txt" in p and "no answer" in p for p in status.last_error)
    assert not (await collect(bot.answer("refund policy?"))).refused


async def test_watcher_reloads_after_a_file_change(small_faq_dir: Path, make_settings: Any) -> None:
    bot = build_bot(make_settings())
    before = bot.kb.version
    status = ReloadStatus()
    stop = asyncio.Event()
    task = asyncio.create_task(
        watch_knowledge(small_faq_dir, lambda: reload_once(bot, small_faq_dir, status), stop)
    )
    await asyncio.sleep(0.5)
    with (small_faq_dir / "sales.txt").open("a", encoding="utf-8") as f:
        f.write(NEW_ENTRY)
    for _ in range(100):
        if bot.kb.version != before:
            break
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert bot.kb.version != before
    assert status.reloads == 1


async def test_broken_folder_at_start_means_no_bot_until_it_is_fixed(
    small_faq_dir: Path, make_settings: Any
) -> None:
    sales = small_faq_dir / "sales.txt"
    good = sales.read_text(encoding="utf-8")
    sales.write_text(good + "\n\nQ: Orphan question?\n", encoding="utf-8")
    holder = BotHolder(make_settings())
    assert holder.bot is None
    assert any("sales.txt" in p and "no answer" in p for p in holder.status.last_error)
    sales.write_text(good, encoding="utf-8")
    holder.refresh()
    assert holder.bot is not None
    assert holder.status.last_error == []
    assert "30-day" in (await collect(holder.bot.answer("refund policy?"))).answer
