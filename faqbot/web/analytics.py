"""GET /api/analytics (JSON) and the /admin page, behind the admin gate (admin_access.py).

Both show the same report (faqbot.analytics) for `?since=7d` (h, d or w; default 7d). The
unanswered questions are grouped with the serving bot's embedder when it has one (the bundled
model), else by word overlap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Query
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from faqbot.analytics.report import LOW_CONFIDENCE, Report, build_report, parse_since
from faqbot.answering.bot import FaqBot
from faqbot.config import Settings
from faqbot.errors import ConfigError
from faqbot.logs import get_logger
from faqbot.retrieval.embedders import Embedder
from faqbot.web.admin_access import AccessDenied, AdminGate, SignIn
from faqbot.web.admin_page import admin_page
from faqbot.web.errors import error_response
from faqbot.web.schemas import ErrorResponse

log = get_logger("faqbot.web.analytics")
NO_STORE = {"Cache-Control": "no-store"}


class AnalyticsUnavailable(Exception):
    """The database could not be read."""


class AdminSite:
    """The gate, the database and the bot's embedder, shared by the API route and the page."""

    def __init__(
        self,
        settings: Settings,
        get_bot: Callable[[], FaqBot | None],
        engine: Callable[[], AsyncEngine],
        sign_in: SignIn | None = None,
    ) -> None:
        self.settings = settings
        self.gate = AdminGate(settings, sign_in)
        self._get_bot = get_bot
        self._engine_factory = engine
        self._engine: AsyncEngine | None = None

    def bot(self) -> FaqBot | None:
        """The serving bot (None while no valid FAQ is loaded)."""
        return self._get_bot()

    def engine(self) -> AsyncEngine:
        """The database, opened on first use."""
        if self._engine is None:
            self._engine = self._engine_factory()
        return self._engine

    def embedder(self) -> Embedder | None:
        bot = self._get_bot()
        semantic = bot.semantic if bot is not None else None
        return semantic.embedder if semantic is not None else None

    async def report(self, period: str, low_confidence: float) -> Report:
        try:
            return await build_report(
                self.engine(), period, low_confidence=low_confidence, embedder=self.embedder()
            )
        except SQLAlchemyError as exc:
            log.warning("analytics.database_error", error=f"{type(exc).__name__}"[:200])
            raise AnalyticsUnavailable from exc

    async def page(self, request: Request) -> Response:
        """GET /admin."""
        try:
            await self.gate.check(request)
        except AccessDenied as exc:
            return denied_page(exc)
        period = request.query_params.get("since", "7d")
        try:
            parse_since(period)
            report = await self.report(period, LOW_CONFIDENCE)
        except ConfigError as exc:
            return HTMLResponse(message_page("Invalid period", str(exc)), 422, headers=NO_STORE)
        except AnalyticsUnavailable:
            text = "The conversation database could not be read; see the server log."
            return HTMLResponse(message_page("Analytics unavailable", text), 503, headers=NO_STORE)
        html = admin_page(report, app_name=self.settings.app_name, path=request.url.path)
        return HTMLResponse(html, headers=NO_STORE)

    def page_route(self, path: str = "/admin") -> Route:
        return Route(path, self.page, methods=["GET"])


def message_page(title: str, text: str) -> str:
    """A one-paragraph HTML page (errors of the admin pages), every text escaped."""
    from html import escape

    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title></head><body><h1>{escape(title)}</h1><p>{escape(text)}</p></body></html>"
    )


def denied_page(exc: AccessDenied) -> Response:
    """The admin gate's refusal as a page (401 asks for a Bearer token), never cached."""
    headers = dict(NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    title = {401: "Sign-in required", 403: "Forbidden", 404: "Not Found"}[exc.status]
    return HTMLResponse(message_page(title, exc.message), exc.status, headers=headers)


def register_analytics(api: FastAPI, site: AdminSite) -> None:
    """GET /analytics."""
    denied: dict[int | str, dict[str, Any]] = {
        s: {"model": ErrorResponse, "description": d}
        for s, d in (
            (401, "Not signed in as an admin, and no valid admin token"),
            (403, "Signed in, but not an admin"),
            (404, "Analytics are off (no sign-in and ANALYTICS_ENABLED is false)"),
            (422, "Invalid `since` or `low_confidence`"),
            (503, "The conversation database could not be read"),
        )
    }

    @api.get("/analytics", tags=["analytics"], responses=denied, include_in_schema=True)
    async def analytics(
        request: Request,
        since: Annotated[
            str, Query(description="Period: a number and h, d or w", max_length=8)
        ] = "7d",
        low_confidence: Annotated[float, Query(ge=0, le=1)] = LOW_CONFIDENCE,
    ) -> Response:
        """The FAQ owners' report: questions and outcomes per day and category, the unanswered
        questions grouped by similarity, the most disliked entries, latency, tokens, cost."""
        try:
            await site.gate.check(request)
        except AccessDenied as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
            return error_response(exc.status, exc.message, f"HTTP_{exc.status}", **headers)
        try:
            parse_since(since)
            report = await site.report(since, low_confidence)
        except ConfigError as exc:
            return error_response(422, "Invalid request", "VALIDATION_ERROR", str(exc))
        except AnalyticsUnavailable:
            return error_response(
                503, "Analytics unavailable", "DATABASE_UNAVAILABLE",
                "The conversation database could not be read.",
            )  # fmt: skip
        return JSONResponse(report.to_dict(), headers=NO_STORE)
