"""POST /chat (one JSON answer) and POST /chat/stream (the same answer as server-sent events)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from faqbot.bot import FaqBot
from faqbot.domain import ChatTurn
from faqbot.errors import FaqBotError
from faqbot.events import (
    Done,
    Event,
    Fallback,
    RouteDecided,
    Source,
    Sources,
    Suggestions,
    Token,
    TurnResult,
)
from faqbot.logs import get_logger
from faqbot.web.context import ApiContext
from faqbot.web.schemas import ERRORS, ChatRequest, ChatResponse, SourceOut

log = get_logger("faqbot.web")

STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    200: {
        "description": "Server-sent events: route, [fallback], token*, sources, "
        "[suggestions], done | error",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
}


def encode_sse(event: str, data: Any) -> str:
    """One server-sent event: its name and its JSON data."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def source_out(source: Source, prefix: str) -> SourceOut:
    return SourceOut(
        id=source.id,
        category=source.category,
        question=source.question,
        score=source.score,
        url=f"{prefix}/faq/{source.id}",
    )


def chat_response(
    result: TurnResult, conversation_id: str, prefix: str, contact: str | None = None
) -> ChatResponse:
    return ChatResponse(
        answer=result.answer,
        category=result.category,
        confidence=max(0.0, min(1.0, result.confidence)),
        conversation_id=conversation_id,
        processing_time=round(result.elapsed_s, 4),
        sources=[source_out(s, prefix) for s in result.sources],
        fallback=result.fallback,
        refused=result.refused,
        outcome=result.outcome,
        suggestions=[source_out(s, prefix) for s in result.suggestions],
        support_contact=contact if result.outcome == "refused" else None,
        mode=result.mode,
    )


def _finish(ctx: ApiContext, bot: FaqBot, result: TurnResult, conversation_id: str) -> ChatResponse:
    """Record the turn in its conversation; the response describing it."""
    ctx.conversations.record(conversation_id, result.question, result.answer)
    return chat_response(result, conversation_id, ctx.prefix, ctx.contact_for(bot, result))


def _frame(event: Event, conversation_id: str, prefix: str) -> str | None:
    """The server-sent event for one bot event before Done (None: not sent)."""
    if isinstance(event, RouteDecided):
        route = {
            "category": event.category,
            "confidence": event.confidence,
            "standalone_question": event.standalone_question,
            "via": event.via,
            "conversation_id": conversation_id,
        }
        return encode_sse("route", route)
    if isinstance(event, Fallback):
        return encode_sse("fallback", {"reason": event.reason, "message": event.message})
    if isinstance(event, Token):
        return encode_sse("token", {"text": event.text})
    if isinstance(event, Sources):
        sources = [source_out(s, prefix).model_dump() for s in event.sources]
        return encode_sse("sources", {"sources": sources})
    if isinstance(event, Suggestions):
        offered = [source_out(s, prefix).model_dump() for s in event.sources]
        return encode_sse("suggestions", {"suggestions": offered})
    return None


async def _stream(
    ctx: ApiContext,
    bot: FaqBot,
    question: str,
    history: Sequence[ChatTurn],
    conversation_id: str,
) -> AsyncIterator[str]:
    """The turn as server-sent events; a failure ends the stream with an `error` event."""
    structlog.contextvars.bind_contextvars(conversation_id=conversation_id, face="sse")
    try:
        async for event in bot.answer(question, history):
            if isinstance(event, Done):
                done = _finish(ctx, bot, event.result, conversation_id)
                yield encode_sse("done", done.model_dump())
            elif (frame := _frame(event, conversation_id, ctx.prefix)) is not None:
                yield frame
    except FaqBotError as exc:
        yield encode_sse("error", {"error": exc.user_message, "error_code": exc.code})
    except Exception:
        log.exception("api.stream_error")
        yield encode_sse(
            "error", {"error": "Internal server error", "error_code": "INTERNAL_ERROR"}
        )


def register_chat(api: FastAPI, ctx: ApiContext) -> None:
    """POST /chat and POST /chat/stream."""

    @api.post("/chat", response_model=ChatResponse, tags=["chat"], responses=ERRORS)
    async def chat(body: ChatRequest) -> ChatResponse:
        """Answer one question; pass `conversation_id` back for follow-ups."""
        bot = ctx.bot_or_503()
        question = ctx.clean(body.question)
        conversation_id = body.conversation_id or ctx.conversations.new_id()
        history = ctx.conversations.history(conversation_id)
        result: TurnResult | None = None
        with structlog.contextvars.bound_contextvars(conversation_id=conversation_id, face="api"):
            async for event in bot.answer(question, history):
                if isinstance(event, Done):
                    result = event.result
        assert result is not None
        return _finish(ctx, bot, result, conversation_id)

    @api.post(
        "/chat/stream",
        tags=["chat"],
        responses=STREAM_RESPONSES,
        response_class=StreamingResponse,
    )
    async def chat_stream(body: ChatRequest) -> StreamingResponse:
        """The same answer as a stream of server-sent events."""
        bot = ctx.bot_or_503()
        question = ctx.clean(body.question)
        conversation_id = body.conversation_id or ctx.conversations.new_id()
        history = ctx.conversations.history(conversation_id)
        return StreamingResponse(
            _stream(ctx, bot, question, history, conversation_id),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
