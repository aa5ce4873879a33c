"""Chainlit face of faqbot: renders FaqBot's event stream; no business logic lives here.

Run: `chainlit run chainlit_app.py` (offline by default; set OPENAI_API_KEY for the LLM path).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from typing import Any

import chainlit as cl
import structlog
from chainlit.oauth_providers import get_configured_oauth_providers
from starlette.requests import HTTPConnection

from faqbot.answering.coalesce import coalesce_tokens
from faqbot.answering.contact import support_contact
from faqbot.answering.events import Done, Fallback, RouteDecided, Source, Token, TurnResult
from faqbot.answering.render import (
    GONE,
    chosen_markdown,
    message_markdown,
    route_markdown,
    unavailable_text,
    watermark,
    welcome_markdown,
)
from faqbot.config import get_settings
from faqbot.domain import ChatTurn
from faqbot.errors import FaqBotError, InputError, RateLimitedError
from faqbot.logs import configure_logging, get_logger
from faqbot.ops.reload import BotHolder, watch_knowledge
from faqbot.passwords import verify_password
from faqbot.privacy.stored import MaskingStore, delete_whole_threads, mask_data_layer
from faqbot.spend import Spender, StreamSlots
from faqbot.state.ratelimit import RateLimiter
from faqbot.store.chainlit_layer import FaqbotDataLayer
from faqbot.store.database import Database
from faqbot.store.turns import Face, RoutedBy, Store, TurnRecord
from faqbot.web.admin_access import Viewer
from faqbot.web.security import peer_address


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
SUGGESTION_MESSAGES_KEPT = 5  # suggestion messages per session whose buttons still work
UNAVAILABLE = unavailable_text(settings.support_contact.strip() or None)
# A socket that closes mid-answer cancels the answer (and its LLM call) unless the same session
# reconnects this fast: a network blip (socket.io reconnects after 0.5-1.5 s) keeps its answer.
RECONNECT_GRACE_S = 2.0
# Disconnected sessions kept for a reconnection (Chainlit keeps each one `session_timeout`
# seconds, 600); beyond this many, the oldest is let go at once. See `on_chat_end`.
KEPT_DISCONNECTED = 1000
_disconnected: OrderedDict[str, None] = OrderedDict()  # socket ids, oldest disconnect first
# Persistence (faqbot/store): one database for Chainlit's data layer and faqbot's own rows
database = Database.from_settings(settings) if settings.persistence else None
data_layer = FaqbotDataLayer(database) if database is not None else None
_Store = MaskingStore if settings.mask_pii else Store  # MASK_PII: users' words masked when stored
store = _Store(data_layer.database, data_layer.failure_count) if data_layer is not None else None
if data_layer is not None:
    delete_whole_threads(data_layer, data_layer.database.engine)  # with faqbot's turn rows
    if settings.mask_pii:
        mask_data_layer(data_layer)


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

    Synchronous on purpose: the session set-up (`_install_session_config`) reads it without
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
    if database is not None:
        try:
            await database.ensure_schema()
            log.info("store.ready", **database.describe())
        except Exception as exc:  # answers go on; every write is then counted as failed
            log.error("store.unavailable", error=f"{type(exc).__name__}: {exc}"[:300],
                      **database.describe())  # fmt: skip
    start_faq_watcher()
    _start_warm_up()


def _start_warm_up() -> None:
    """LLM_WARM_UP: one router call at start, off the request path (faqbot.answering.factory):
    a local server loads its model and the router learns the endpoint's tool_choice form."""
    if holder.bot is None or holder.bot.model is None:
        return
    from faqbot.answering.factory import warm_up

    task = asyncio.get_running_loop().create_task(warm_up(holder.bot), name="llm-warm-up")
    _background.add(task)
    task.add_done_callback(_background.discard)


def start_faq_watcher() -> None:
    """Reload the FAQ on file changes; a bad edit keeps the last good version serving.

    The watcher follows FAQ_DIR by path (missing at start, renamed, symlink-swapped) and only
    ends with the process; should it ever stop, say so instead of going stale silently.
    """
    task = asyncio.get_running_loop().create_task(
        watch_knowledge(settings.faq_dir, holder.refresh), name="faq-watcher"
    )
    _background.add(task)  # keep a reference: the loop holds tasks only weakly
    task.add_done_callback(_watcher_ended)
    _start_retention()


