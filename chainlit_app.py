"""Chainlit face of faqbot: renders FaqBot's event stream; no business logic lives here.

Run: `chainlit run chainlit_app.py` (offline by default; set OPENAI_API_KEY for the LLM path).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

import chainlit as cl
import structlog

from faqbot.answering.coalesce import coalesce_tokens
from faqbot.answering.contact import support_contact
from faqbot.answering.events import Done, Fallback, RouteDecided, Source, Token, TurnResult
from faqbot.answering.render import (
    GONE,
    chosen_markdown,
    message_markdown,
    unavailable_text,
    watermark,
    welcome_markdown,
)
from faqbot.config import get_settings
from faqbot.domain import ChatTurn, FaqEntry
from faqbot.errors import FaqBotError, InputError, RateLimitedError
from faqbot.logs import configure_logging, get_logger
from faqbot.ops.reload import BotHolder
from faqbot.spend import Spender, StreamSlots
from faqbot.state.ratelimit import RateLimiter
from faqbot.store.turns import Face, RoutedBy, TurnRecord
from faqbot_chainlit import patches, sessions
from faqbot_chainlit.learning import as_run, keep_offer, record_choice, take_offer
from faqbot_chainlit.persistence import ensure_schema, open_persistence, persist, resumed_history
from faqbot_chainlit.route_step import show_route
from faqbot_chainlit.sign_in import register_callbacks
from faqbot_chainlit.startup import start_background
from faqbot_chainlit.wiring import mount_http_api


def _server_state() -> Any:
    """Chainlit's app state: what outlives a re-import of this module by `--watch`."""
    from chainlit.server import app

    return app.state


settings = get_settings()
configure_logging(settings.log_level, settings.log_format, mask_pii=settings.mask_pii)
log = get_logger("faqbot.chainlit")
# `chainlit run --watch` (RELOAD=true) re-imports this module when a .py file changes, inside the
# running server: keep that server's bot (its FAQ watcher refreshes it), limits and tasks.
_kept = _server_state()
holder: BotHolder = getattr(_kept, "faqbot_holder", None) or BotHolder(settings)
limiter: RateLimiter = getattr(_kept, "faqbot_limiter", None) or RateLimiter(
    settings.rate_limit_requests, settings.rate_limit_window, settings.redis_url
)
# answers in progress, shared with /api
streams: StreamSlots = getattr(_kept, "faqbot_streams", None) or StreamSlots(
    settings.max_streams_per_client
)
_background: set[asyncio.Task[Any]] = getattr(_kept, "faqbot_tasks", None) or set()
HISTORY_LIMIT = 20  # turns kept per session (the router sees LLM_HISTORY_TURNS of them)
PROFILE = "FAQ assistant"
SUGGESTION_ACTION = "faq_suggestion"
RELATED_ACTION = "faq_related"  # a related question under an answer: asked when clicked
ASK_ICON = "corner-down-right"  # marks a question button; public/faqbot.css gives each its row
SUGGESTION_MESSAGES_KEPT = 5  # suggestion messages per session whose buttons still work
UNAVAILABLE = unavailable_text(settings.support_contact.strip() or None)
# A socket that closes mid-answer cancels the answer (and its LLM call) unless the same session
# reconnects this fast: a network blip (socket.io reconnects after 0.5-1.5 s) keeps its answer.
RECONNECT_GRACE_S = 2.0
# Disconnected sessions kept for a reconnection (Chainlit keeps each one `session_timeout`
# seconds, 600); beyond this many, the oldest is let go at once. See `on_chat_end`.
KEPT_DISCONNECTED = 1000
_disconnected: OrderedDict[str, None] = (  # socket ids, oldest disconnect first
    _kept.faqbot_disconnected if hasattr(_kept, "faqbot_disconnected") else OrderedDict()
)
# Persistence (faqbot/store): one database for Chainlit's data layer and faqbot's own rows
stored = open_persistence(settings)
database, data_layer, store = stored.database, stored.data_layer, stored.store


