"""`create_api`: the JSON/SSE API, the same FaqBot as the chat UI, mounted at /api.

Routes (all under /api): GET /health, POST /chat, POST /chat/stream (server-sent events),
GET /faq/{entry_id}, POST /feedback, GET /analytics (admins only: admin_access.py), GET /metrics.
Errors always use the ErrorResponse shape. Every POST counts toward its client's rate limit and
no body over MAX_BODY_BYTES is read (limits.py). With the app's sign-in on, all but health,
metrics and docs want a signed-in session unless PUBLIC_API=true (api_access.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.ext.asyncio import AsyncEngine

from faqbot.config import Settings
from faqbot.spend import StreamSlots
from faqbot.state.conversations import ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.store.turns import Store
from faqbot.web.admin_access import SignIn
from faqbot.web.analytics import AdminSite, register_analytics
from faqbot.web.api_access import ApiSignIn
from faqbot.web.chat import register_chat
from faqbot.web.context import ApiContext, BotGetter
from faqbot.web.errors import register_error_handlers
from faqbot.web.faq import register_faq
from faqbot.web.feedback import register_feedback
from faqbot.web.health import register_health, register_metrics
from faqbot.web.limits import RequestGate
from faqbot.web.readiness import ReadinessCheck, register_readiness
from faqbot.web.schemas import MAX_QUESTION_CHARS


def create_api(
    get_bot: BotGetter,
    limiter: RateLimiter,
    settings: Settings,
    conversations: ConversationStore,
    *,
    prefix: str = "/api",
    ready_checks: tuple[ReadinessCheck, ...] = (),
    streams: StreamSlots | None = None,
    store: Store | None = None,
    admin: AdminSite | None = None,
    sign_in: SignIn | None = None,
) -> FastAPI:
    """Build the API application (mount it at `prefix`); `ready_checks` join /health/ready.

    `streams` caps the answers a client has in progress; pass the chat UI's to share its cap.
    `store` keeps conversations and feedback in the database (persistence on).
    `admin` serves /analytics (default: the database from settings, no sign-in).
    `sign_in` is the app's sign-in: when it is on, /api wants its session (unless PUBLIC_API).
    """
    slots = streams if streams is not None else StreamSlots(settings.max_streams_per_client)
    ctx = ApiContext(
        get_bot, limiter, settings, conversations, prefix, ready_checks, streams=slots, store=store
    )
    api = FastAPI(
        title=f"{settings.app_name} API",
        version=settings.app_version,
        description="Ask the FAQ bot over HTTP: JSON answers or a server-sent event stream.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        servers=[{"url": prefix}],
    )
    _cap_question_length(api, settings)
    api.add_middleware(RequestGate, limiter=limiter)  # inside CORS: its 413/429 carry CORS
    if sign_in is not None:  # before the gate: an anonymous request is neither read nor counted
        api.add_middleware(
            ApiSignIn, sign_in=sign_in, public=settings.public_api, header=settings.auth_header
        )
    _add_cors(api, settings)
    register_error_handlers(api)
    register_health(api, ctx)
    register_readiness(api, ctx)
    register_chat(api, ctx)
    register_faq(api, ctx)
    register_feedback(api, ctx)
    register_analytics(api, admin or default_admin_site(settings, get_bot))
    register_metrics(api, ctx)  # last: routes keep their order in the schema
    return api


def default_admin_site(
    settings: Settings,
    get_bot: BotGetter,
    sign_in: SignIn | None = None,
    engine: AsyncEngine | None = None,
) -> AdminSite:
    """The analytics over `engine` (default: the database in settings); `sign_in` None = an
    app without sign-in."""
    from faqbot.analytics.engine import open_engine

    return AdminSite(settings, get_bot, lambda: engine or open_engine(settings), sign_in)


def _cap_question_length(api: FastAPI, settings: Settings) -> None:
    """Publish the question length cap the MAX_QUESTION_CHARS setting sets in the schema."""
    default_openapi = api.openapi

    def openapi() -> dict[str, Any]:
        """The generated schema, with the question length cap MAX_QUESTION_CHARS sets."""
        schema = default_openapi()
        question = schema["components"]["schemas"]["ChatRequest"]["properties"]["question"]
        question["maxLength"] = min(MAX_QUESTION_CHARS, settings.max_question_chars)
        return schema

    api.openapi = openapi  # type: ignore[method-assign]


def _add_cors(api: FastAPI, settings: Settings) -> None:
    """The API's CORS policy: the CORS_ORIGINS setting, for GET/POST with JSON bodies."""
    api.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization"],
        expose_headers=["Retry-After"],
        max_age=600,
    )
