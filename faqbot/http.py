"""The JSON/SSE API: the same FaqBot as the chat UI, mounted at /api on Chainlit's server.

Routes (all under /api): GET /health, POST /chat, POST /chat/stream (server-sent events),
GET /faq/{entry_id}, GET /metrics. Errors always use the ErrorResponse shape.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

import structlog
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from faqbot.bot import FaqBot
from faqbot.config import Settings
from faqbot.contact import support_contact
from faqbot.conversations import ConversationStore
from faqbot.domain import FaqEntry, KnowledgeBase
from faqbot.errors import FaqBotError, InputError, LLMError, RateLimitedError
from faqbot.events import (
    Done,
    Fallback,
    Outcome,
    RouteDecided,
    Source,
    Sources,
    Suggestions,
    Token,
    TurnResult,
)
from faqbot.knowledge.ids import ENTRY_ID_PATTERN
from faqbot.logs import get_logger
from faqbot.metrics import exposition
from faqbot.pages import entry_page, wants_html
from faqbot.ratelimit import RateLimiter
from faqbot.validation import clean_question

log = get_logger("faqbot.http")
BotGetter = Callable[[], FaqBot | None]


# A question must contain at least one visible character: blanks, control, zero-width and bidi
# characters alone are rejected (faqbot.validation strips them). Same meaning in Python's `re`,
# pydantic's Rust regex and ECMA-262, checked over every code point in tests/test_api.py.
VISIBLE_CHAR = r"[^\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
MAX_QUESTION_CHARS = 1000  # the API's hard cap; the MAX_QUESTION_CHARS setting may only lower it


class ChatRequest(BaseModel):
    question: str = Field(
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        pattern=VISIBLE_CHAR,
        description="The user's question (at least one visible character)",
    )
    conversation_id: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Continue a conversation (follow-ups); omit to start a new one",
    )


class SourceOut(BaseModel):
    id: str
    category: str
    question: str
    score: float
    url: str


class ChatResponse(BaseModel):
    answer: str
    category: str | None
    confidence: float = Field(ge=0, le=1)
    conversation_id: str
    processing_time: float
    sources: list[SourceOut]
    fallback: bool
    refused: bool = Field(description="Same as outcome == 'refused' (kept for compatibility)")
    outcome: Outcome = Field(
        description="answered: `answer` answers the question; suggested: retrieval was unsure, "
        "`suggestions` lists the entries the user may have meant (fetch one at its `url`); "
        "refused: the FAQ does not cover the question"
    )
    suggestions: list[SourceOut] = Field(
        default_factory=list, description="With outcome 'suggested': 2-3 entries, best first"
    )
    support_contact: str | None = Field(
        default=None, description="With outcome 'refused': who to ask instead (if configured)"
    )
    mode: Literal["llm", "offline"]


class ErrorResponse(BaseModel):
    error: str
    detail: str | None = None
    error_code: str


class CategoryOut(BaseModel):
    name: str
    entries: int


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    mode: Literal["llm", "offline"]
    model: str | None
    knowledge_version: str
    categories: list[CategoryOut]
    circuit_breaker: dict[str, Any]
    cache: dict[str, int]
    llm: dict[str, Any] | None = None
    retrieval: dict[str, Any] = Field(
        default_factory=dict,
        description="ranking now serving (hybrid | lexical) and the embedder's state/progress",
    )
    rate_limit: dict[str, Any] = Field(
        default_factory=dict,
        description="backend (memory | redis), whether the shared store counts now, and why not",
    )
    uptime_s: float
    timestamp: str


class FaqEntryOut(BaseModel):
    id: str
    category: str
    question: str
    answer: str
    alternate_questions: list[str]
    keywords: list[str]


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed request body"},
    422: {"model": ErrorResponse, "description": "Invalid request"},
    429: {"model": ErrorResponse, "description": "Rate limited; see Retry-After"},
    500: {"model": ErrorResponse, "description": "Internal error (no details leaked)"},
    503: {"model": ErrorResponse, "description": "No knowledge base can answer right now"},
}


def _error(status: int, error: str, code: str, detail: str | None = None, **headers: str) -> Any:
    body = ErrorResponse(error=error, detail=detail, error_code=code).model_dump()
    return JSONResponse(body, status_code=status, headers=headers or None)


class Unavailable(Exception):
    """No bot is loaded (the knowledge base failed to load)."""


def _source(source: Source, prefix: str) -> SourceOut:
    return SourceOut(
        id=source.id,
        category=source.category,
        question=source.question,
        score=source.score,
        url=f"{prefix}/faq/{source.id}",
    )


def _response(
    result: TurnResult, conversation_id: str, prefix: str, contact: str | None = None
) -> ChatResponse:
    return ChatResponse(
        answer=result.answer,
        category=result.category,
        confidence=max(0.0, min(1.0, result.confidence)),
        conversation_id=conversation_id,
        processing_time=round(result.elapsed_s, 4),
        sources=[_source(s, prefix) for s in result.sources],
        fallback=result.fallback,
        refused=result.refused,
        outcome=result.outcome,
        suggestions=[_source(s, prefix) for s in result.suggestions],
        support_contact=contact if result.outcome == "refused" else None,
        mode=result.mode,
    )


def _entry_or_404(kb: KnowledgeBase, entry_id: str) -> FaqEntry:
    try:
        return kb.entry(entry_id)
    except KeyError:
        raise StarletteHTTPException(404, "FAQ entry not found") from None


def _entry_out(e: FaqEntry) -> FaqEntryOut:
    return FaqEntryOut(
        id=e.id,
        category=e.category,
        question=e.question,
        answer=e.answer,
        alternate_questions=list(e.alternate_questions),
        keywords=list(e.keywords),
    )


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class PrefixDispatcher:
    """ASGI middleware: requests whose path is `prefix` or under it go to `api`, all others to
    `app`. Put in front of Chainlit's app, it keeps /api away from Chainlit's routes (the SPA
    catch-all), from its CORS middleware (the API applies its own CORS policy) and from its gzip
    (server-sent events stream unbuffered). Like Starlette's Mount it extends `root_path`, so the
    API sees paths relative to `prefix` and serves its docs and schema at `prefix/...`.
    """

    def __init__(self, app: ASGIApp, *, api: ASGIApp, prefix: str = "/api") -> None:
        self.app = app
        self.api = api
        self.prefix = prefix.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            root = scope.get("root_path", "")
            path: str = scope["path"]
            relative = path[len(root) :] if root and path.startswith(root) else path
            if relative == self.prefix or relative.startswith(self.prefix + "/"):
                child = {
                    **scope,
                    "app_root_path": scope.get("app_root_path", root),
                    "root_path": root + self.prefix,
                }
                await self.api(child, receive, send)
                return
        await self.app(scope, receive, send)


def create_api(
    get_bot: BotGetter,
    limiter: RateLimiter,
    settings: Settings,
    conversations: ConversationStore,
    *,
    prefix: str = "/api",
) -> FastAPI:
    """Build the API application (mount it at `prefix`)."""
    started = time.monotonic()
    api = FastAPI(
        title=f"{settings.app_name} API",
        version=settings.app_version,
        description="Ask the FAQ bot over HTTP: JSON answers or a server-sent event stream.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        servers=[{"url": prefix}],
    )
    default_openapi = api.openapi

    def openapi() -> dict[str, Any]:
        """The generated schema, with the question length cap MAX_QUESTION_CHARS sets."""
        schema = default_openapi()
        question = schema["components"]["schemas"]["ChatRequest"]["properties"]["question"]
        question["maxLength"] = min(MAX_QUESTION_CHARS, settings.max_question_chars)
        return schema

    api.openapi = openapi  # type: ignore[method-assign]
    api.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization"],
        expose_headers=["Retry-After"],
        max_age=600,
    )

    def contact_for(bot: FaqBot, result: TurnResult) -> str | None:
        return support_contact(bot.kb, settings.support_contact, result.category)

    def bot_or_503() -> FaqBot:
        bot = get_bot()
        if bot is None:
            raise Unavailable
        return bot

    async def admit(request: Request, question: str) -> str:
        client = request.client.host if request.client else "unknown"
        await limiter.check(f"ip:{client}")
        return clean_question(question, settings.max_question_chars)

    @api.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> Any:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
        return _error(422, "Invalid request", "VALIDATION_ERROR", "; ".join(parts)[:500])

    @api.exception_handler(InputError)
    async def on_input(request: Request, exc: InputError) -> Any:
        return _error(422, "Invalid question", exc.code, exc.user_message)

    @api.exception_handler(RateLimitedError)
    async def on_rate(request: Request, exc: RateLimitedError) -> Any:
        return _error(
            429,
            "Too many requests",
            exc.code,
            exc.user_message,
            **{"Retry-After": str(exc.retry_after)},
        )

    @api.exception_handler(Unavailable)
    async def on_unavailable(request: Request, exc: Unavailable) -> Any:
        return _error(503, "Service unavailable", "NO_KNOWLEDGE_BASE", "No FAQ is loaded.")

    @api.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Any:
        response = _error(exc.status_code, str(exc.detail), f"HTTP_{exc.status_code}")
        response.headers.update(exc.headers or {})  # e.g. Allow on 405
        return response

    @api.exception_handler(Exception)
    async def on_error(request: Request, exc: Exception) -> Any:
        log.exception("api.unexpected_error", path=request.url.path)
        return _error(
            500, "Internal server error", "INTERNAL_ERROR", "An unexpected error occurred."
        )

    @api.get(
        "/health",
        response_model=HealthResponse,
        tags=["health"],
        responses={422: ERRORS[422], 503: ERRORS[503]},
    )
    async def health(
        deep: Annotated[bool, Query(description="Also check the LLM endpoint")] = False,
    ) -> HealthResponse:
        """Liveness plus what is serving: mode, knowledge version, circuit breaker, cache."""
        bot = bot_or_503()
        status: Literal["ok", "degraded"] = "ok"
        llm: dict[str, Any] | None = None
        retrieval = bot.retrieval_status()
        rate_limit = await limiter.status()
        if bot.breaker.state != "closed" or retrieval.get("degraded") or "degraded" in rate_limit:
            status = "degraded"
        if deep and bot.model is not None:
            t0 = time.perf_counter()
            try:
                await asyncio.wait_for(bot.model.ping(3.0), 4.0)
                llm = {"reachable": True, "latency_ms": round((time.perf_counter() - t0) * 1000, 1)}
            except (LLMError, TimeoutError) as exc:
                status = "degraded"
                code = exc.code if isinstance(exc, LLMError) else "LLM_TIMEOUT"
                llm = {"reachable": False, "error_code": code}
        return HealthResponse(
            status=status,
            version=settings.app_version,
            mode=bot.mode,
            model=bot.model_name,
            knowledge_version=bot.kb.version,
            categories=[CategoryOut(name=n, entries=c) for n, c in bot.kb.counts().items()],
            circuit_breaker=bot.breaker.snapshot(),
            cache=bot.cache.stats(),
            llm=llm,
            retrieval=retrieval,
            rate_limit=rate_limit,
            uptime_s=round(time.monotonic() - started, 1),
            timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )

    @api.post("/chat", response_model=ChatResponse, tags=["chat"], responses=ERRORS)
    async def chat(body: ChatRequest, request: Request) -> ChatResponse:
        """Answer one question; pass `conversation_id` back for follow-ups."""
        bot = bot_or_503()
        question = await admit(request, body.question)
        conversation_id = body.conversation_id or conversations.new_id()
        history = conversations.history(conversation_id)
        result: TurnResult | None = None
        with structlog.contextvars.bound_contextvars(conversation_id=conversation_id, face="api"):
            async for event in bot.answer(question, history):
                if isinstance(event, Done):
                    result = event.result
        assert result is not None
        conversations.record(conversation_id, result.question, result.answer)
        return _response(result, conversation_id, prefix, contact_for(bot, result))

    @api.post(
        "/chat/stream",
        tags=["chat"],
        responses={
            **ERRORS,
            200: {
                "description": "Server-sent events: route, [fallback], token*, sources, "
                "[suggestions], done | error",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
        },
        response_class=StreamingResponse,
    )
    async def chat_stream(body: ChatRequest, request: Request) -> StreamingResponse:
        """The same answer as a stream of server-sent events."""
        bot = bot_or_503()
        question = await admit(request, body.question)
        conversation_id = body.conversation_id or conversations.new_id()
        history = conversations.history(conversation_id)

        async def events() -> AsyncIterator[str]:
            structlog.contextvars.bind_contextvars(conversation_id=conversation_id, face="sse")
            try:
                async for event in bot.answer(question, history):
                    if isinstance(event, RouteDecided):
                        yield _sse(
                            "route",
                            {
                                "category": event.category,
                                "confidence": event.confidence,
                                "standalone_question": event.standalone_question,
                                "via": event.via,
                                "conversation_id": conversation_id,
                            },
                        )
                    elif isinstance(event, Fallback):
                        yield _sse("fallback", {"reason": event.reason, "message": event.message})
                    elif isinstance(event, Token):
                        yield _sse("token", {"text": event.text})
                    elif isinstance(event, Sources):
                        sources = [_source(s, prefix).model_dump() for s in event.sources]
                        yield _sse("sources", {"sources": sources})
                    elif isinstance(event, Suggestions):
                        offered = [_source(s, prefix).model_dump() for s in event.sources]
                        yield _sse("suggestions", {"suggestions": offered})
                    elif isinstance(event, Done):
                        result = event.result
                        conversations.record(conversation_id, result.question, result.answer)
                        contact = contact_for(bot, result)
                        done = _response(result, conversation_id, prefix, contact)
                        yield _sse("done", done.model_dump())
            except FaqBotError as exc:
                yield _sse("error", {"error": exc.user_message, "error_code": exc.code})
            except Exception:
                log.exception("api.stream_error")
                yield _sse(
                    "error", {"error": "Internal server error", "error_code": "INTERNAL_ERROR"}
                )

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @api.get(
        "/faq/{entry_id}",
        response_model=FaqEntryOut,
        tags=["faq"],
        responses={
            200: {
                "description": "The entry: JSON, or a small HTML page for `Accept: text/html`",
                "content": {"text/html": {"schema": {"type": "string"}}},
            },
            404: {"model": ErrorResponse, "description": "Unknown entry"},
            422: ERRORS[422],
            503: ERRORS[503],
        },
    )
    async def faq_entry(
        entry_id: Annotated[str, Path(pattern=ENTRY_ID_PATTERN, max_length=120)],
        request: Request,
        response: Response,
    ) -> FaqEntryOut | HTMLResponse:
        """One FAQ entry (answers link their sources here); browsers get an HTML page."""
        e = _entry_or_404(bot_or_503().kb, entry_id)
        if wants_html(request.headers.get("accept", "")):
            back = request.scope.get("app_root_path", "") + "/"
            page = entry_page(e, app_name=settings.app_name, back=back)
            return HTMLResponse(page, headers={"Vary": "Accept"})
        response.headers["Vary"] = "Accept"
        return _entry_out(e)

    @api.get("/metrics", tags=["health"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(exposition(), media_type="text/plain; version=0.0.4")

    return api
