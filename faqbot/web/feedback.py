"""POST /feedback: thumbs up or down, with an optional comment, for one stored answer.

For API clients and the widget (the chat UI has Chainlit's own thumbs, stored in the same table).
The answer id is the capability: it is random and handed only to whoever got the answer (the
`answer_id` of an API response, the message id in the chat). The feedback is stored against the
answer, so its entry ids, confidence and FAQ version come with it (faqbot.store documents the
join). Counted toward the client's rate limit like every POST.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException

from faqbot.logs import get_logger
from faqbot.web.context import ApiContext
from faqbot.web.schemas import ERRORS, ErrorResponse, FeedbackRequest, FeedbackResponse

log = get_logger("faqbot.web")
FEEDBACK_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorResponse, "description": "Unknown answer id"},
    503: {"model": ErrorResponse, "description": "Persistence is off (PERSISTENCE=false)"},
}


def register_feedback(api: FastAPI, ctx: ApiContext) -> None:
    """POST /feedback."""

    @api.post(
        "/feedback", response_model=FeedbackResponse, tags=["feedback"],
        responses=FEEDBACK_RESPONSES,
    )  # fmt: skip
    async def feedback(body: FeedbackRequest) -> FeedbackResponse:
        """Rate an answer: `value` 1 (helpful) or -1 (not helpful), optional `comment`. A second
        rating of the same answer replaces the first."""
        if ctx.store is None:
            raise StarletteHTTPException(503, "Feedback is not stored: persistence is off")
        comment = (body.comment or "").strip() or None
        stored = await ctx.store.add_feedback(body.answer_id, body.value, comment)
        if stored is None:
            raise StarletteHTTPException(404, "No stored answer has this id")
        log.info("feedback.stored", answer_id=stored.turn_id, value=body.value)
        return FeedbackResponse(feedback_id=stored.id, answer_id=stored.turn_id, value=body.value)