@cl.data_layer
def _data_layer() -> Any:
    """faqbot's layer; None with PERSISTENCE=false (Chainlit must not fall back to its own
    asyncpg layer just because DATABASE_URL is set)."""
    return data_layer


def _starters() -> list[cl.Starter]:
    """Two starters per category, taken from the FAQ itself."""
    out: list[cl.Starter] = []
    if holder.bot is None:
        return out
    for category in holder.bot.kb.categories.values():
        for entry in category.entries[:2]:
            out.append(cl.Starter(label=entry.question, message=entry.question))
    return out


def _profiles() -> list[cl.ChatProfile]:
    """One profile: its description is the welcome screen (a message would hide the starters).

    Synchronous on purpose: the session set-up (`patches.sync_session_config`) reads it without
    re-entering the event loop.
    """
    return [
        cl.ChatProfile(
            name=PROFILE,
            markdown_description=welcome_markdown(holder.bot) if holder.bot else UNAVAILABLE,
            # Chainlit shows the welcome text only with an icon; a "/public/..." icon is fetched
            # from this server, also in the widget. (Chainlit would also take it, unresolved, as
            # the avatar of messages authored by [UI] name: APP_NAME differs, so avatars come
            # from /avatars/<APP_NAME> on this server; see .chainlit/config.toml.)
            icon="/public/logo.svg",
            default=True,
            starters=_starters(),
        )
    ]


@cl.set_chat_profiles
async def chat_profiles(user: cl.User | None = None, language: str | None = None) -> list[Any]:
    return _profiles()


@cl.on_app_startup
async def on_app_startup() -> None:
    """Create or upgrade the database's schema, then watch the FAQ folder."""
    await ensure_schema(database)
    start_background(settings, holder, database, _background)


@cl.on_chat_start
async def on_chat_start() -> None:
    cl.user_session.set("history", [])
    mode = holder.bot.mode if holder.bot else "unavailable"
    log.info("chat.start", conversation_id=cl.context.session.thread_id, mode=mode)


@cl.on_chat_end
async def on_chat_end() -> None:
    """A visitor's socket closed: cancel an abandoned answer, bound the sessions kept."""
    session = cl.context.session
    sessions.cancel_unless_back(session, RECONNECT_GRACE_S, _background)
    await sessions.bound_disconnected(session, _disconnected, KEPT_DISCONNECTED)


