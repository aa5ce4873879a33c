"""MASK_PII on what is stored: the users' words are masked before they reach the database.

Masked: each question (the user message step, the router step's input and standalone rewrite,
the thread's name, `faqbot_turns.question` and `standalone_question`) and feedback comments.
Not masked: the answers (they quote the FAQ, whose own contact addresses must stay readable).
The bot itself still reads the question as typed, so it answers it; only what is kept is masked
(a follow-up after a restart therefore sees the masked question in its history).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from faqbot.privacy.masking import mask_pii
from faqbot.privacy.retention import delete_threads
from faqbot.store.requester import Requester
from faqbot.store.turns import FeedbackResult, Store, TurnRecord

ANSWER_STEP = "assistant_message"


def masked_record(record: TurnRecord) -> TurnRecord:
    """The turn with its question and standalone rewrite masked."""
    standalone = record.standalone_question
    return dataclasses.replace(
        record,
        question=mask_pii(record.question),
        standalone_question=mask_pii(standalone) if standalone else standalone,
    )


def masked_step(step: Mapping[str, Any]) -> dict[str, Any]:
    """A Chainlit step dict with the user's words masked (an answer's output is kept)."""
    out = dict(step)
    if isinstance(out.get("input"), str):
        out["input"] = mask_pii(out["input"])
    if out.get("type") != ANSWER_STEP and isinstance(out.get("output"), str):
        out["output"] = mask_pii(out["output"])
    meta = out.get("metadata")
    if isinstance(meta, Mapping) and isinstance(meta.get("faqbot"), Mapping):
        faqbot = dict(meta["faqbot"])
        if isinstance(faqbot.get("standalone_question"), str):
            faqbot["standalone_question"] = mask_pii(faqbot["standalone_question"])
        out["metadata"] = {**meta, "faqbot": faqbot}
    return out


class MaskingStore(Store):
    """faqbot's writes (turn rows, API conversations, API feedback) with the user's words masked."""

    async def record_turn(self, record: TurnRecord) -> None:
        await super().record_turn(masked_record(record))

    async def record_api_turn(self, record: TurnRecord, route_output: str, app_name: str) -> None:
        await super().record_api_turn(masked_record(record), mask_pii(route_output), app_name)

    async def add_feedback(
        self, turn_id: str, value: int, comment: str | None, who: Requester | None = None
    ) -> FeedbackResult:
        masked = mask_pii(comment) if comment else comment
        return await super().add_feedback(turn_id, value, masked, who)


def mask_data_layer(layer: Any) -> None:
    """Mask the user's words in what Chainlit's data layer writes (steps, thread names, feedback
    comments) by wrapping the layer's own methods; the layer itself is not changed otherwise."""
    create_step: Callable[[dict[str, Any]], Awaitable[Any]] = layer.create_step
    update_step: Callable[[dict[str, Any]], Awaitable[Any]] = layer.update_step
    update_thread: Callable[..., Awaitable[Any]] = layer.update_thread
    upsert_feedback: Callable[[Any], Awaitable[Any]] = layer.upsert_feedback

    async def create(step_dict: dict[str, Any]) -> Any:
        return await create_step(masked_step(step_dict))

    async def update(step_dict: dict[str, Any]) -> Any:
        return await update_step(masked_step(step_dict))

    async def thread(thread_id: str, *args: Any, **kwargs: Any) -> Any:
        if isinstance(kwargs.get("name"), str):
            kwargs["name"] = mask_pii(kwargs["name"])
        return await update_thread(thread_id, *args, **kwargs)

    async def feedback(item: Any) -> Any:
        if isinstance(getattr(item, "comment", None), str):
            item = dataclasses.replace(item, comment=mask_pii(item.comment))
        return await upsert_feedback(item)

    layer.create_step, layer.update_step = create, update
    layer.update_thread, layer.upsert_feedback = thread, feedback


def delete_whole_threads(layer: Any, engine: AsyncEngine) -> None:
    """A thread deleted through Chainlit (the history sidebar) goes with faqbot's turn rows:
    Chainlit's own `delete_thread` knows only its tables, and would leave the questions behind
    in `faqbot_turns`."""
    delete_thread: Callable[[str], Awaitable[Any]] = layer.delete_thread

    async def delete(thread_id: str) -> Any:
        result = await delete_thread(thread_id)
        await delete_threads(engine, [thread_id])
        return result

    layer.delete_thread = delete
