"""Keep the serving bot in step with the FAQ folder (watchfiles).

A bad edit keeps the last good knowledge base serving; the problems are logged with file:line and
kept in `ReloadStatus`. If no valid FAQ has loaded yet (a broken folder at start-up), there is no
bot: the faces answer "unavailable" (HTTP 503) until a fixed file is saved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import watchfiles

from faqbot.bot import FaqBot
from faqbot.config import Settings
from faqbot.errors import FaqFormatError, KnowledgeError
from faqbot.factory import build_bot
from faqbot.knowledge import load_knowledge_base
from faqbot.knowledge.loader import SUFFIXES
from faqbot.logs import get_logger

log = get_logger("faqbot.reload")


@dataclass
class ReloadStatus:
    reloads: int = 0
    last_error: list[str] = field(default_factory=list)


def _problems(exc: KnowledgeError) -> list[str]:
    if isinstance(exc, FaqFormatError):
        return [str(p) for p in exc.problems]
    return [str(exc)]


def _is_faq_file(_: watchfiles.Change, path: str) -> bool:
    p = Path(path)
    return p.suffix.lower() in SUFFIXES and not p.name.startswith(".")


def reload_once(bot: FaqBot, directory: Path, status: ReloadStatus) -> bool:
    """Try to load `directory`; swap it in if valid. Returns True when the bot was reloaded."""
    try:
        kb = load_knowledge_base(directory)
    except KnowledgeError as exc:
        status.last_error = _problems(exc)
        log.error("knowledge.reload_rejected", problems=status.last_error, kept=bot.kb.version)
        return False
    status.last_error = []
    if kb.version == bot.kb.version:
        return False
    bot.reload(kb)
    status.reloads += 1
    log.info("knowledge.reloaded", version=kb.version, counts=kb.counts())
    return True


class BotHolder:
    """The serving bot, or None while no valid FAQ folder has been loaded."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.status = ReloadStatus()
        self.bot: FaqBot | None = None
        self.refresh()

    def refresh(self) -> None:
        """Build the bot on the first valid load, then reload its knowledge on later ones."""
        if self.bot is not None:
            reload_once(self.bot, self.settings.faq_dir, self.status)
            return
        try:
            self.bot = build_bot(self.settings)
        except KnowledgeError as exc:
            self.status.last_error = _problems(exc)
            log.error(
                "knowledge.unavailable",
                problems=self.status.last_error,
                hint="fix the FAQ files; they are watched and will load when valid",
            )
            return
        self.status.last_error = []
        log.info("knowledge.loaded", version=self.bot.kb.version, counts=self.bot.kb.counts())


async def watch_knowledge(
    directory: Path, refresh: Callable[[], object], stop: asyncio.Event | None = None
) -> None:
    """Call `refresh` after every change to FAQ files in `directory` until `stop` is set."""
    async for _ in watchfiles.awatch(
        directory, watch_filter=_is_faq_file, stop_event=stop, debounce=300
    ):
        refresh()
