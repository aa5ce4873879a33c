"""Feedback through faqbot's Chainlit data layer (what `PUT /feedback` calls), on a real database.

Each chat turn is written as the app writes it: Chainlit's thread, the user's message, the
`on_message` run (whose child is the answer), the answer step and faqbot's turn row. The UI's
thumbs name the run (DESIGN.md section 4), so that is what most calls below send. Issue 20,
findings 3, 5 and 13: one rating per answer per client, owners only with sign-in, known UUIDs
only, capped comments, and ratings counted by the owners' report.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from chainlit.context import init_http_context
from chainlit.types import Feedback
from chainlit.user import User
from sqlalchemy import text
from starlette.exceptions import HTTPException

from faqbot.analytics.report import build_report
from faqbot.privacy.stored import mask_data_layer
from faqbot.store.chainlit_layer import FaqbotDataLayer
from faqbot.store.database import Database
from faqbot.store.feedback import COMMENT_MAX_CHARS, delete_ratings_of
from faqbot.store.requester import Requester, current_requester
from faqbot.store.turns import Store, TurnRecord
from tests.store_support import BACKENDS, Backend, fresh_backend

ENTRY = "sales-annual-discount"
ANON = Requester("ip:203.0.113.7")
OTHER_ANON = Requester("ip:198.51.100.9")
ALICE = Requester("user:alice", "alice")
BOB = Requester("user:bob", "bob")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Backend]:
    yield from fresh_backend(request.param, tmp_path)


@pytest.fixture
async def layer(backend: Backend, make_settings: Any) -> AsyncIterator[FaqbotDataLayer]:
    database = Database.from_settings(make_settings(**backend.values()))
    await database.ensure_schema()
    init_http_context()
    yield FaqbotDataLayer(database)
    await database.dispose()


@dataclass
class ChatTurn:
    thread: str
    question: str
    run: str
    router: str
    answer: str


async def chat_turn(layer: FaqbotDataLayer, owner: str | None = None) -> ChatTurn:
    """One answered chat turn, stored as Chainlit and faqbot store it."""
    turn = ChatTurn(*(str(uuid.uuid4()) for _ in range(5)))
    user_id = None
    if owner is not None:
        user = await layer.create_user(User(identifier=owner))
        assert user is not None
        user_id = user.id
    await layer.update_thread(turn.thread, name="Discounts?", user_id=user_id)
    at = "2026-11-30T10:00:00.000000Z"
    base = {"threadId": turn.thread, "streaming": False, "createdAt": at, "start": at, "end": at}
    steps = [
        {"id": turn.question, "name": "User", "type": "user_message", "output": "Discounts?"},
        {"id": turn.run, "name": "on_message", "type": "run", "parentId": turn.question},
        {"id": turn.router, "name": "Router", "type": "tool", "parentId": turn.run},
        {"id": turn.answer, "name": "FAQ Chatbot", "type": "assistant_message",
         "parentId": turn.run, "output": "Yes, 20%."},
    ]  # fmt: skip
    for step in steps:
        await layer.create_step({**base, **step})
    record = TurnRecord(
        id=turn.answer, thread_id=turn.thread, face="ui", question="Discounts?",
        answer="Yes, 20%.", outcome="answered", category="sales", confidence=0.9,
        entry_ids=(ENTRY,), question_step_id=turn.question, user_identifier=owner,
    )  # fmt: skip
    await Store(layer.database).record_turn(record)
    return turn


async def rows(layer: FaqbotDataLayer) -> list[tuple[Any, ...]]:
    async with layer.database.engine.connect() as conn:
        found = await conn.execute(
            text('SELECT "id", "forId", "threadId", "value", "comment" FROM feedbacks')
        )
        return [tuple(r) for r in found]


async def thumbs(
    layer: FaqbotDataLayer, for_id: str, value: int = 0, comment: str | None = None, **extra: Any
) -> str:
    return await layer.upsert_feedback(
        Feedback(forId=for_id, value=value, comment=comment, **extra)  # type: ignore[arg-type]
    )


async def refused(call: Any) -> int:
    """The HTTP status a refused call raises (Chainlit's route passes it on)."""
    with pytest.raises(HTTPException) as info:
        await call
    assert 400 <= info.value.status_code < 500, info.value
    return info.value.status_code


def as_requester(who: Requester | None) -> Any:
    return _Requester(who)


class _Requester:
    def __init__(self, who: Requester | None) -> None:
        self.who = who

    def __enter__(self) -> None:
        self.token = current_requester.set(self.who)

    def __exit__(self, *exc: object) -> None:
        current_requester.reset(self.token)


async def test_200_thumbs_down_from_one_client_store_one_rating(layer: FaqbotDataLayer) -> None:
    """Finding 5: a burst of 200 thumbs-down (each with a fresh feedback id of the client's
    choosing, and a made-up thread id) is one rating; another client adds one more."""
    turn = await chat_turn(layer)
    with as_requester(ANON):
        ids = await asyncio.gather(*(
            thumbs(layer, turn.run, 0, id=str(uuid.uuid4()), threadId=str(uuid.uuid4()))
            for _ in range(200)
        ))  # fmt: skip
    assert len(set(ids)) == 1
    assert await rows(layer) == [(ids[0], turn.answer, turn.thread, 0, None)]
    with as_requester(OTHER_ANON):
        await thumbs(layer, turn.run, 1)
    with as_requester(ANON):  # the same client changes its mind: replaced, not added
        assert await thumbs(layer, turn.run, 1, comment="fine after all") == ids[0]
    stored = sorted((r[1], r[3], r[4] or "") for r in await rows(layer))
    assert stored == [(turn.answer, 1, ""), (turn.answer, 1, "fine after all")]


async def test_the_uis_thumbs_on_the_run_are_counted_by_the_report(
    layer: FaqbotDataLayer,
) -> None:
    """Finding 13: the UI names the run step; the rating lands on the answer faqbot recorded,
    so the owners' report (and /admin, which renders it) counts it against the entry."""
    turn = await chat_turn(layer)
    with as_requester(ANON):
        await thumbs(layer, turn.run, 0, comment="  not what I asked  ")
    assert [(r[1], r[4]) for r in await rows(layer)] == [(turn.answer, "not what I asked")]
    report = await build_report(layer.database.engine, "30000d")
    assert [(e.entry_id, e.down, e.comments) for e in report.disliked] == [
        (ENTRY, 1, ["not what I asked"])
    ]


@pytest.mark.parametrize(
    "for_id",
    [
        "unknown-uuid",
        "not-a-uuid",
        "' OR 1=1 --",
        "question",
        "router",
        "answer-upper-case",
        "",
    ],
)
async def test_only_a_stored_answer_or_run_can_be_rated(
    layer: FaqbotDataLayer, for_id: str
) -> None:
    """Finding 3: an unknown or malformed forId (or one naming a question or tool step) is
    refused with a 4xx and nothing is stored."""
    turn = await chat_turn(layer)
    named = {
        "unknown-uuid": str(uuid.uuid4()),
        "question": turn.question,
        "router": turn.router,
        "answer-upper-case": turn.answer.upper(),
    }
    with as_requester(ANON):
        assert await refused(thumbs(layer, named.get(for_id, for_id))) == 404
    assert await rows(layer) == []


async def test_comments_are_capped(layer: FaqbotDataLayer) -> None:
    """Finding 3: a comment above the cap (here 1,001 and 15,000 characters: under the front
    door's 16 KiB body cap, so only the data layer stands in the way) is refused, nothing
    stored; one at the cap is kept whole."""
    turn = await chat_turn(layer)
    with as_requester(ANON):
        for size in (COMMENT_MAX_CHARS + 1, 15_000):
            assert await refused(thumbs(layer, turn.run, 0, comment="x" * size)) == 422
        assert await rows(layer) == []
        await thumbs(layer, turn.run, 0, comment="y" * COMMENT_MAX_CHARS)
    assert [len(r[4]) for r in await rows(layer)] == [COMMENT_MAX_CHARS]


async def test_with_sign_in_only_the_owner_rates_an_answer(layer: FaqbotDataLayer) -> None:
    """Finding 5: bob cannot rate alice's answer (nor can an anonymous client), and the
    refusal is the same 404 as for an unknown id; alice can. An anonymous conversation (sign-in
    off, or an API conversation) may be rated by any client holding the id."""
    alices = await chat_turn(layer, owner="alice")
    for who in (BOB, ANON):
        with as_requester(who):
            assert await refused(thumbs(layer, alices.run, 0)) == 404
            assert await refused(thumbs(layer, alices.answer, 0)) == 404
    assert await rows(layer) == []
    with as_requester(ALICE):
        await thumbs(layer, alices.run, 1)
    assert [(r[1], r[3]) for r in await rows(layer)] == [(alices.answer, 1)]
    anonymous = await chat_turn(layer)
    with as_requester(BOB):
        await thumbs(layer, anonymous.answer, 0)
    assert len(await rows(layer)) == 2


async def test_only_your_own_rating_can_be_deleted(layer: FaqbotDataLayer) -> None:
    """DELETE /feedback: another client's feedback id, or any other id, is a 404 and deletes
    nothing; the rater's own id deletes it (the UI's second click on the same thumb)."""
    turn = await chat_turn(layer)
    with as_requester(ANON):
        mine = await thumbs(layer, turn.run, 0)
    with as_requester(OTHER_ANON):
        assert await refused(layer.delete_feedback(mine)) == 404
        assert await refused(layer.delete_feedback("not-a-uuid")) == 404
    with as_requester(ANON):
        assert await refused(layer.delete_feedback(str(uuid.uuid4()))) == 404
        assert len(await rows(layer)) == 1
        assert await layer.delete_feedback(mine) is True
    assert await rows(layer) == []


async def test_without_a_requester_the_other_rules_still_hold(layer: FaqbotDataLayer) -> None:
    """Outside a request (faqbot's own code) the caller is the anonymous client "unknown":
    ownership is not checked, the rest is."""
    turn = await chat_turn(layer, owner="alice")
    first = await thumbs(layer, turn.run, 0)
    assert await thumbs(layer, turn.run, 1) == first
    assert await refused(thumbs(layer, str(uuid.uuid4()))) == 404
    assert await refused(thumbs(layer, turn.run, 0, comment="z" * 5000)) == 422
    assert [(r[1], r[3]) for r in await rows(layer)] == [(turn.answer, 1)]


async def test_mask_pii_still_masks_comments(layer: FaqbotDataLayer) -> None:
    """MASK_PII wraps upsert_feedback (faqbot/privacy/stored.py): the rules run on the masked
    comment."""
    mask_data_layer(layer)
    turn = await chat_turn(layer)
    with as_requester(ANON):
        await thumbs(layer, turn.run, 0, comment="mail jane.doe@example.com")
        await thumbs(layer, turn.run, 0, comment="call +44 20 7946 0958")
    assert [(r[1], r[4]) for r in await rows(layer)] == [(turn.answer, "call [phone]")]


async def test_a_run_without_a_recorded_answer_keeps_the_rating(layer: FaqbotDataLayer) -> None:
    """A run that ended without an answer faqbot recorded (an error, a "too many requests"
    reply) is still a stored step: its rating stays on it, once per client."""
    turn = await chat_turn(layer)
    async with layer.database.engine.begin() as conn:
        await conn.execute(text("DELETE FROM faqbot_turns"))
    with as_requester(ANON):
        await thumbs(layer, turn.run, 0)
        await thumbs(layer, turn.run, 0)
    assert [r[1] for r in await rows(layer)] == [turn.run]


async def test_a_resumed_thread_shows_the_rating_on_its_run(layer: FaqbotDataLayer) -> None:
    """The UI reads the thumbs' state from the run: the thread read back for a resume carries
    the answer's rating (this client's, with its id, to delete it) on the run too, and each
    step once even when several clients rated it."""
    turn = await chat_turn(layer)
    with as_requester(OTHER_ANON):
        await thumbs(layer, turn.run, 1)
    with as_requester(ANON):
        mine = await thumbs(layer, turn.run, 0, comment="no")
        thread = await layer.get_thread(turn.thread)
    assert thread is not None
    ids = [s["id"] for s in thread["steps"]]
    assert sorted(ids) == sorted({turn.question, turn.run, turn.router, turn.answer})
    by_id = {s["id"]: s for s in thread["steps"]}
    for step in (turn.run, turn.answer):
        rating = by_id[step]["feedback"]
        assert rating is not None
        assert (rating["id"], rating["value"], rating["comment"]) == (mine, 0, "no")


async def test_a_users_ratings_can_all_be_found_and_deleted(layer: FaqbotDataLayer) -> None:
    """For `delete-user`: a user's ratings outside their own threads (an anonymous or API
    conversation) carry no user column; `delete_ratings_of` finds them by their ids."""
    own, anonymous = await chat_turn(layer, owner="alice"), await chat_turn(layer)
    with as_requester(ALICE):
        await thumbs(layer, own.run, 0, comment="mine")
        await thumbs(layer, anonymous.answer, 0, comment="theirs")
    with as_requester(BOB):
        await thumbs(layer, anonymous.answer, 1)
    assert await delete_ratings_of(layer.database, ALICE.client) == 2
    assert [(r[1], r[3]) for r in await rows(layer)] == [(anonymous.answer, 1)]