def _start_retention() -> None:
    """RETENTION_DAYS: delete old conversations at start and every hour (faqbot/privacy)."""
    if settings.retention_days <= 0 or database is None:
        return
    from faqbot.privacy.retention import retention_loop

    loop = retention_loop(database.engine, settings.retention_days)
    task = asyncio.get_running_loop().create_task(loop, name="retention")
    _background.add(task)
    task.add_done_callback(_background.discard)


def _watcher_ended(task: asyncio.Task[None]) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("knowledge.watcher_died", error=repr(task.exception()))


@cl.on_chat_start
async def on_chat_start() -> None:
    cl.user_session.set("history", [])
    mode = holder.bot.mode if holder.bot else "unavailable"
    log.info("chat.start", conversation_id=cl.context.session.thread_id, mode=mode)


@cl.on_chat_end
async def on_chat_end() -> None:
    """A visitor's socket closed: cancel an abandoned answer, bound the sessions kept."""
    session = cl.context.session
    _cancel_unless_back(session)
    await _bound_disconnected(session)


def _cancel_unless_back(session: Any) -> None:
    """The visitor's socket closed (tab closed, network lost) with an answer in progress: cancel
    it unless the session is back within RECONNECT_GRACE_S. Chainlit itself leaves the turn
    running, so its LLM call went on for nobody (spending tokens) and a stalled one ended as a
    timeout counted against the provider; cancelled, it is no provider failure
    (faqbot.answering.bot)."""
    task = getattr(session, "current_task", None)
    if task is None or task.done():
        return
    left_from = getattr(session, "socket_id", None)

    async def cancel_unless_back() -> None:
        await asyncio.sleep(RECONNECT_GRACE_S)
        if getattr(session, "socket_id", None) == left_from and not task.done():
            log.info("chat.abandoned", session_id=session.id)
            task.cancel()

    watcher = asyncio.get_running_loop().create_task(cancel_unless_back())
    _background.add(watcher)
    watcher.add_done_callback(_background.discard)


async def _bound_disconnected(session: Any) -> None:
    """Bound the sessions kept after their visitors left (issue 14, bench/RESULTS.md "Soak").

    Chainlit keeps a disconnected session (its history, messages, emitter) for `session_timeout`
    seconds so that the same tab can reconnect; a visitor opening and closing sessions in a loop
    could make the process hold as many as it can open in that time. Only the latest
    KEPT_DISCONNECTED are kept: older ones are released now, as Chainlit would at the timeout.
    """
    socket_id = getattr(session, "socket_id", None)
    if socket_id is None:  # not a websocket session: nothing is kept
        return
    _disconnected[socket_id] = None
    while len(_disconnected) > KEPT_DISCONNECTED:
        socket_id, _ = _disconnected.popitem(last=False)
        await _release_session(socket_id)


async def _release_session(socket_id: str) -> None:
    """Chainlit's own end of a session (socket.disconnect's `clear`), unless it reconnected."""
    from chainlit.session import WebsocketSession
    from chainlit.user_session import user_sessions

    session = WebsocketSession.get(socket_id)  # None once it reconnected (new socket id)
    if session is not None:
        user_sessions.pop(session.id, None)
        await session.delete()


