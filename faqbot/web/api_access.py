"""With sign-in on, /api wants a signed-in session too (issue 20, item 8).

A deployment that turns sign-in on expects the bot, and the LLM tokens it spends, to be behind
it; before this, anonymous `POST /api/chat` and `/api/feedback` still answered. Now, when the
app's sign-in is on (password, header or OAuth) and PUBLIC_API is not true, every /api route
but the operational ones wants the same session the chat UI has: Chainlit's cookie, or
`Authorization: Bearer <the session JWT>` for scripts, or, with AUTH_HEADER, the header the
authenticating proxy sets (as it does for the chat UI). Without one the answer is 401 with the
ErrorResponse body, before the request is read or counted.

Always open: health (/health, /health/live, /health/ready), /metrics, the docs (/docs,
/openapi.json) for load balancers, monitoring and developers; /analytics has its own gate
(admin_access.py: an admin session or the ADMIN_TOKEN).
"""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from faqbot.store.requester import Requester, current_requester
from faqbot.web.admin_access import SignIn
from faqbot.web.errors import error_response

PUBLIC_PATHS = frozenset(
    {
        "/health",
        "/health/live",
        "/health/ready",
        "/metrics",
        "/docs",
        "/docs/oauth2-redirect",
        "/openapi.json",
        "/analytics",
    }
)


class ApiSignIn:
    """Pure ASGI, inside the API's CORS (a 401 carries the CORS headers a widget needs)."""

    def __init__(
        self, app: ASGIApp, *, sign_in: SignIn, public: bool = False, header: str | None = None
    ) -> None:
        self.app = app
        self.sign_in = sign_in
        self.public = public
        self.header = header  # AUTH_HEADER: the proxy's word for who this is

    async def _user(self, request: HTTPConnection) -> str | None:
        """Who is signed in: the proxy's header (AUTH_HEADER), else the session's user."""
        if self.header and (name := request.headers.get(self.header, "").strip()):
            return name
        viewer = await self.sign_in.viewer(request)
        return viewer.identifier if viewer is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.public or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        root, path = str(scope.get("root_path", "")), str(scope.get("path", ""))
        relative = path[len(root) :] if root and path.startswith(root) else path
        if relative.rstrip("/") in PUBLIC_PATHS or not self.sign_in.enabled():
            await self.app(scope, receive, send)
            return
        user = await self._user(HTTPConnection(scope))
        if user is None:
            response = error_response(
                401,
                "Sign-in required",
                "SIGN_IN_REQUIRED",
                "Sign in first: send the session cookie, or Authorization: Bearer <session token>.",
                **{"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"},
            )
            await response(scope, receive, send)
            return
        # the data layer's rules (one rating per answer per client, owners only) know who asks
        token = current_requester.set(Requester(f"user:{user}", user))
        try:
            await self.app(scope, receive, send)
        finally:
            current_requester.reset(token)
