"""POST /chat (one JSON answer) and POST /chat/stream (the same answer as server-sent events).

A turn never outlives its client: when the HTTP client of `/chat` disconnects, the turn (and
its LLM call) is cancelled at once, which the circuit breaker does not count as a provider
failure (FaqBot.answer releases a cancelled probe); a dropped `/chat/stream` is cancelled by
Starlette the same way. While a stream has nothing to send (a slow or stalled provider) it sends
a `: keep-alive` comment every SSE_KEEPALIVE_SECONDS, so proxies and clients keep it open and a
client can tell a waiting server from a dead connection.

Each turn holds one of its client's MAX_STREAMS_PER_CLIENT answer slots until it ends (a client
over the cap gets a 429 before anything runs), and its LLM tokens are charged to the client and
the conversation (faqbot.spend): a spent budget gives an offline answer, never an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

import anyio
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from faqbot.answering.bot import FaqBot
from faqbot.answering.events import (
    Done,
    Event,
    Fallback,
    RouteDecided,
    Source,
    Sources,
    Suggestions,
    Token,
    TurnResult,
    Via,
)
from faqbot.answering.render import route_markdown
from faqbot.domain import ChatTurn
from faqbot.errors import FaqBotError
from faqbot.logs import get_logger
from faqbot.spend import Spender, StreamSlot
from faqbot.store.requester import current_requester
from faqbot.store.turns import TurnRecord, new_id
from faqbot.web.context import ApiContext, Conversation
from faqbot.web.limits import client_key
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

_SURROGATE = re.compile("[\ud800-\udfff]")
KEEP_ALIVE = ": keep-alive\n\n"  # an SSE comment: clients ignore it, proxies see traffic
CLIENT_CLOSED_REQUEST = 499  # nginx's status for a client that left before the answer
CANCEL_WAIT_S = 2.0  # how long a cancelled turn may take to unwind (close its LLM call)


def encode_sse(event: str, data: Any) -> str:
    """One server-sent event: its name and its JSON data, on one `data:` line (JSON escapes
    CR and LF, so no text can end the frame early or forge another one)."""
    payload = json.dumps(data, ensure_ascii=False)
    if _SURROGATE.search(payload):  # a lone surrogate (a provider split an emoji's escape):
        payload = json.dumps(data)  # escaped as \udXXX it stays valid JSON and valid UTF-8
    return f"event: {event}\ndata: {payload}\n\n"


def source_out(source: Source, prefix: str) -> SourceOut:
    return SourceOut(
        id=source.id,
        category=source.category,
        question=source.question,
        score=source.score,
        url=f"{prefix}/faq/{source.id}",
    )


def chat_response(
    result: TurnResult, conversation: Conversation, prefix: str, contact: str | None = None
) -> ChatResponse:
    return ChatResponse(
        answer=result.answer,
        category=result.category,
        confidence=max(0.0, min(1.0, result.confidence)),
        conversation_id=conversation.id,
        conversation_token=conversation.token,
        processing_time=round(result.elapsed_s, 4),
        sources=[source_out(s, prefix) for s in result.sources],
        fallback=result.fallback,
        fallback_reason=result.fallback_reason,
        fallback_notice=result.fallback_notice,
        refused=result.refused,
        outcome=result.outcome,
        suggestions=[source_out(s, prefix) for s in result.suggestions],
        related=[source_out(s, prefix) for s in result.related],
        support_contact=contact if result.outcome == "refused" else None,
        mode=result.mode,
    )


async def _finish(
    ctx: ApiContext, bot: FaqBot, result: TurnResult, via: Via, conversation: Conversation
) -> ChatResponse:
    """Record the turn in its conversation (and the database); the response describing it."""
    await ctx.conversations.record(conversation.id, result.question, result.answer)
    response = chat_response(result, conversation, ctx.prefix, ctx.contact_for(bot, result))
    if ctx.store is not None:
        asking = current_requester.get()  # set with sign-in (faqbot/web/api_access.py)
        record = TurnRecord.of(
            result, answer_id=new_id(), thread_id=conversation.id, face="api", routed_by=via,
            faq_version=bot.kb.version, user_identifier=asking.user if asking else None,
        )  # fmt: skip
        route = RouteDecided(result.category, result.confidence, result.standalone_question, via)
        try:
            await ctx.store.record_api_turn(record, route_markdown(route), ctx.settings.app_name)
            response.answer_id = record.id
        except Exception as exc:  # the answer still goes out; the log says what was lost
            log.error("store.turn_not_saved", error=f"{type(exc).__name__}: {exc}"[:300])
    return response


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
    ctx: ApiContext, bot: FaqBot, question: str, conversation: Conversation, spender: Spender
) -> AsyncGenerator[str, None]:
    """The turn as server-sent events; a failure ends the stream with an `error` event."""
    structlog.contextvars.bind_contextvars(conversation_id=conversation.id, face="sse")
    via: Via = "retrieval"
    try:
        async for event in bot.answer(question, conversation.history, spender=spender):
            if isinstance(event, Done):
                done = await _finish(ctx, bot, event.result, via, conversation)
                yield encode_sse("done", done.model_dump())
                continue
            if isinstance(event, RouteDecided):
                via = event.via
            if (frame := _frame(event, conversation.id, ctx.prefix)) is not None:
                yield frame
    except FaqBotError as exc:
        yield encode_sse("error", {"error": exc.user_message, "error_code": exc.code})
    except Exception:
        log.exception("api.stream_error")
        yield encode_sse(
            "error", {"error": "Internal server error", "error_code": "INTERNAL_ERROR"}
        )


_END = object()  # the frames are over


async def with_keep_alive(frames: AsyncGenerator[str, None], every: float) -> AsyncIterator[str]:
    """`frames`, plus a `: keep-alive` comment whenever `every` seconds pass without one.

    The frames are produced in a task of their own, so waiting for the next one can time out
    without cancelling the turn; closing this stream (the client went away) cancels that task
    and waits, briefly, for the turn to unwind.
    """
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=1)

    async def pump() -> None:
        try:
            async with contextlib.aclosing(frames):  # closed here, by the task driving it
                async for frame in frames:
                    await queue.put(frame)
        except Exception as exc:  # _stream reports its own failures; anything else goes on
            await queue.put(exc)
        else:
            await queue.put(_END)

    producer = asyncio.create_task(pump())
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), every)
            except TimeoutError:
                yield KEEP_ALIVE
                continue
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            assert isinstance(item, str)
            yield item
    finally:
        if not producer.done():
            producer.cancel()
            with anyio.move_on_after(CANCEL_WAIT_S, shield=True):
                await asyncio.wait({producer})


async def _disconnected(receive: Receive) -> None:
    """Return once the HTTP client has gone (the request body was already read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _unless_disconnected(
    request: Request,
    bot: FaqBot,
    question: str,
    history: Sequence[ChatTurn],
    spender: Spender,
) -> tuple[TurnResult, Via] | None:
    """The turn's result and how it was routed, or None when the client disconnected first
    (the turn is cancelled)."""

    async def turn() -> tuple[TurnResult, Via]:
        result: TurnResult | None = None
        via: Via = "retrieval"
        async for event in bot.answer(question, history, spender=spender):
            if isinstance(event, Done):
                result = event.result
            elif isinstance(event, RouteDecided):
                via = event.via
        assert result is not None
        return result, via

    work = asyncio.create_task(turn())
    watch = asyncio.create_task(_disconnected(request.receive))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not work.done():  # the client left (or this request was cancelled): stop the turn
            work.cancel()
            with anyio.move_on_after(CANCEL_WAIT_S, shield=True):
                await asyncio.wait({work})
    if work.done() and not work.cancelled():
        return work.result()
    log.info("api.client_gone", turn="cancelled")
    return None


class HeldStream(StreamingResponse):
    """A stream that holds its client's answer slot until it has ended or the client left.

    Released in `__call__`, which Starlette always runs for a returned response: the body
    generator's own `finally` would never run for a stream cancelled before its first frame.
    """

    def __init__(self, slot: StreamSlot, content: AsyncIterator[str], **kw: Any) -> None:
        super().__init__(content, **kw)
        self.slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.release()


def register_chat(api: FastAPI, ctx: ApiContext) -> None:
    """POST /chat and POST /chat/stream."""

    @api.post("/chat", response_model=ChatResponse, tags=["chat"], responses=ERRORS)
    async def chat(body: ChatRequest, request: Request) -> ChatResponse | Response:
        """Answer one question; for a follow-up send back the `conversation_id` and
        `conversation_token` of the conversation's last answer."""
        bot = ctx.bot_or_503()
        question = ctx.clean(body.question)
        conversation = await ctx.conversation(body.conversation_id, body.conversation_token)
        client = client_key(request.scope)
        spender = Spender(client, conversation.id)
        with (
            ctx.streams.acquire(client),  # TooManyStreamsError: a 429
            structlog.contextvars.bound_contextvars(conversation_id=conversation.id, face="api"),
        ):
            turn = await _unless_disconnected(request, bot, question, conversation.history, spender)
            if turn is None:
                return Response(status_code=CLIENT_CLOSED_REQUEST)  # nobody reads it
            return await _finish(ctx, bot, *turn, conversation=conversation)

    @api.post(
        "/chat/stream",
        tags=["chat"],
        responses=STREAM_RESPONSES,
        response_class=StreamingResponse,
    )
    async def chat_stream(body: ChatRequest, request: Request) -> StreamingResponse:
        """The same answer as a stream of server-sent events."""
        bot = ctx.bot_or_503()
        question = ctx.clean(body.question)
        conversation = await ctx.conversation(body.conversation_id, body.conversation_token)
        client = client_key(request.scope)
        spender = Spender(client, conversation.id)
        return HeldStream(
            ctx.streams.acquire(client),  # TooManyStreamsError: a 429 before the stream starts
            with_keep_alive(
                _stream(ctx, bot, question, conversation, spender),
                ctx.settings.sse_keepalive_seconds,
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
