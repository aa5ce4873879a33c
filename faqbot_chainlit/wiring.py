"""faqbot's HTTP API, /admin, gates, session check and CORS, plugged into Chainlit's server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from faqbot.answering.bot import FaqBot
from faqbot.config import Settings
from faqbot.spend import StreamSlots
from faqbot.state.ratelimit import RateLimiter
from faqbot.store.chainlit_layer import FaqbotDataLayer
from faqbot.store.database import Database
from faqbot.store.turns import Store
from faqbot_chainlit.sessions import live_thread, socket_client
from faqbot_chainlit.sign_in import ChainlitSignIn, handshake_user, signed_in_user

# The front door on Chainlit's own routes and socket.io (issue 20; SECURITY.md route map)
SIGN_IN_PER_ADDRESS = (10, 300)  # attempts per seconds, per client address
SIGN_IN_PER_USER = (20, 900)  # per user name (slower guessing of one account from many places)


def mount_http_api(
    settings: Settings,
    bot: Callable[[], FaqBot | None],
    limiter: RateLimiter,
    streams: StreamSlots,
    data_layer: FaqbotDataLayer | None,
    store: Store | None,
) -> None:
    """Serve /api ahead of Chainlit's routes, apply CORS_ORIGINS, secure every response.

    Runs at import, before `chainlit run` starts serving: Chainlit builds its middleware stack
    (and the CORSMiddleware holding `config.project.allow_origins`) at the first request.
    """
    from chainlit.config import config as cl_config
    from chainlit.server import app, sio

    from faqbot.state.conversations import ConversationStore
    from faqbot.web.admin_login import AdminLogin
    from faqbot.web.app import create_api, default_admin_site
    from faqbot.web.dispatch import PrefixDispatcher
    from faqbot.web.learn_admin import LearnAdmin
    from faqbot.web.security import (
        CorsRefusalLog,
        SecurityHeadersMiddleware,
        websocket_origin_check,
    )

    database = data_layer.database if data_layer is not None else None
    # Who may embed the copilot / call Chainlit cross-origin: CORS_ORIGINS, not a file edit.
    # Chainlit's HTTP CORSMiddleware was given this very list object when chainlit.server was
    # imported; it reads it when the stack is built, so update it in place.
    cl_config.project.allow_origins[:] = list(settings.cors_origins)
    # Browsers apply no CORS to websockets and Chainlit's socket.io server accepts every origin
    # (cors_allowed_origins=[]): check the Origin of each connection (same origin or listed).
    sio.eio.cors_allowed_origins = websocket_origin_check(settings.cors_origins)
    # /admin and /api/analytics: FAQ owners' analytics, for admins (faqbot/web/admin_access.py)
    engine = database.engine if database is not None else None
    admin = default_admin_site(settings, bot, ChainlitSignIn(), engine)
    api = create_api(
        bot,
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
    for route in AdminLogin(admin).routes(f"{cl_config.run.root_path}/admin"):
        app.router.routes.insert(0, route)
    # /admin/learn: attach visitors' questions to entries (issue 22; faqbot/web/learn_admin.py)
    for route in LearnAdmin(admin).routes(f"{cl_config.run.root_path}/admin/learn"):
        app.router.routes.insert(0, route)
    app.add_middleware(PrefixDispatcher, api=api, prefix="/api")
    install_gates(app, sio, settings, limiter, data_layer)
    _add_session_check(app, settings, database)
    app.add_middleware(CorsRefusalLog, allowed=settings.cors_origins)  # names the setting
    app.add_middleware(SecurityHeadersMiddleware, docs_paths=("/api/docs",))  # outermost


def _add_session_check(app: Any, settings: Settings, database: Database | None) -> None:
    """Erased (delete-user) and removed (AUTH_USERS) users' sessions end: outside the gates,
    which then see such a request without its session (faqbot/web/session_check.py)."""
    from chainlit.auth.cookie import _auth_cookie_name, _cookie_path

    from faqbot.store.revocations import RevocationList
    from faqbot.web.session_check import SessionCheck, SessionPolicy

    revoked = RevocationList(database.engine) if database is not None else None
    app.add_middleware(
        SessionCheck, decode=ChainlitSignIn.claims, policy=SessionPolicy(settings, revoked),
        cookie_name=_auth_cookie_name, cookie_path=_cookie_path,
    )  # fmt: skip


def install_gates(
    app: Any,
    sio: Any,
    settings: Settings,
    limiter: RateLimiter,
    data_layer: FaqbotDataLayer | None,
) -> None:
    """Body cap, rate limits, id checks and the sign-in throttle on Chainlit's HTTP routes
    (faqbot/web/front_door.py); thread ownership, message caps and the rate limit on its
    socket.io events (faqbot/web/socket_gate.py)."""
    from faqbot.web.front_door import FrontDoor
    from faqbot.web.socket_gate import SocketGate

    per_address, per_user = (
        RateLimiter(n, s, settings.redis_url) for n, s in (SIGN_IN_PER_ADDRESS, SIGN_IN_PER_USER)
    )
    app.add_middleware(
        FrontDoor, limiter=limiter, identify=signed_in_user,
        sign_in_by_address=per_address, sign_in_by_user=per_user,
    )  # fmt: skip
    SocketGate(
        limiter=limiter,
        max_chars=settings.max_question_chars,
        author=settings.app_name,
        thread_author=data_layer.thread_author if data_layer is not None else None,
        live_thread=live_thread,
        user_of=handshake_user,
        client_of=socket_client,
    ).install(sio)
