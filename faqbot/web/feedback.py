"""POST /feedback: thumbs up or down, with an optional comment, for one stored answer.

For API clients (the chat UI and the widget use Chainlit's own thumbs, `PUT /feedback`, stored
in the same table under the same rules: faqbot.store.feedback). The answer id is the capability:
it is random and handed only to whoever got the answer (the `answer_id` of an API response, the
message id in the chat). The feedback is stored against the answer, so its entry ids, confidence
and FAQ version come with it (faqbot.store documents the join). One rating per answer per
client: a second one from the same client (here or through the chat's thumbs) replaces the
first; an answer in a signed-in user's conversation is rated only by that user. Counted toward
the client's rate limit like every POST. With MASK_PII the store masks the comment.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from faqbot.logs import get_logger
from faqbot.store.feedback import FeedbackRefused
from faqbot.store.requester import Requester, current_requester
from faqbot.web.context import ApiContext
from faqbot.web.limits import client_key
from faqbot.web.schemas import ERRORS, ErrorResponse, FeedbackRequest, FeedbackResponse

log = get_logger("faqbot.web")
FEEDBACK_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorResponse, "description": "No stored answer of yours has this id"},
    503: {"model": ErrorResponse, "description": "Persistence is off (PERSISTENCE=false)"},
}


def register_feedback(api: FastAPI, ctx: ApiContext) -> None:
    """POST /feedback."""

    @api.post(
        "/feedback", response_model=FeedbackResponse, tags=["feedback"],
        responses=FEEDBACK_RESPONSES,
    )  # fmt: skip
    async def feedback(body: FeedbackRequest, request: Request) -> FeedbackResponse:
        """Rate an answer: `value` 1 (helpful) or -1 (not helpful), optional `comment`. A second
        rating of the same answer by the same client replaces the first."""
        if ctx.store is None:
            raise StarletteHTTPException(503, "Feedback is not stored: persistence is off")
        who = current_requester.get() or Requester(client_key(request.scope))
        try:
            stored = await ctx.store.add_feedback(body.answer_id, body.value, body.comment, who)
        except FeedbackRefused as exc:
            raise StarletteHTTPException(exc.status, exc.reason) from None
        except SQLAlchemyError as exc:
            log.error("feedback.not_stored", error=type(exc).__name__)
            raise StarletteHTTPException(503, "Feedback could not be stored; try again") from None
        log.info("feedback.stored", answer_id=stored.turn_id, value=body.value, path="api")
        return FeedbackResponse(feedback_id=stored.id, answer_id=stored.turn_id, value=body.value)
