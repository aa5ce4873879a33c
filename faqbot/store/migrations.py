"""Data migrations run at start, after the schema is upgraded: idempotent, cheap when done.

- Ratings given in the chat UI before issue 20 were stored against Chainlit's `on_message` run
  step (where the UI puts its thumbs), which the owners' report never joined, so they never
  counted. `remap_run_ratings` moves each to the answer faqbot recorded in that run, as new
  ratings are stored (faqbot.store.feedback); a run with no recorded answer keeps its rating.
"""

from __future__ import annotations

from sqlalchemy import Connection, Select, and_, func, or_, select, update

from faqbot.store.schema import feedbacks, steps, turns


def remap_run_ratings(conn: Connection) -> int:
    """Point ratings of run steps at the run's answer; the number of ratings moved."""
    run = steps.alias("run")
    child = steps.alias("child")
    answer = (
        select(turns.c.id)
        .select_from(run)
        .where(
            run.c.id == feedbacks.c.forId,
            turns.c.thread_id == run.c.threadId,
            or_(
                turns.c.id.in_(select(child.c.id).where(child.c.parentId == run.c.id)),
                and_(run.c.parentId.is_not(None), turns.c.question_step_id == run.c.parentId),
            ),
        )
        .order_by(turns.c.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    runs = select(steps.c.id).where(steps.c.type == "run")
    statement = (
        update(feedbacks)
        .where(feedbacks.c.forId.in_(runs))
        .values(forId=func.coalesce(answer, feedbacks.c.forId))
    )
    before = _rated_runs(conn, runs)
    conn.execute(statement)
    return before - _rated_runs(conn, runs)


def _rated_runs(conn: Connection, runs: Select[tuple[str]]) -> int:
    query = select(func.count()).select_from(feedbacks).where(feedbacks.c.forId.in_(runs))
    return int(conn.execute(query).scalar_one())
