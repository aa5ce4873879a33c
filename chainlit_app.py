"""Chainlit face of faqbot: renders FaqBot's event stream; no business logic lives here.

Run: `chainlit run chainlit_app.py` (offline by default; set OPENAI_API_KEY for the LLM path).
"""

from __future__ import annotations

import asyncio
from typing import Any

import chainlit as cl
import structlog

from faqbot.config import get_settings
from faqbot.domain import ChatTurn
from faqbot.errors import FaqBotError, InputError, RateLimitedError
from faqbot.events import Done, Fallback, RouteDecided, Sources, Token, TurnResult
from faqbot.logs import configure_logging, get_logger
from faqbot.ratelimit import RateLimiter
from faqbot.reload import BotHolder, watch_knowledge
from faqbot.render import footer_markdown, route_markdown, welcome_markdown

settings = get_settings()
configure_logging(settings.log_level, settings.log_format)
log = get_logger("faqbot.chainlit")
holder = BotHolder(settings)  # holder.bot is None while no valid FAQ has loaded
limiter = RateLimiter(settings.rate_limit_requests, settings.rate_limit_window, settings.redis_url)
_background: set[asyncio.Task[None]] = set()
HISTORY_LIMIT = 20  # turns kept per session (the router sees LLM_HISTORY_TURNS of them)
PROFILE = "FAQ assistant"
UNAVAILABLE = (
    "Sorry, the FAQ is not available right now. An operator has been notified; "
    "please try again later or contact support."
)


def _starters() -> list[cl.Starter]:
    """Two starters per category, taken from the FAQ itself."""
    out: list[cl.Starter] = []
    if holder.bot is None:
        return out
    for category in holder.bot.kb.categories.values():
        for entry in category.entries[:2]:
            out.append(cl.Starter(label=entry.question, message=entry.question))
    return out


@cl.set_chat_profiles
async def chat_profiles(user: cl.User | None = None, language: str | None = None) -> list[Any]:
    """One profile: its description is the welcome screen (a message would hide the starters)."""
    return [
        cl.ChatProfile(
            name=PROFILE,
            markdown_description=welcome_markdown(holder.bot) if holder.bot else UNAVAILABLE,
            icon="/public/logo.svg",
            default=True,
            starters=_starters(),
        )
    ]


@cl.on_app_startup
async def start_faq_watcher() -> None:
    """Reload the FAQ on file changes; a bad edit keeps the last good version serving."""
    task = asyncio.get_running_loop().create_task(
        watch_knowledge(settings.faq_dir, holder.refresh), name="faq-watcher"
    )
    _background.add(task)  # keep a reference: the loop holds tasks only weakly


@cl.on_chat_start
async def on_chat_start() -> None:
    cl.user_session.set("history", [])
    mode = holder.bot.mode if holder.bot else "unavailable"
    log.info("chat.start", conversation_id=cl.context.session.thread_id, mode=mode)


def _client_key() -> str:
    session = cl.context.session
    user = getattr(session, "user", None)
    if user is not None:
        return f"user:{user.identifier}"
    environ: dict[str, Any] = getattr(session, "environ", {}) or {}
    return f"ip:{environ.get('REMOTE_ADDR') or session.id}"


def _server_origin() -> str:
    """This server's own origin as the browser reached it (for links inside the widget)."""
    environ: dict[str, Any] = getattr(cl.context.session, "environ", {}) or {}
    proto = "https" if environ.get("HTTP_X_FORWARDED_PROTO") == "https" else "http"
    return f"{proto}://{environ.get('HTTP_HOST', '127.0.0.1')}"


async def _reply(text: str) -> None:
    await cl.Message(content=text, author=settings.app_name).send()


@cl.on_message
async def on_message(message: cl.Message) -> None:
    session = cl.context.session
    structlog.contextvars.bind_contextvars(conversation_id=session.thread_id, session_id=session.id)
    try:
        await limiter.check(_client_key())
    except RateLimitedError as exc:
        await _reply(exc.user_message)
        return
    history: list[ChatTurn] = cl.user_session.get("history") or []
    answer = cl.Message(content="", author=settings.app_name)
    step: cl.Step | None = None
    result: TurnResult | None = None
    notice: str | None = None
    brief = getattr(session, "client_type", "") == "copilot"
    try:
        bot = holder.bot
        if bot is None:
            await _reply(UNAVAILABLE)
            return
        stream = bot.answer(message.content, history, brief=brief)
        async for event in stream:
            if isinstance(event, RouteDecided):
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
                    await step.send()
                else:
                    step.output = route_markdown(event)
                    await step.update()
            elif isinstance(event, Fallback):
                notice = event.message
                if answer.content:  # discard a partial LLM answer; the offline one replaces it
                    answer.content = ""
                    await answer.update()
            elif isinstance(event, Token):
                await answer.stream_token(event.text)
            elif isinstance(event, Sources):
                pass
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
    try:
        links = _server_origin() if brief else None
        answer.content = result.answer + "\n\n" + footer_markdown(result, notice, links)
    except Exception:  # the answer itself is complete: never lose it over its footer
        log.exception("chat.footer_failed")
        answer.content = result.answer
    await answer.send()
    history.extend([ChatTurn("user", result.question), ChatTurn("assistant", result.answer)])
    cl.user_session.set("history", history[-HISTORY_LIMIT:])


async def _finish_broken(answer: cl.Message, explanation: str) -> None:
    """Never leave a half-finished message without saying why."""
    if answer.content:
        answer.content += f"\n\n_{explanation}_"
        await answer.send()
    else:
        await _reply(explanation)


# --- HTTP API, security headers, CORS (see faqbot/http.py) ---
def _mount_http_api() -> None:
    """Serve /api ahead of Chainlit's routes, apply CORS_ORIGINS, secure every response.

    Runs at import, before `chainlit run` starts serving: Chainlit builds its middleware stack
    (and the CORSMiddleware holding `config.project.allow_origins`) at the first request.
    """
    from chainlit.config import config as cl_config
    from chainlit.server import app, sio

    from faqbot.conversations import ConversationStore
    from faqbot.http import PrefixDispatcher, create_api
    from faqbot.security import SecurityHeadersMiddleware, websocket_origin_check

    # Who may embed the copilot / call Chainlit cross-origin: CORS_ORIGINS, not a file edit.
    # Chainlit's HTTP CORSMiddleware was given this very list object when chainlit.server was
    # imported; it reads it when the stack is built, so update it in place.
    cl_config.project.allow_origins[:] = list(settings.cors_origins)
    # Browsers apply no CORS to websockets and Chainlit's socket.io server accepts every origin
    # (cors_allowed_origins=[]): check the Origin of each connection (same origin or listed).
    sio.eio.cors_allowed_origins = websocket_origin_check(settings.cors_origins)
    api = create_api(lambda: holder.bot, limiter, settings, ConversationStore())
    app.add_middleware(PrefixDispatcher, api=api, prefix="/api")
    app.add_middleware(SecurityHeadersMiddleware, docs_paths=("/api/docs",))  # outermost


_mount_http_api()
