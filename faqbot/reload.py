"""Watch the FAQ folder (watchfiles) and reload the bot's knowledge base on change.

A bad edit keeps the last good knowledge base serving; the problems are logged with file:line
and kept in `ReloadStatus` for the health endpoint.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import watchfiles

from faqbot.bot import FaqBot
from faqbot.errors import FaqFormatError, KnowledgeError
from faqbot.knowledge import load_knowledge_base
from faqbot.knowledge.loader import SUFFIXES
from faqbot.logs import get_logger

log = get_logger("faqbot.reload")


@dataclass
class ReloadStatus:
    reloads: int = 0
    last_error: list[str] = field(default_factory=list)


def _is_faq_file(_: watchfiles.Change, path: str) -> bool:
    p = Path(path)
    return p.suffix.lower() in SUFFIXES and not p.name.startswith(".")


def reload_once(bot: FaqBot, directory: Path, status: ReloadStatus) -> bool:
    """Try to load `directory`; swap it in if valid. Returns True when the bot was reloaded."""
    try:
        kb = load_knowledge_base(directory)
    except FaqFormatError as exc:
        status.last_error = [str(p) for p in exc.problems]
        log.error("knowledge.reload_rejected", problems=status.last_error, kept=bot.kb.version)
        return False
    except KnowledgeError as exc:
        status.last_error = [str(exc)]
        log.error("knowledge.reload_rejected", problems=status.last_error, kept=bot.kb.version)
        return False
    status.last_error = []
    if kb.version == bot.kb.version:
        return False
    bot.reload(kb)
    status.reloads += 1
    log.info("knowledge.reloaded", version=kb.version, counts=kb.counts())
    return True


async def watch_knowledge(
    bot: FaqBot,
    directory: Path,
    status: ReloadStatus,
    stop: asyncio.Event | None = None,
) -> None:
    """Reload on every change to FAQ files until `stop` is set."""
    async for _ in watchfiles.awatch(
        directory, watch_filter=_is_faq_file, stop_event=stop, debounce=300
    ):
        reload_once(bot, directory, status)
