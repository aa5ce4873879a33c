"""What faqbot itself writes and reads: turn rows, API conversations, feedback, histories.

The chat UI's threads and steps are written by Chainlit's data layer (faqbot adds the turn's
metadata to its steps and one `faqbot_turns` row per turn); an API conversation has no Chainlit
session, so its thread and steps are written here, in the same shapes, in one transaction per turn.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from faqbot.domain import ROUTE_STEP_NAME, ChatTurn, TurnResult
from faqbot.store.database import Database
from faqbot.store.feedback import rate
from faqbot.store.requester import Requester
from faqbot.store.schema import steps, threads, turns

Face = Literal["ui", "widget", "api"]
RoutedBy = Literal["llm", "retrieval", "cache", "suggestion"]


def utc_iso(moment: datetime | None = None) -> str:
    """Chainlit's timestamp format: naive ISO-8601 UTC with a trailing Z."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One finished turn: the `faqbot_turns` row, and the answer step's metadata["faqbot"]."""

    id: str  # the answer step's id
    thread_id: str
    face: Face
    question: str
    answer: str
    outcome: str
    category: str | None = None
    confidence: float = 0.0
    routed_by: RoutedBy = "retrieval"
    standalone_question: str | None = None
    fallback: bool = False
    fallback_reason: str | None = None
    mode: str = "offline"
    cached: bool = False
    entry_ids: tuple[str, ...] = ()
    suggestion_ids: tuple[str, ...] = ()
    faq_version: str | None = None
    latency_ms: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    question_step_id: str | None = None
    user_identifier: str | None = None
    created_at: str = field(default_factory=utc_iso)

    @classmethod
    def of(
        cls,
        result: TurnResult,
        *,
        answer_id: str,
        thread_id: str,
        face: Face,
        routed_by: RoutedBy,
        faq_version: str | None,
        **extra: Any,
    ) -> TurnRecord:
        return cls(
            id=answer_id,
            thread_id=thread_id,
            face=face,
            question=result.question,
            answer=result.answer,
            outcome=result.outcome,
            category=result.category,
            confidence=round(float(result.confidence), 4),
            routed_by=routed_by,
            standalone_question=result.standalone_question,
            fallback=result.fallback,
            fallback_reason=result.fallback_reason,
            mode=result.mode,
            cached=result.cached,
            entry_ids=tuple(s.id for s in result.sources),
            suggestion_ids=tuple(s.id for s in result.suggestions),
            faq_version=faq_version,
            latency_ms=round(result.elapsed_s * 1000),
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
            cost_usd=result.usage.cost_usd,
            **extra,
        )

    def metadata(self) -> dict[str, Any]:
        """The answer step's metadata["faqbot"] (the keys documented in faqbot.store)."""
        return {
            "turn_id": self.id,
            "category": self.category,
            "confidence": self.confidence,
            "routed_by": self.routed_by,
            "outcome": self.outcome,
            "fallback": self.fallback,
            "fallback_reason": self.fallback_reason,
            "mode": self.mode,
            "cached": self.cached,
            "entry_ids": list(self.entry_ids),
            "suggestion_ids": list(self.suggestion_ids),
            "faq_version": self.faq_version,
            "latency_ms": self.latency_ms,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
        }

    def row(self) -> dict[str, Any]:
        meta = self.metadata()
        del meta["turn_id"]
        meta["entry_ids"] = json.dumps(meta["entry_ids"])
        meta["suggestion_ids"] = json.dumps(meta["suggestion_ids"])
        return {
            **meta,
            "id": self.id,
            "thread_id": self.thread_id,
            "question_step_id": self.question_step_id,
            "created_at": self.created_at,
            "face": self.face,
            "user_identifier": self.user_identifier,
            "question": self.question,
            "standalone_question": self.standalone_question,
            "answer": self.answer,
        }


def route_metadata(record: TurnRecord) -> dict[str, Any]:
    """The router step's metadata["faqbot"]."""
    return {
        "category": record.category,
        "confidence": record.confidence,
        "routed_by": record.routed_by,
        "standalone_question": record.standalone_question,
    }


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    id: str
    turn_id: str
    thread_id: str | None
    value: int  # stored on Chainlit's scale: 1 up, 0 down


