"""Feedback rules shared by every path: Chainlit's `PUT /feedback` and `POST /api/feedback`.

- **What is rated is an answer.** `for_id` must be the canonical UUID of a stored answer (a
  `faqbot_turns` row or an `assistant_message` step) or of a run step: the chat UI puts its
  thumbs under Chainlit's `on_message` run, so a run is mapped to the answer faqbot recorded in
  that run, and the report and /admin count it. A run with no recorded answer (an error or a
  "too many requests" reply) keeps the rating on the run. Anything else (unknown, not a UUID, a
  question or tool step) is refused as 404: nothing is stored.
- **One rating per answer per client.** The row's id is `uuid5(answer id, client)` (`client` is
  the front door's rate-limit key: `user:<id>` signed in, `ip:<address>` anonymous, "unknown"
  when no requester is set), so a second rating by the same client replaces the first, from
  either path; ids and thread ids sent by the client are ignored.
- **Ownership.** An answer in a thread that belongs to a signed-in user may be rated only by
  that user; one in an anonymous thread (sign-in off, an API conversation) by any client that
  holds its id. A refusal is a 404, the same as an unknown id: it does not say the answer
  exists. Without a requester (faqbot's own code, tests) ownership is not checked.
- **Bounded comments.** At most `COMMENT_MAX_CHARS` characters, the API's limit: a longer one is
  refused (422), not clipped, so nobody's words are silently cut.
- **Delete only your own.** A feedback id is deleted only by the client it was made for.

Checks run on a read connection first (a flood of refused ids never queues in the writer); the
one write is an upsert through the group commit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from faqbot.store.database import Database
from faqbot.store.requester import Requester, current_requester
from faqbot.store.schema import feedbacks, steps, threads, turns

COMMENT_MAX_CHARS = 1000  # as POST /api/feedback's schema (faqbot/web/schemas.py)
ANONYMOUS = Requester("unknown")
# feedback ids: uuid5(this namespace, "<answer id> <client>")
RATING_NAMESPACE = uuid.UUID("2b8f0d4e-7c1a-4f3e-9d5b-6a0c8e1f2d47")
RATEABLE_STEPS = ("assistant_message", "run")
NOT_FOUND = "No stored answer of yours has this id"


class FeedbackRefused(Exception):
    """A rating or deletion refused; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Target:
    """What a rating lands on: the answer (or a run with no answer), its thread and owner."""

    for_id: str
    thread_id: str | None
    owner: str | None


@dataclass(frozen=True, slots=True)
class Rated:
    id: str
    for_id: str  # the answer's id (= faqbot_turns.id) when the run had one
    thread_id: str | None
    value: int  # Chainlit's scale: 1 up, 0 down


def requester() -> Requester:
    """Who asks: set by the front door for every request; anonymous "unknown" otherwise."""
    return current_requester.get() or ANONYMOUS


def rating_id(for_id: str, client: str) -> str:
    """The one feedback id of this client for this answer."""
    return str(uuid.uuid5(RATING_NAMESPACE, f"{for_id} {client}"))


def is_uuid(value: object) -> bool:
    """A canonical, lower-case, hyphenated UUID (the form Chainlit and faqbot create)."""
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def clean_comment(comment: object) -> str | None:
    """The comment stripped (None when empty); refused when longer than the cap."""
    if comment is None:
        return None
    if not isinstance(comment, str):
        raise FeedbackRefused(422, "The comment must be text")
    text = comment.strip()
    if len(text) > COMMENT_MAX_CHARS:
        raise FeedbackRefused(
            422, f"The comment is longer than {COMMENT_MAX_CHARS:,} characters: please shorten it"
        )
    return text or None


async def rate(
    database: Database, for_id: str, value: int, comment: object, who: Requester | None = None
) -> Rated:
    """Store (or replace) this client's rating of an answer; FeedbackRefused if not allowed.
    `who` defaults to the current request's requester."""
    if value not in (0, 1):
        raise FeedbackRefused(422, "The value must be 1 (thumbs up) or 0 (thumbs down)")
    text = clean_comment(comment)
    asker = who if who is not None else current_requester.get()
    target = await find_target(database, for_id)
    if target is None or not may_rate(target, asker):
        raise FeedbackRefused(404, NOT_FOUND)
    client = (asker or ANONYMOUS).client
    rated = Rated(rating_id(target.for_id, client), target.for_id, target.thread_id, value)
    row = {"id": rated.id, "forId": rated.for_id, "threadId": rated.thread_id,
           "value": value, "comment": text}  # fmt: skip
    statement = _upsert(database.dialect)

    def write(conn: Connection) -> None:
        conn.execute(statement, row)

    try:
        await database.writes.run(write)
    except IntegrityError:  # the thread was deleted meanwhile (retention, delete-user)
        raise FeedbackRefused(404, NOT_FOUND) from None
    return rated


