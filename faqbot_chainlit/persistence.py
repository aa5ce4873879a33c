"""Persistence as the Chainlit face uses it: one database for Chainlit's data layer (threads,
steps) and faqbot's own turn rows (faqbot/store); a database failure never breaks the chat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faqbot.config import Settings
from faqbot.domain import ChatTurn
from faqbot.logs import get_logger
from faqbot.privacy.stored import MaskingStore, delete_whole_threads, mask_data_layer
from faqbot.store.chainlit_layer import FaqbotDataLayer
from faqbot.store.database import Database
from faqbot.store.turns import Store, TurnRecord

log = get_logger("faqbot.chainlit")


@dataclass(frozen=True)
class Persistence:
    """All None with PERSISTENCE=false."""

    database: Database | None = None
    data_layer: FaqbotDataLayer | None = None
    store: Store | None = None


def open_persistence(settings: Settings) -> Persistence:
    if not settings.persistence:
        return Persistence()
    database = Database.from_settings(settings)
    data_layer = FaqbotDataLayer(database)
    kind = MaskingStore if settings.mask_pii else Store  # MASK_PII: users' words masked
    delete_whole_threads(data_layer, database.engine)  # with faqbot's turn rows
    if settings.mask_pii:
        mask_data_layer(data_layer)
    return Persistence(database, data_layer, kind(database, data_layer.failure_count))


async def ensure_schema(database: Database | None) -> None:
    """Create or upgrade the schema; on failure answers go on (every write counted as failed)."""
    if database is None:
        return
    try:
        await database.ensure_schema()
        log.info("store.ready", **database.describe())
    except Exception as exc:
        log.error("store.unavailable", error=f"{type(exc).__name__}: {exc}"[:300],
                  **database.describe())  # fmt: skip


async def persist(parts: Persistence, record: TurnRecord) -> None:
    """Once Chainlit's writes of this turn have committed, add its turn row: the turn ends (the
    browser sees it finish) only when it is on disk. A database failure never breaks the chat."""
    if parts.store is None or parts.data_layer is None:
        return
    try:
        await parts.data_layer.drain(record.thread_id)
        await parts.store.record_turn(record)
    except Exception as exc:
        log.error("store.turn_not_saved", error=f"{type(exc).__name__}: {exc}"[:300])


async def resumed_history(store: Store | None, thread: Any, turns_kept: int) -> list[ChatTurn]:
    """A reopened thread's questions and answers: faqbot's turn rows, else (a thread from before
    faqbot stored turns) its messages as Chainlit stored them."""
    turns: list[ChatTurn] = []
    if store is not None:
        try:
            turns = list(await store.history(str(thread.get("id", "")), turns_kept // 2))
        except Exception as exc:
            log.error("store.history_failed", error=f"{type(exc).__name__}: {exc}"[:300])
    if not turns:
        for item in thread.get("steps", []):
            if item.get("type") == "user_message":
                turns.append(ChatTurn("user", str(item.get("output") or "")))
            elif item.get("type") == "assistant_message" and turns:
                turns.append(ChatTurn("assistant", str(item.get("output") or "")))
    return turns[-turns_kept:]