class Store:
    """faqbot's reads and writes on the shared database."""

    def __init__(
        self, database: Database, failures: Callable[[], tuple[int, str | None]] | None = None
    ) -> None:
        """`failures` reports the failed writes of others on this database (Chainlit's layer)."""
        self.db = database
        self.failures = failures
        self._statements: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Any] = {}

    def _upsert(self, table: Table, row: dict[str, Any], keep: Sequence[str] = ()) -> Any:
        """INSERT ... ON CONFLICT (id) DO UPDATE: the same statement on both backends, to run
        with `row` as its parameters. Built once per shape: building it (`excluded` copies
        every column) cost more than the write itself (profiled, bench/RESULTS.md "Load")."""
        shape = (table.name, tuple(row), tuple(keep))
        stmt = self._statements.get(shape)
        if stmt is None:
            dialect = postgresql if self.db.dialect == "postgresql" else sqlite
            insert = dialect.insert(table)
            updates = {k: insert.excluded[k] for k in row if k != "id" and k not in keep}
            stmt = self._statements[shape] = insert.on_conflict_do_update(
                index_elements=["id"], set_=updates
            )
        return stmt

    async def record_turn(self, record: TurnRecord) -> None:
        """The turn's row (the chat UI's steps are Chainlit's). Idempotent by turn id."""
        row = record.row()
        statement = self._upsert(turns, row)

        def write(conn: Connection) -> None:
            conn.execute(statement, row)

        await self.db.writes.run(write)

    async def record_api_turn(self, record: TurnRecord, route_output: str, app_name: str) -> None:
        """An API turn: its thread (created by the first turn), question, router and answer
        steps, and its turn row, all or nothing."""
        start = datetime.fromisoformat(record.created_at.rstrip("Z"))
        at = [utc_iso(start + timedelta(microseconds=i)) for i in range(3)]
        question_id = record.question_step_id or new_id()
        thread = {
            "id": record.thread_id,
            "createdAt": at[0],
            "name": record.question[:200],
            "metadata": json.dumps({"face": "api"}),
            "userIdentifier": record.user_identifier,  # signed in: erased with the user
        }
        base = {"threadId": record.thread_id, "streaming": False, "isError": False}
        rows = [
            dict(
                id=question_id, name="User", type="user_message", output=record.question,
                createdAt=at[0], start=at[0], end=at[0], metadata="{}", **base,
            ),
            dict(
                id=new_id(), name=ROUTE_STEP_NAME, type="tool", parentId=question_id,
                input=record.question, output=route_output, createdAt=at[1], start=at[1],
                end=at[1], showInput="false",
                metadata=json.dumps({"faqbot": route_metadata(record)}), **base,
            ),
            dict(
                id=record.id, name=app_name, type="assistant_message", parentId=question_id,
                output=record.answer, createdAt=at[2], start=at[2], end=at[2],
                metadata=json.dumps({"faqbot": record.metadata()}), **base,
            ),
        ]  # fmt: skip
        row = {**record.row(), "question_step_id": question_id}
        thread_upsert = self._upsert(threads, thread, keep=("createdAt", "name"))
        turn_upsert = self._upsert(turns, row)

        def write(conn: Connection) -> None:
            conn.execute(thread_upsert, thread)
            # parameters, not .values(): the compiled INSERT is reused; one executemany
            conn.execute(steps.insert(), rows)
            conn.execute(turn_upsert, row)

        await self.db.writes.run(write)

    async def history(self, thread_id: str, max_turns: int) -> tuple[ChatTurn, ...]:
        """The last `max_turns` questions and answers of a thread, oldest first."""
        query = (
            select(turns.c.question, turns.c.answer)
            .where(turns.c.thread_id == thread_id)
            .order_by(turns.c.created_at.desc())
            .limit(max_turns)
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        out: list[ChatTurn] = []
        for question, answer in reversed(rows):
            out.extend([ChatTurn("user", question), ChatTurn("assistant", answer or "")])
        return tuple(out)

    async def thread_owner(self, thread_id: str) -> str | None:
        """The signed-in user a thread belongs to (None: anonymous or unknown)."""
        async with self.db.engine.connect() as conn:
            owner = await _scalar(
                conn, select(threads.c.userIdentifier).where(threads.c.id == thread_id)
            )
        return str(owner) if owner is not None else None

    async def add_feedback(
        self, turn_id: str, value: int, comment: str | None, who: Requester | None = None
    ) -> FeedbackResult:
        """Store thumbs up (+1) or down (-1) for an answer, under the rules of every feedback
        path (faqbot.store.feedback): one per answer per client (`who`, else the current
        request's requester), a signed-in user's answers rated only by them, comments capped.
        Raises FeedbackRefused (with its HTTP status) when the answer is unknown or not theirs.
        """
        rated = await rate(self.db, turn_id, 1 if value > 0 else 0, comment, who)
        return FeedbackResult(rated.id, rated.for_id, rated.thread_id, rated.value)


async def _scalar(conn: AsyncConnection, query: Any) -> Any:
    return (await conn.execute(query)).scalar_one_or_none()
