"""Background work started with the server: the FAQ watcher, the learned phrasings' poll,
retention, the LLM warm-up."""

from __future__ import annotations

import asyncio
from typing import Any

from faqbot.config import Settings
from faqbot.logs import get_logger
from faqbot.ops.reload import BotHolder, watch_knowledge
from faqbot.store.database import Database

log = get_logger("faqbot.chainlit")


def start_background(
    settings: Settings, holder: BotHolder, database: Database | None, tasks: set[asyncio.Task[Any]]
) -> None:
    """Start each job; `tasks` keeps a reference to each (the loop holds tasks only weakly)."""
    start_faq_watcher(settings, holder, tasks)
    _start_learned_sync(settings, holder, database, tasks)
    _start_retention(settings, database, tasks)
    _start_warm_up(holder, tasks)


def start_faq_watcher(settings: Settings, holder: BotHolder, tasks: set[asyncio.Task[Any]]) -> None:
    """Reload the FAQ on file changes; a bad edit keeps the last good version serving.

    The watcher follows FAQ_DIR by path (missing at start, renamed, symlink-swapped) and only
    ends with the process; should it ever stop, say so instead of going stale silently.
    """
    task = asyncio.get_running_loop().create_task(
        watch_knowledge(settings.faq_dir, holder.refresh), name="faq-watcher"
    )
    tasks.add(task)

    def ended(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("knowledge.watcher_died", error=repr(task.exception()))

    task.add_done_callback(ended)


def _start_learned_sync(
    settings: Settings, holder: BotHolder, database: Database | None, tasks: set[asyncio.Task[Any]]
) -> None:
    """LEARNED_POLL_SECONDS: serve the phrasings owners attached, on every replica (issue 22;
    faqbot/ops/learning.py). The first poll runs at once, so a restart serves them too."""
    if settings.learned_poll_seconds <= 0 or database is None:
        return
    from faqbot.ops.learning import LearnedSync

    sync = LearnedSync(holder, database.engine, settings.learned_poll_seconds)
    task = asyncio.get_running_loop().create_task(sync.run(), name="learned-sync")
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def _start_retention(
    settings: Settings, database: Database | None, tasks: set[asyncio.Task[Any]]
) -> None:
    """RETENTION_DAYS: delete old conversations at start and every hour (faqbot/privacy)."""
    if settings.retention_days <= 0 or database is None:
        return
    from faqbot.privacy.retention import retention_loop

    loop = retention_loop(database.engine, settings.retention_days)
    task = asyncio.get_running_loop().create_task(loop, name="retention")
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def _start_warm_up(holder: BotHolder, tasks: set[asyncio.Task[Any]]) -> None:
    """LLM_WARM_UP: one router call at start, off the request path (faqbot.answering.factory):
    a local server loads its model and the router learns the endpoint's tool_choice form."""
    if holder.bot is None or holder.bot.model is None:
        return
    from faqbot.answering.factory import warm_up

    task = asyncio.get_running_loop().create_task(warm_up(holder.bot), name="llm-warm-up")
    tasks.add(task)
    task.add_done_callback(tasks.discard)
