"""The tables the reports and the privacy tools read and delete from, as SQLAlchemy Core.

Chainlit's five tables (users, threads, steps, elements, feedbacks) and faqbot's flat
`faqbot_turns` (one row per finished turn, from every face; see faqbot/store/). Only the columns
used here are named. Timestamps are ISO-8601 UTC text (`2026-11-30T01:02:03.456789Z`) on both
SQLite and PostgreSQL, so they compare as text and `substr(x, 1, 10)` is the day.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, Integer, column, table

users = table("users", column("id"), column("identifier"))
threads = table(
    "threads", column("id"), column("createdAt"), column("userId"), column("userIdentifier")
)
steps = table("steps", column("id"), column("threadId"), column("createdAt"))
elements = table("elements", column("id"), column("threadId"), column("forId"))
feedbacks = table(
    "feedbacks",
    column("id"),
    column("forId"),
    column("threadId"),
    column("value", Integer),
    column("comment"),
)
turns = table(
    "faqbot_turns",
    column("id"),
    column("thread_id"),
    column("created_at"),
    column("user_identifier"),
    column("question"),
    column("standalone_question"),
    column("category"),
    column("confidence", Float),
    column("routed_by"),
    column("outcome"),
    column("fallback", Boolean),
    column("entry_ids"),
    column("latency_ms", Float),
    column("prompt_tokens", Integer),
    column("completion_tokens", Integer),
    column("cost_usd", Float),
)