@cl.on_chat_resume
async def on_chat_resume(thread: Any) -> None:
    """A thread reopened from the sidebar (sign-in on): its questions and answers become the
    session's history again, so a follow-up is read with the old context, even after a restart.
    """
    turns = await resumed_history(store, thread, HISTORY_LIMIT)
    cl.user_session.set("history", turns)
    log.info("chat.resume", conversation_id=str(thread.get("id", "")), turns=len(turns) // 2)


register_callbacks(settings)  # sign-in: off unless configured


async def _reply(text: str) -> None:
    await cl.Message(content=text, author=settings.app_name).send()


@cl.on_message
async def on_message(message: cl.Message) -> None:
    """Hold one of the client's answer slots (MAX_STREAMS_PER_CLIENT, shared
    with the API), answer; tokens are charged to the client and this thread (faqbot.spend)."""
    session = cl.context.session
    structlog.contextvars.bind_contextvars(conversation_id=session.thread_id, session_id=session.id)
    client = sessions.session_client(session)  # the message was counted at the socket gate
    try:
        slot = streams.acquire(client)  # TooManyStreamsError is a RateLimitedError
    except RateLimitedError as exc:
        await _reply(exc.user_message)
        return
    with slot:
        await _answer(message, Spender(client, session.thread_id))


async def _answer(message: cl.Message, spender: Spender) -> None:
    session = cl.context.session
    history: list[ChatTurn] = cl.user_session.get("history") or []
    answer = cl.Message(content="", author=settings.app_name)
    step: cl.Step | None = None
    result: TurnResult | None = None
    notice: str | None = None
    routed_by: RoutedBy = "retrieval"
    brief = getattr(session, "client_type", "") == "copilot"
    try:
        bot = holder.bot
        if bot is None:
            await _reply(UNAVAILABLE)
            return
        stream = coalesce_tokens(
            bot.answer(message.content, history, brief=brief, spender=spender),
            settings.ui_token_interval_ms / 1000,
        )
        async for event in stream:
            if isinstance(event, RouteDecided):
                routed_by = event.via
                step = await show_route(step, event, message.content)
            elif isinstance(event, Fallback):
                notice = event.message
                if answer.content:  # discard a partial LLM answer; the offline one replaces it
                    answer.content = ""
                    await answer.update()
            elif isinstance(event, Token):
                await answer.stream_token(event.text)
            elif isinstance(event, Done):
                result = event.result
    except InputError as exc:
        await _reply(exc.user_message)
        return
    except FaqBotError as exc:
        log.warning("chat.error", code=exc.code)
        await _finish_broken(answer, exc.user_message)
        return
    except Exception:
        log.exception("chat.unexpected_error")
        await _finish_broken(
            answer, "Sorry, something went wrong while answering. Please try again."
        )
        return
    if result is None:  # pragma: no cover - the stream always ends with Done
        await _finish_broken(answer, "Sorry, no answer was produced. Please try again.")
        return
    record = _record(result, answer.id, message.id, routed_by)
    answer.metadata = {"faqbot": record.metadata()}  # saved with the answer step
    await _finish(answer, result, notice)
    _remember(history, result.question, result.answer)
    await persist(stored, record)


def _face() -> Face:
    return "widget" if getattr(cl.context.session, "client_type", "") == "copilot" else "ui"


def _record(result: TurnResult, answer_id: str, question_id: str, via: RoutedBy) -> TurnRecord:
    """The turn as faqbot stores it (faqbot.store documents the keys)."""
    session = cl.context.session
    user = getattr(session, "user", None)
    return TurnRecord.of(
        result,
        answer_id=answer_id,
        thread_id=session.thread_id,
        face=_face(),
        routed_by=via,
        faq_version=holder.bot.kb.version if holder.bot else None,
        question_step_id=question_id,
        user_identifier=user.identifier if user is not None else None,
    )


def _remember(history: list[ChatTurn], question: str, answer: str) -> None:
    history.extend([ChatTurn("user", question), ChatTurn("assistant", answer)])
    cl.user_session.set("history", history[-HISTORY_LIMIT:])


def _links_base() -> str | None:
    """Absolute source links in the copilot widget (it runs on another site), relative here."""
    session = cl.context.session
    copilot = getattr(session, "client_type", "") == "copilot"
    return sessions.server_origin(session) if copilot else None


async def _finish(answer: cl.Message, result: TurnResult, notice: str | None) -> None:
    """Replace the streamed text by the final message: text, footer, suggestion buttons."""
    try:
        bot = holder.bot
        contact = support_contact(
            bot.kb if bot else None, settings.support_contact, result.category
        )
        answer.content = message_markdown(result, notice, _links_base(), contact)
    except Exception:  # the answer itself is complete: never lose it over its footer
        log.exception("chat.footer_failed")
        answer.content = result.answer
    answer.actions = [
        cl.Action(
            name=SUGGESTION_ACTION, payload={"entry_id": s.id}, label=s.question, icon=ASK_ICON
        )
        for s in result.suggestions
    ] or _related_actions(result)
    await answer.send()
    if result.suggestions:  # with the question asked: a choice is evidence for it (issue 22)
        keep_offer(answer, result.question, SUGGESTION_MESSAGES_KEPT)


def _related_actions(result: TurnResult) -> list[cl.Action]:
    """Up to three related questions under an answer, as buttons (issue 21)."""
    return [
        cl.Action(name=RELATED_ACTION, payload={"entry_id": s.id}, label=s.question, icon=ASK_ICON)
        for s in result.related
    ]


@cl.action_callback(RELATED_ACTION)
async def on_related(action: cl.Action) -> None:
    """The user clicked a related question: ask it in this conversation, as if typed (the
    click, POST /project/action, was counted at the front door like a message)."""
    chosen = await _ask_chosen(action, "related.chosen")
    if chosen is not None:
        async with as_run(chosen[1]):  # the answer gets the UI's thumbs (faqbot_chainlit.learning)
            await on_message(chosen[1])


async def _ask_chosen(action: cl.Action, event: str) -> tuple[FaqEntry, cl.Message] | None:
    """The clicked entry, shown as the user's question; None (and a notice) when it is gone."""
    bot = holder.bot
    entry_id = str(action.payload.get("entry_id", ""))
    entry = bot.kb.by_id.get(entry_id) if bot is not None else None
    log.info(event, entry_id=entry_id, found=entry is not None)
    if entry is None:
        await _reply(GONE)
        return None
    question = cl.Message(content=entry.question, author="User", type="user_message")
    await question.send()
    return entry, question


@cl.action_callback(SUGGESTION_ACTION)
async def on_suggestion(action: cl.Action) -> None:
    """The user picked a "Did you mean" entry: show its answer, as if they had asked it."""
    offered, asked = take_offer(action.forId)
    declined = {str(a.payload.get("entry_id")) for a in offered.actions} if offered else set()
    if offered is not None:
        await offered.remove_actions()  # one choice per suggestion message
    else:
        await action.remove()
    # the click (POST /project/action) was counted at the front door (faqbot/web/front_door.py)
    chosen = await _ask_chosen(action, "suggestion.chosen")
    if chosen is None:
        return
    (entry, question), bot = chosen, holder.bot
    reply = cl.Message(content=chosen_markdown(entry, _links_base()), author=settings.app_name)
    source = Source(entry.id, entry.category, entry.question, 1.0)
    near = [e for e in (bot.retriever.related(entry.id) if bot else ()) if e.id not in declined]
    result = TurnResult(
        entry.question, entry.answer, entry.category, 1.0, entry.question, (source,),
        related=tuple(Source(e.id, e.category, e.question, 0.0) for e in near),
    )  # fmt: skip
    record = _record(result, reply.id, question.id, "suggestion")
    reply.metadata = {"faqbot": record.metadata()}
    reply.actions = _related_actions(result)
    async with as_run(question) as run:  # under a run, as a typed answer: the UI's thumbs
        reply.parent_id = run.id
        await reply.send()
    history: list[ChatTurn] = cl.user_session.get("history") or []
    _remember(history, entry.question, entry.answer)
    await persist(stored, record)
    await record_choice(stored, settings, asked, entry.id, cl.context.session.thread_id)


async def _finish_broken(answer: cl.Message, explanation: str) -> None:
    """Never leave a half-finished message without saying why."""
    if answer.content:
        answer.content += f"\n\n_{explanation}_"
        await answer.send()
    else:
        await _reply(explanation)


def _watermark() -> str:
    """The notice under the chat input: what the running mode does."""
    return watermark(holder.bot.mode if holder.bot else None)


if not getattr(_kept, "faqbot_installed", False):  # once per server: Starlette refuses
    mount_http_api(settings, lambda: holder.bot, limiter, streams, data_layer, store)
    patches.apply(_profiles, _watermark, _disconnected)  # the patches must not stack
    _kept.faqbot_installed = True
_kept.faqbot_holder, _kept.faqbot_limiter, _kept.faqbot_tasks = holder, limiter, _background
_kept.faqbot_streams, _kept.faqbot_disconnected = streams, _disconnected
