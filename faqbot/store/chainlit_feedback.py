"""faqbot's feedback rules (faqbot.store.feedback) on Chainlit's own `PUT`/`DELETE /feedback`.

A mixin for the data layer: `class FaqbotDataLayer(FeedbackRules, SQLAlchemyDataLayer)`.
Chainlit 2.12's layer writes whatever the client sent (any `forId`, a comment of any size, the
client's own feedback and thread ids, as many rows as requests); here `upsert_feedback` applies
the rules (a run step is mapped to its answer, one rating per answer per client, ownership,
comment cap) and `delete_feedback` deletes only the caller's own rating. Who asks comes from
`faqbot.store.requester.current_requester`, set by the front door.

A refusal is raised as an HTTPException with its 4xx status. Chainlit's `PUT /feedback` wraps
every exception of the data layer into a 500 (`raise HTTPException(500, str(e)) from e`,
chainlit/server.py `update_feedback`); `pass_refusals_through` registers a handler on Chainlit's
app that answers such a 500 with the status of the HTTPException it wraps. The mixin installs it
when it is built inside a served app (Chainlit's server module is then loaded: `chainlit run`
imports it before the app file). It is looked up, not imported: faqbot never starts Chainlit's
server by itself, and nothing here imports chainlit.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

from fastapi.exception_handlers import http_exception_handler
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from faqbot.logs import get_logger
from faqbot.store import feedback as rules
from faqbot.store.database import Database

log = get_logger("faqbot.store")
_INSTALLED = "faqbot_refusals_pass_through"


class FeedbackLike(Protocol):
    """Chainlit's `Feedback` dataclass (chainlit.types), as far as it is read here."""

    forId: str
    value: Any
    comment: str | None


def pass_refusals_through(app: Starlette) -> None:
    """Answer a 500 that wraps an HTTPException (Chainlit's PUT /feedback) with the wrapped
    exception's own status and detail. Other errors are answered as before. Idempotent; must
    run before the app serves its first request (its exception handlers are read then)."""
    if getattr(app.state, _INSTALLED, False):
        return
    previous = app.exception_handlers.get(HTTPException, http_exception_handler)

    async def handler(request: Request, exc: Exception) -> Response:
        cause = exc.__cause__
        wrapped = isinstance(exc, HTTPException) and exc.status_code == 500
        if wrapped and isinstance(cause, HTTPException) and cause.status_code != 500:
            exc = cause
        response: Response = await previous(request, exc)
        return response

    app.add_exception_handler(HTTPException, handler)
    setattr(app.state, _INSTALLED, True)


def ratings_on_runs(steps: list[dict[str, Any]], client: str) -> list[dict[str, Any]]:
    """Steps once each (Chainlit's read repeats a step per rating it has: this client's is
    kept, else the first), and a run without a rating shows its answer's."""
    kept: dict[str, dict[str, Any]] = {}
    for step in steps:
        seen = kept.get(step["id"])
        rating = step.get("feedback") or {}
        if seen is None or rating.get("id") == rules.rating_id(step["id"], client):
            kept[step["id"]] = step
    for step in kept.values():
        run = kept.get(step.get("parentId") or "")
        answered = step.get("type") == "assistant_message" and step.get("feedback")
        if answered and run is not None and run.get("type") == "run" and not run.get("feedback"):
            run["feedback"] = step["feedback"]
    return list(kept.values())


def _refusal(exc: rules.FeedbackRefused) -> HTTPException:
    return HTTPException(status_code=exc.status, detail=exc.reason)


class FeedbackRules:
    """The data layer's feedback methods under faqbot's rules (see the module docstring)."""

    database: Database

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        server = sys.modules.get("chainlit.server")
        app = getattr(server, "app", None)
        if isinstance(app, Starlette):
            pass_refusals_through(app)

    async def upsert_feedback(self, feedback: FeedbackLike) -> str:
        """Store (or replace) the caller's rating; the stored feedback id is returned (the UI
        keeps it to delete the rating when the same thumb is clicked again)."""
        try:
            rated = await rules.rate(
                self.database, feedback.forId, feedback.value, feedback.comment
            )
        except rules.FeedbackRefused as exc:
            log.info("feedback.refused", status=exc.status, reason=exc.reason)
            raise _refusal(exc) from None
        except SQLAlchemyError as exc:
            log.error("feedback.not_stored", error=type(exc).__name__)
            raise HTTPException(503, "Feedback could not be stored; please try again") from None
        log.info("feedback.stored", answer_id=rated.for_id, value=rated.value, path="chainlit")
        return rated.id

    async def get_thread(self, thread_id: str) -> Any:
        """The thread as Chainlit reads it, with each answer's rating also on its run: the UI
        shows (and changes) the thumbs of the run, so a resumed conversation shows them set."""
        thread = await super().get_thread(thread_id)  # type: ignore[misc]
        if thread:
            thread["steps"] = ratings_on_runs(thread.get("steps") or [], rules.requester().client)
        return thread

    async def delete_feedback(self, feedback_id: str) -> bool:
        """Delete the caller's own rating (404 for any other id)."""
        try:
            await rules.unrate(self.database, feedback_id)
        except rules.FeedbackRefused as exc:
            raise _refusal(exc) from None
        except SQLAlchemyError as exc:
            log.error("feedback.not_deleted", error=type(exc).__name__)
            raise HTTPException(503, "Feedback could not be deleted; please try again") from None
        return True
