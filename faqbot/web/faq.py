"""GET /faq/{entry_id}: one FAQ entry as JSON, or as a small HTML page for browsers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Path, Request, Response
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from faqbot.domain import FaqEntry, KnowledgeBase
from faqbot.knowledge.ids import ENTRY_ID_PATTERN
from faqbot.web.context import ApiContext
from faqbot.web.pages import entry_page, wants_html
from faqbot.web.schemas import ERRORS, ErrorResponse, FaqEntryOut

ENTRY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The entry: JSON, or a small HTML page for `Accept: text/html`",
        "content": {"text/html": {"schema": {"type": "string"}}},
    },
    404: {"model": ErrorResponse, "description": "Unknown entry"},
    422: ERRORS[422],
    503: ERRORS[503],
}


def entry_or_404(kb: KnowledgeBase, entry_id: str) -> FaqEntry:
    try:
        return kb.entry(entry_id)
    except KeyError:
        raise StarletteHTTPException(404, "FAQ entry not found") from None


def entry_out(e: FaqEntry) -> FaqEntryOut:
    return FaqEntryOut(
        id=e.id,
        category=e.category,
        question=e.question,
        answer=e.answer,
        alternate_questions=list(e.alternate_questions),
        keywords=list(e.keywords),
    )


def register_faq(api: FastAPI, ctx: ApiContext) -> None:
    """GET /faq/{entry_id}."""

    @api.get("/faq/{entry_id}", response_model=FaqEntryOut, tags=["faq"], responses=ENTRY_RESPONSES)
    async def faq_entry(
        entry_id: Annotated[str, Path(pattern=ENTRY_ID_PATTERN, max_length=120)],
        request: Request,
        response: Response,
    ) -> FaqEntryOut | HTMLResponse:
        """One FAQ entry (answers link their sources here); browsers get an HTML page."""
        e = entry_or_404(ctx.bot_or_503().kb, entry_id)
        if wants_html(request.headers.get("accept", "")):
            back = request.scope.get("app_root_path", "") + "/"
            page = entry_page(e, app_name=ctx.settings.app_name, back=back)
            return HTMLResponse(page, headers={"Vary": "Accept"})
        response.headers["Vary"] = "Accept"
        return entry_out(e)
