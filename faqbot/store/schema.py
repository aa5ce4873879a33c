"""The tables, as SQLAlchemy Core metadata: Chainlit's five plus faqbot's own.

Chainlit's SQLAlchemy data layer ships no DDL and writes whatever keys its step/element/feedback
dicts carry (`INSERT INTO steps ("id", "name", ..., "defaultOpen", "autoCollapse", "modes")`),
so a missing column breaks every write of that kind (and the layer only logs a warning). The
columns below are every key Chainlit 2.12 writes (`StepDict`, `ElementDict`, `Feedback`, users,
threads); `tests/test_store_schema.py` runs each of the layer's operations on a fresh database and
fails on any column it writes that is not here.

Portable on purpose: ids and JSON documents are TEXT on both SQLite and PostgreSQL (Chainlit
passes ids as strings and JSON as `json.dumps` text, and its favourites query does
`metadata LIKE ...`, which a JSONB column would refuse); timestamps are ISO-8601 UTC text
(`2026-11-30T01:02:03.456789Z`), so they sort and `substr(x, 1, 10)` is the day on both.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
)

SCHEMA_VERSION = 1
metadata = MetaData()


def _thread_fk() -> ForeignKey:
    return ForeignKey("threads.id", ondelete="CASCADE")


users = Table(
    "users",
    metadata,
    Column("id", Text, primary_key=True),
    Column("identifier", Text, nullable=False, unique=True),
    Column("metadata", Text, nullable=False),
    Column("createdAt", Text),
)

threads = Table(
    "threads",
    metadata,
    Column("id", Text, primary_key=True),
    Column("createdAt", Text),
    Column("name", Text),
    Column("userId", Text, ForeignKey("users.id", ondelete="CASCADE")),
    Column("userIdentifier", Text),
    Column("tags", Text),  # a JSON list
    Column("metadata", Text),  # JSON; faqbot adds {"face": "ui"|"widget"|"api"}
    Index("threads_user", "userId"),
)

steps = Table(
    "steps",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("threadId", Text, _thread_fk(), nullable=False),
    Column("parentId", Text),
    Column("streaming", Boolean, nullable=False),
    Column("waitForAnswer", Boolean),
    Column("isError", Boolean),
    Column("metadata", Text),  # JSON; see faqbot.store (the "faqbot" key)
    Column("tags", Text),
    Column("input", Text),
    Column("output", Text),
    Column("createdAt", Text),
    Column("command", Text),
    Column("start", Text),
    Column("end", Text),
    Column("generation", Text),
    Column("showInput", Text),
    Column("language", Text),
    Column("indent", Integer),
    Column("defaultOpen", Boolean),
    Column("autoCollapse", Boolean),
    Column("modes", Text),
    Column("icon", Text),
    Index("steps_thread", "threadId"),
)

elements = Table(
    "elements",
    metadata,
    Column("id", Text, primary_key=True),
    Column("threadId", Text, _thread_fk()),
    Column("type", Text),
    Column("url", Text),
    Column("chainlitKey", Text),
    Column("name", Text, nullable=False),
    Column("display", Text),
    Column("objectKey", Text),
    Column("size", Text),
    Column("page", Integer),
    Column("language", Text),
    Column("forId", Text),
    Column("mime", Text),
    # Chainlit's get_element json.loads(props) even when no props were written: default "{}"
    Column("props", Text, server_default="{}"),
    Column("autoPlay", Boolean),
    Column("playerConfig", Text),
)

feedbacks = Table(
    "feedbacks",
    metadata,
    Column("id", Text, primary_key=True),
    Column("forId", Text, nullable=False),  # the answer step (= faqbot_turns.id)
    Column("threadId", Text, _thread_fk()),
    Column("value", Integer, nullable=False),  # 1 thumbs up, 0 thumbs down (Chainlit's scale)
    Column("comment", Text),
    Index("feedbacks_for", "forId"),
)

# faqbot's own: one row per finished turn, from every face, flat for analytics.
turns = Table(
    "faqbot_turns",
    metadata,
    Column("id", Text, primary_key=True),  # = the answer step's id (feedbacks.forId)
    Column("thread_id", Text, nullable=False),  # threads.id (no FK: a turn row never waits)
    Column("question_step_id", Text),
    Column("created_at", Text, nullable=False),
    Column("face", Text, nullable=False),  # ui | widget | api
    Column("user_identifier", Text),
    Column("question", Text, nullable=False),
    Column("standalone_question", Text),
    Column("answer", Text),
    Column("category", Text),
    Column("confidence", Float),
    Column("routed_by", Text),  # llm | retrieval | cache
    Column("outcome", Text, nullable=False),  # answered | suggested | refused
    Column("fallback", Boolean, nullable=False),
    Column("fallback_reason", Text),
    Column("mode", Text),  # llm | offline
    Column("cached", Boolean),
    Column("entry_ids", Text),  # JSON list of source entry ids, best first
    Column("suggestion_ids", Text),  # JSON list ("Did you mean" entries)
    Column("faq_version", Text),
    Column("latency_ms", Integer),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("cost_usd", Float),
    Index("faqbot_turns_created", "created_at"),
    Index("faqbot_turns_thread", "thread_id"),
)

# What owners taught the bot (issue 22; faqbot/store/learned.py): phrasings attached to entries
# and questions marked out of scope. Removing one keeps its row (removed_at set) and frees its
# question_key: the unique index holds one live decision per normalised question.
learned = Table(
    "faqbot_learned",
    metadata,
    Column("id", Text, primary_key=True),
    Column("kind", Text, nullable=False),  # phrasing | out_of_scope
    Column("entry_id", Text, nullable=False),  # "" for out_of_scope
    Column("text", Text, nullable=False),
    Column("question_key", Text),  # the normalised question while live; NULL once removed
    Column("created_by", Text),
    Column("created_at", Text, nullable=False),
    Column("removed_by", Text),
    Column("removed_at", Text),
    Index("faqbot_learned_live", "question_key", unique=True),
)

# Evidence for a phrasing: a visitor who asked `question` chose `entry_id` under "Did you mean".
learn_evidence = Table(
    "faqbot_learn_evidence",
    metadata,
    Column("id", Text, primary_key=True),
    Column("created_at", Text, nullable=False),
    Column("kind", Text, nullable=False),  # chosen
    Column("question", Text, nullable=False),
    Column("entry_id", Text, nullable=False),
    Column("thread_id", Text),
    Index("faqbot_learn_evidence_created", "created_at"),
)

meta = Table(
    "faqbot_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text),
)