@cl.on_chat_resume
async def on_chat_resume(thread: Any) -> None:
    """A thread reopened from the sidebar (sign-in on): its questions and answers become the
    session's history again, so a follow-up is read with the old context, even after a restart.
    """
    thread_id = str(thread.get("id", ""))
    turns: list[ChatTurn] = []
    if store is not None:
        try:
            turns = list(await store.history(thread_id, HISTORY_LIMIT // 2))
        except Exception as exc:
            log.error("store.history_failed", error=f"{type(exc).__name__}: {exc}"[:300])
    if not turns:  # a thread from before faqbot stored turns: read its messages
        for item in thread.get("steps", []):
            if item.get("type") == "user_message":
                turns.append(ChatTurn("user", str(item.get("output") or "")))
            elif item.get("type") == "assistant_message" and turns:
                turns.append(ChatTurn("assistant", str(item.get("output") or "")))
    cl.user_session.set("history", turns[-HISTORY_LIMIT:])
    log.info("chat.resume", conversation_id=thread_id, turns=len(turns) // 2)


# --- Sign-in: off unless configured (AUTH_USERS, AUTH_HEADER, or a Chainlit OAuth provider) ---
if settings.auth_users:

    @cl.password_auth_callback
    async def password_sign_in(username: str, password: str) -> cl.User | None:
        """AUTH_USERS holds only PBKDF2 hashes; checking one takes ~0.3 s of CPU: off the loop."""
        encoded = settings.auth_users.get(username)
        secret = encoded.get_secret_value() if encoded is not None else None
        if await asyncio.to_thread(verify_password, password, secret):
            return cl.User(identifier=username, metadata={"provider": "password"})
        log.warning("auth.sign_in_refused", provider="password")
        return None


if settings.auth_header:

    @cl.header_auth_callback
    async def header_sign_in(headers: Any) -> cl.User | None:
        """The user named by AUTH_HEADER, set by the proxy in front (which must strip it from
        clients' requests); no header, no sign-in."""
        name = (headers.get(settings.auth_header) or "").strip()
        return cl.User(identifier=name, metadata={"provider": "header"}) if name else None


if (
    get_configured_oauth_providers()
):  # Chainlit's OAUTH_<PROVIDER>_CLIENT_ID / _SECRET variables are set

    @cl.oauth_callback
    async def oauth_sign_in(
        provider_id: str,
        token: str,
        raw_user_data: dict[str, str],
        default_user: cl.User,
        id_token: str | None = None,
    ) -> cl.User | None:
        """Everyone the provider signs in (restrict the app at the provider: org, tenant)."""
        return default_user


def _client_key() -> str:
    """The rate-limit bucket of this turn's session (see `_session_client`)."""
    return _session_client(cl.context.session)


def _session_client(session: Any) -> str:
    """The rate-limit bucket: the signed-in user, else the client's address, as the API's.

    Not the socket.io environ's REMOTE_ADDR: python-engineio's ASGI driver always writes
    127.0.0.1 there. The address comes from the connection's ASGI scope (see
    `faqbot.web.security.peer_address`: X-Forwarded-For counts only from a trusted proxy).
    """
    user = getattr(session, "user", None)
    if user is not None:
        return f"user:{user.identifier}"
    environ: dict[str, Any] = getattr(session, "environ", {}) or {}
    address = peer_address(environ)
    return f"ip:{address}" if address else f"session:{session.id}"


def _server_origin() -> str:
    """This server's own origin as the browser reached it (for links inside the widget)."""
    environ: dict[str, Any] = getattr(cl.context.session, "environ", {}) or {}
    proto = "https" if environ.get("HTTP_X_FORWARDED_PROTO") == "https" else "http"
    return f"{proto}://{environ.get('HTTP_HOST', '127.0.0.1')}"


async def _reply(text: str) -> None:
    await cl.Message(content=text, author=settings.app_name).send()


@cl.on_message
async def on_message(message: cl.Message) -> None:
    """Hold one of the client's answer slots (MAX_STREAMS_PER_CLIENT, shared
    with the API), answer; tokens are charged to the client and this thread (faqbot.spend)."""
    session = cl.context.session
    structlog.contextvars.bind_contextvars(conversation_id=session.thread_id, session_id=session.id)
    client = _client_key()  # the message was counted at the socket gate (faqbot/web)
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
                if step is None:
                    parent = cl.context.current_step
                    step = cl.Step(
                        name="Router",
                        type="tool",
                        show_input=False,
                        parent_id=parent.id if parent else None,
                        default_open=not brief,  # the widget stays compact
                    )
                    step.input = message.content
                    step.output = route_markdown(event)
                    step.metadata = {"faqbot": _route_metadata(event)}
                    await step.send()
                else:
                    step.output = route_markdown(event)
                    step.metadata = {"faqbot": _route_metadata(event)}
                    await step.update()
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
    await _persist(record)


def _route_metadata(event: RouteDecided) -> dict[str, Any]:
    return {
        "category": event.category,
        "confidence": round(event.confidence, 4),
        "routed_by": event.via,
        "standalone_question": event.standalone_question,
    }


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


async def _persist(record: TurnRecord) -> None:
    """Once Chainlit's writes of this turn have committed, add its turn row: the turn ends (the
    browser sees it finish) only when it is on disk. A database failure never breaks the chat."""
    if store is None or data_layer is None:
        return
    try:
        await data_layer.drain(record.thread_id)
        await store.record_turn(record)
    except Exception as exc:
        log.error("store.turn_not_saved", error=f"{type(exc).__name__}: {exc}"[:300])


def _remember(history: list[ChatTurn], question: str, answer: str) -> None:
    history.extend([ChatTurn("user", question), ChatTurn("assistant", answer)])
    cl.user_session.set("history", history[-HISTORY_LIMIT:])


def _links_base() -> str | None:
    """Absolute source links in the copilot widget (it runs on another site), relative here."""
    return _server_origin() if getattr(cl.context.session, "client_type", "") == "copilot" else None


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
        cl.Action(name=SUGGESTION_ACTION, payload={"entry_id": s.id}, label=s.question)
        for s in result.suggestions
    ] or _related_actions(result)
    await answer.send()
    if result.suggestions:
        kept: dict[str, cl.Message] = cl.user_session.get("suggestion_messages") or {}
        kept[answer.id] = answer
        while len(kept) > SUGGESTION_MESSAGES_KEPT:
            kept.pop(next(iter(kept)))
        cl.user_session.set("suggestion_messages", kept)


def _related_actions(result: TurnResult) -> list[cl.Action]:
    """Up to three related questions under an answer, as buttons (issue 21)."""
    return [
        cl.Action(name=RELATED_ACTION, payload={"entry_id": s.id}, label=s.question)
        for s in result.related
    ]


@cl.action_callback(RELATED_ACTION)
async def on_related(action: cl.Action) -> None:
    """The user clicked a related question: ask it in this conversation, as if typed (the
    click, POST /project/action, was counted at the front door like a message)."""
    bot = holder.bot
    entry_id = str(action.payload.get("entry_id", ""))
    entry = bot.kb.by_id.get(entry_id) if bot is not None else None
    log.info("related.chosen", entry_id=entry_id, found=entry is not None)
    if entry is None:
        await _reply(GONE)
        return
    question = cl.Message(content=entry.question, author="User", type="user_message")
    await question.send()
    await on_message(question)


@cl.action_callback(SUGGESTION_ACTION)
async def on_suggestion(action: cl.Action) -> None:
    """The user picked a "Did you mean" entry: show its answer, as if they had asked it."""
    kept: dict[str, cl.Message] = cl.user_session.get("suggestion_messages") or {}
    offered = kept.pop(action.forId or "", None)
    declined = {str(a.payload.get("entry_id")) for a in offered.actions} if offered else set()
    if offered is not None:
        await offered.remove_actions()  # one choice per suggestion message
    else:
        await action.remove()
    # the click (POST /project/action) was counted at the front door (faqbot/web/front_door.py)
    entry_id = str(action.payload.get("entry_id", ""))
    bot = holder.bot
    entry = bot.kb.by_id.get(entry_id) if bot is not None else None
    log.info("suggestion.chosen", entry_id=entry_id, found=entry is not None)
    if entry is None:
        await _reply(GONE)
        return
    question = cl.Message(content=entry.question, author="User", type="user_message")
    await question.send()
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
    await reply.send()
    history: list[ChatTurn] = cl.user_session.get("history") or []
    _remember(history, entry.question, entry.answer)
    await _persist(record)


async def _finish_broken(answer: cl.Message, explanation: str) -> None:
    """Never leave a half-finished message without saying why."""
    if answer.content:
        answer.content += f"\n\n_{explanation}_"
        await answer.send()
    else:
        await _reply(explanation)


class ChainlitSignIn:
    """Who is signed in to Chainlit (its session cookie, or `Authorization: Bearer <its JWT>`),
    for /admin, /api and the session check (faqbot/web/session_check.py)."""

    def enabled(self) -> bool:
        from chainlit.auth import require_login

        return bool(require_login())

    @staticmethod
    def claims(token: str) -> dict[str, Any]:
        """A Chainlit session token's claims (identifier, metadata, iat, exp); raises when it
        is not one (sign-in off, bad signature, expired)."""
        import jwt
        from chainlit.auth.jwt import get_jwt_secret

        secret = get_jwt_secret()
        if not secret:
            raise ValueError("no CHAINLIT_AUTH_SECRET: sign-in is off")
        return dict(jwt.decode(token, secret, algorithms=["HS256"]))

    async def viewer(self, request: HTTPConnection) -> Viewer | None:
        from chainlit.auth import get_token_from_cookies

        bearer = request.headers.get("authorization", "")
        for token in (
            get_token_from_cookies(dict(request.cookies)),
            bearer[7:].strip() if bearer[:7].lower() == "bearer " else None,
        ):
            try:
                claims = self.claims(token) if token else {}
            except Exception:  # expired, forged, or signed with another secret: not signed in
                claims = {}
            identifier, metadata = claims.get("identifier"), claims.get("metadata")
            if isinstance(identifier, str) and identifier:
                return Viewer(identifier, dict(metadata) if isinstance(metadata, dict) else {})
        return None


# --- HTTP API, security headers, CORS (see faqbot/web/) ---
def _mount_http_api() -> None:
    """Serve /api ahead of Chainlit's routes, apply CORS_ORIGINS, secure every response.

    Runs at import, before `chainlit run` starts serving: Chainlit builds its middleware stack
    (and the CORSMiddleware holding `config.project.allow_origins`) at the first request.
    """
    from chainlit.config import config as cl_config
    from chainlit.server import app, sio

    from faqbot.state.conversations import ConversationStore
    from faqbot.web.app import create_api, default_admin_site
    from faqbot.web.dispatch import PrefixDispatcher
    from faqbot.web.security import SecurityHeadersMiddleware, websocket_origin_check

    # Who may embed the copilot / call Chainlit cross-origin: CORS_ORIGINS, not a file edit.
    # Chainlit's HTTP CORSMiddleware was given this very list object when chainlit.server was
    # imported; it reads it when the stack is built, so update it in place.
    cl_config.project.allow_origins[:] = list(settings.cors_origins)
    # Browsers apply no CORS to websockets and Chainlit's socket.io server accepts every origin
    # (cors_allowed_origins=[]): check the Origin of each connection (same origin or listed).
    sio.eio.cors_allowed_origins = websocket_origin_check(settings.cors_origins)
    # /admin and /api/analytics: FAQ owners' analytics, for admins (faqbot/web/admin_access.py)
    admin = default_admin_site(
        settings, lambda: holder.bot, ChainlitSignIn(), database.engine if database else None
    )
    api = create_api(
        lambda: holder.bot,
        limiter,
        settings,
        ConversationStore(redis_url=settings.redis_url),
        streams=streams,
        ready_checks=(database.check,) if database is not None else (),
        store=store,
        admin=admin,
        sign_in=ChainlitSignIn(),  # with sign-in on, /api wants a session (or PUBLIC_API)
    )
    app.router.routes.insert(0, admin.page_route(f"{cl_config.run.root_path}/admin"))
    # /admin from a browser: the token form (cookie) and the way to sign in (admin_login.py)
    from faqbot.web.admin_login import AdminLogin

    for route in AdminLogin(admin).routes(f"{cl_config.run.root_path}/admin"):
        app.router.routes.insert(0, route)
    app.add_middleware(PrefixDispatcher, api=api, prefix="/api")
    _install_gates(app, sio)
    # Erased (delete-user) and removed (AUTH_USERS) users' sessions end: outside the gates,
    # which then see such a request without its session (faqbot/web/session_check.py)
    from chainlit.auth.cookie import _auth_cookie_name, _cookie_path

    from faqbot.store.revocations import RevocationList
    from faqbot.web.session_check import SessionCheck, SessionPolicy

    revoked = RevocationList(database.engine) if database is not None else None
    app.add_middleware(
        SessionCheck, decode=ChainlitSignIn.claims, policy=SessionPolicy(settings, revoked),
        cookie_name=_auth_cookie_name, cookie_path=_cookie_path,
    )  # fmt: skip
    from faqbot.web.security import CorsRefusalLog

    app.add_middleware(CorsRefusalLog, allowed=settings.cors_origins)  # names the setting
    app.add_middleware(SecurityHeadersMiddleware, docs_paths=("/api/docs",))  # outermost


# --- The front door on Chainlit's own routes and socket.io (issue 20; SECURITY.md route map) ---
SIGN_IN_PER_ADDRESS = (10, 300)  # attempts per seconds, per client address
SIGN_IN_PER_USER = (20, 900)  # per user name (slower guessing of one account from many places)


def _install_gates(app: Any, sio: Any) -> None:
    """Body cap, rate limits, id checks and the sign-in throttle on Chainlit's HTTP routes
    (faqbot/web/front_door.py); thread ownership, message caps and the rate limit on its
    socket.io events (faqbot/web/socket_gate.py)."""
    from faqbot.web.front_door import FrontDoor
    from faqbot.web.socket_gate import SocketGate

    per_address, per_user = (
        RateLimiter(n, s, settings.redis_url) for n, s in (SIGN_IN_PER_ADDRESS, SIGN_IN_PER_USER)
    )
    app.add_middleware(
        FrontDoor, limiter=limiter, identify=_signed_in_user,
        sign_in_by_address=per_address, sign_in_by_user=per_user,
    )  # fmt: skip
    SocketGate(
        limiter=limiter,
        max_chars=settings.max_question_chars,
        author=settings.app_name,
        thread_author=data_layer.thread_author if data_layer is not None else None,
        live_thread=_live_thread,
        user_of=_handshake_user,
        client_of=_socket_client,
    ).install(sio)


def _user_of_token(token: str | None) -> str | None:
    """The user a Chainlit session token names, when sign-in is on and it is valid."""
    from chainlit.auth import require_login
    from chainlit.auth.jwt import decode_jwt

    if not token or not require_login():
        return None
    try:
        return decode_jwt(token).identifier
    except Exception:  # expired, forged, or signed with another secret: not signed in
        return None


def _signed_in_user(scope: Any) -> str | None:
    """The signed-in user of an HTTP request (Chainlit's cookie, or its Bearer header)."""
    from chainlit.auth import get_token_from_cookies

    request = HTTPConnection(scope)
    bearer = request.headers.get("authorization", "")
    token = bearer[7:] if bearer.lower().startswith("bearer ") else None
    return _user_of_token(token or get_token_from_cookies(dict(request.cookies)))


def _handshake_user(environ: dict[str, Any]) -> str | None:
    """The signed-in user of a socket.io handshake (Chainlit reads only its cookie)."""
    from chainlit.auth import get_token_from_cookies
    from starlette.requests import cookie_parser

    cookies = cookie_parser(environ.get("HTTP_COOKIE", "") or "")
    return _user_of_token(get_token_from_cookies(cookies))


def _live_thread(thread_id: str, session_id: str, user: str | None) -> bool:
    """Another live session (not `session_id`), not of the same signed-in user, holds this
    thread (a session is kept 600 s after its socket closes: the user may resume it)."""
    from chainlit.session import ws_sessions_id

    def foreign(s: Any) -> bool:
        owner = getattr(getattr(s, "user", None), "identifier", None)
        return s.id != session_id and (user is None or owner != user)

    return any(s.thread_id == thread_id and foreign(s) for s in list(ws_sessions_id.values()))


def _socket_client(sid: str) -> str:
    from chainlit.session import WebsocketSession

    session = WebsocketSession.get(sid)
    return _session_client(session) if session is not None else f"socket:{sid}"


def _patch_ui() -> None:
    """Chainlit's page and texts, made true for faqbot (both run at import, before serving).

    - index.html without links to other hosts (KaTeX CDN stylesheet, Google Fonts preconnects):
      an air-gapped install makes no outside request (faqbot/web/airgap.py).
    - The notice under the chat input (translation key `chat.watermark`, "LLMs can make
      mistakes") says what the running mode does: `/project/translations` is answered here, ahead
      of Chainlit's own route, with that key replaced in every language.
    """
    import chainlit.server as cl_server
    from chainlit.config import config as cl_config
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from faqbot.web.airgap import strip_external_links

    template = cl_server.get_html_template
    cl_server.get_html_template = lambda root_path: strip_external_links(template(root_path))

    async def translations(request: Request) -> JSONResponse:
        language = request.query_params.get("language", "en-US")
        if not re.fullmatch(cl_server._language_pattern, language):
            language = "en-US"
        translation = cl_config.load_translation(cl_config.ui.language or language)
        chat = translation.setdefault("chat", {})
        chat["watermark"] = watermark(holder.bot.mode if holder.bot else None)
        return JSONResponse({"translation": translation})

    path = f"{cl_config.run.root_path}/project/translations"
    cl_server.app.router.routes.insert(0, Route(path, translations, methods=["GET"]))


def _install_session_config() -> None:
    """Open websocket sessions without re-entering the event loop (the ~25-users defect).

    Chainlit 2.12's `WebsocketSession.__init__` calls `get_config()`, which, when the app has
    `@cl.set_chat_profiles` and the client names a profile (the UI always does once profiles
    exist), runs `asyncio.get_event_loop().run_until_complete(set_chat_profiles(...))` inside the
    socket.io connect handler. `chainlit run` applies nest_asyncio, so that call runs a nested
    loop iteration, in which the next connecting client's handler does the same: every
    connection being set up concurrently adds a nested loop with about 40 frames (uvicorn,
    Starlette, engineio, socketio, Chainlit) to the stack, and about 24 of them reach Python's
    recursion limit: RecursionError, the connection dies ("Unexpected connection error"), and
    the outer connections wait for the inner ones (last in, first out).

    Here the profile is looked up in `_profiles()` synchronously, so no loop is re-entered; the
    result is the same (the global config, with the profile's `config_overrides` if any).
    """
    from chainlit.config import config as cl_config
    from chainlit.session import WebsocketSession

    def get_config(self: WebsocketSession) -> Any:
        if getattr(self, "config", None):
            return self.config
        cfg = cl_config
        if self.chat_profile:
            try:  # as Chainlit's own: a failing profile lookup leaves the global config
                profile = next((p for p in _profiles() if p.name == self.chat_profile), None)
                overrides = getattr(profile, "config_overrides", None)
                if overrides:
                    cfg = cl_config.with_overrides(overrides)
            except Exception:
                log.exception("chat.profile_config_failed")
        self.config = cfg
        return cfg

    WebsocketSession.get_config = get_config  # type: ignore[method-assign]


def _release_chat_context_on_delete() -> None:
    """Forget a session's messages when Chainlit deletes the session (a leak in Chainlit 2.12).

    Chainlit records every message of a session in `chainlit.chat_context.chat_contexts`, keyed
    by session id, and never removes the entry: measured, every short session left its messages
    (and their objects) in memory for the life of the process (bench/RESULTS.md "Soak").
    """
    from chainlit.chat_context import chat_contexts
    from chainlit.session import WebsocketSession

    delete = WebsocketSession.delete

    async def delete_and_forget(self: WebsocketSession) -> None:
        chat_contexts.pop(self.id, None)
        _disconnected.pop(self.socket_id, None)
        await delete(self)

    WebsocketSession.delete = delete_and_forget  # type: ignore[method-assign]


class _TickClock:
    """Stands in for the `time` module inside chainlit.step and chainlit.message."""

    @staticmethod
    def sleep(seconds: float) -> None:
        """Wait for the clock's next microsecond instead of blocking the event loop `seconds`."""
        until = time.time_ns() + 1_000
        while time.time_ns() < until:
            pass


def _unblock_step_creation() -> None:
    """Create Chainlit steps and messages without stopping the server for a millisecond each.

    Chainlit 2.12's `Step.__init__` and `Message.__init__` call `time.sleep(0.001)` (blocking, in
    the event loop), apparently so that back-to-back objects get distinct `created_at` stamps
    (ISO strings with microseconds). Each question creates four of them (user message, run step,
    Router step, answer), so every question stopped all sessions for 4+ ms, far more on a busy
    machine (profiled under load: the largest single cost of the socket.io path; bench/RESULTS.md
    "Load"). The stand-in waits only until the clock's microsecond changes, which keeps the
    stamps distinct and ordered.
    """
    import importlib

    # import_module: `import chainlit.step as m` would give the `chainlit.step` decorator
    for name in ("chainlit.step", "chainlit.message"):
        setattr(importlib.import_module(name), "time", _TickClock)  # noqa: B010


if not getattr(_kept, "faqbot_installed", False):  # once per server: Starlette refuses
    _mount_http_api()  # middleware once it serves, and the patches must not stack
    _patch_ui()
    _install_session_config()
    _release_chat_context_on_delete()
    _unblock_step_creation()
    _kept.faqbot_installed = True
_kept.faqbot_holder, _kept.faqbot_limiter, _kept.faqbot_tasks = holder, limiter, _background
_kept.faqbot_streams = streams