async def unrate(database: Database, feedback_id: str, who: Requester | None = None) -> None:
    """Delete a rating made by this client; FeedbackRefused(404) for anyone else's or none."""
    asker = who or requester()
    if not is_uuid(feedback_id):
        raise FeedbackRefused(404, "No feedback of yours has this id")
    async with database.engine.connect() as conn:
        for_id = await _scalar(conn, select(feedbacks.c.forId).where(feedbacks.c.id == feedback_id))
    if for_id is None or rating_id(str(for_id), asker.client) != feedback_id:
        raise FeedbackRefused(404, "No feedback of yours has this id")
    statement = feedbacks.delete().where(feedbacks.c.id == feedback_id)

    def delete(conn: Connection) -> None:
        conn.execute(statement)

    await database.writes.run(delete)


async def delete_ratings_of(database: Database, client: str, batch: int = 5000) -> int:
    """Delete every rating this client made (e.g. `user:<id>` for `delete-user`): a user's
    ratings of answers outside their own threads (API conversations) carry no user column;
    their ids are derived from the client, so each row is checked. Returns the rows deleted."""
    mine: list[str] = []
    async with database.engine.connect() as conn:
        result = await conn.stream(select(feedbacks.c.id, feedbacks.c.forId))
        async for part in result.partitions(batch):
            mine.extend(r.id for r in part if r.id == rating_id(str(r.forId), client))
    for start in range(0, len(mine), batch):
        chunk = mine[start : start + batch]
        statement = feedbacks.delete().where(feedbacks.c.id.in_(chunk))

        def delete(conn: Connection, statement: Any = statement) -> None:
            conn.execute(statement)

        await database.writes.run(delete)
    return len(mine)


def may_rate(target: Target, who: Requester | None) -> bool:
    """An owned thread's answers: only its owner; anonymous threads: anyone with the id."""
    if who is None or target.owner is None:
        return True
    return who.user == target.owner


async def find_target(database: Database, for_id: str) -> Target | None:
    """The answer `for_id` names (a run is mapped to its answer), or None."""
    if not is_uuid(for_id):
        return None
    async with database.engine.connect() as conn:
        turn = (await conn.execute(select(turns.c.thread_id).where(turns.c.id == for_id))).first()
        if turn is not None:
            return await _with_owner(conn, for_id, str(turn.thread_id))
        step = (
            await conn.execute(
                select(steps.c.type, steps.c.threadId, steps.c.parentId).where(steps.c.id == for_id)
            )
        ).first()
        if step is None or step.type not in RATEABLE_STEPS:
            return None
        answer = await _run_answer(conn, for_id, step.parentId, step.threadId)
        return await _with_owner(conn, answer or for_id, str(step.threadId))


async def _run_answer(
    conn: AsyncConnection, run_id: str, question_id: str | None, thread_id: str
) -> str | None:
    """The answer faqbot recorded in this run: its answer step is a child of the run, or its
    turn row names the run's question (Chainlit's run's parent is the user's message)."""
    in_run = turns.c.id.in_(select(steps.c.id).where(steps.c.parentId == run_id))
    same_question = turns.c.question_step_id == question_id if question_id else None
    where = in_run if same_question is None else or_(in_run, same_question)
    query = (
        select(turns.c.id)
        .where(where, turns.c.thread_id == thread_id)
        .order_by(turns.c.created_at.desc())
        .limit(1)
    )
    found = await _scalar(conn, query)
    return str(found) if found is not None else None


async def _with_owner(conn: AsyncConnection, for_id: str, thread_id: str) -> Target:
    thread = (
        await conn.execute(select(threads.c.userIdentifier).where(threads.c.id == thread_id))
    ).first()
    turn_owner = await _scalar(conn, select(turns.c.user_identifier).where(turns.c.id == for_id))
    owner = (thread.userIdentifier if thread is not None else None) or turn_owner
    return Target(
        for_id=for_id,
        thread_id=thread_id if thread is not None else None,  # the column is a foreign key
        owner=str(owner) if owner is not None else None,
    )


_UPSERTS: dict[str, Any] = {}


def _upsert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (id) DO UPDATE every column: the same rating replaced."""
    statement = _UPSERTS.get(dialect)
    if statement is None:
        insert = (postgresql if dialect == "postgresql" else sqlite).insert(feedbacks)
        columns = ("forId", "threadId", "value", "comment")
        statement = _UPSERTS[dialect] = insert.on_conflict_do_update(
            index_elements=["id"], set_={c: insert.excluded[c] for c in columns}
        )
    return statement


async def _scalar(conn: AsyncConnection, query: Any) -> Any:
    return (await conn.execute(query)).scalar_one_or_none()
