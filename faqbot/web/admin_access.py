"""Who may see the FAQ owners' analytics (/api/analytics and /admin).

- Sign-in on: a signed-in admin (an identifier in ADMIN_USERS, or a user whose metadata says
  `role: admin`), or a request carrying `Authorization: Bearer <ADMIN_TOKEN>`. Anyone else gets
  401 (not signed in, wrong token) or 403 (signed in, not an admin).
- Sign-in off: the analytics do not exist (404) unless ANALYTICS_ENABLED=true; then they need
  the ADMIN_TOKEN if one is set, and are open to anyone who can reach the server if not.

The token is compared in constant time. A browser cannot send a header, so /admin also offers a
form for the token (admin_login.py): it sets the `faqbot_admin` cookie (HttpOnly, SameSite=
Strict, Secure over HTTPS), which is not the token but an expiry and an HMAC of it keyed by the
token: it lasts ADMIN_COOKIE_SECONDS and dies with a change of ADMIN_TOKEN. Who is signed in is
asked of a `SignIn` (the Chainlit app passes one reading Chainlit's session cookie); faqbot
itself knows nothing of Chainlit.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.requests import HTTPConnection

from faqbot.config import Settings

ADMIN_COOKIE = "faqbot_admin"
ADMIN_COOKIE_SECONDS = 8 * 3600


def _cookie_signature(token: str, expires: int) -> str:
    message = f"faqbot-admin-cookie:{expires}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def admin_cookie(token: str, now: float | None = None) -> str:
    """The `faqbot_admin` cookie's value for whoever proved they hold `token`."""
    expires = int(now if now is not None else time.time()) + ADMIN_COOKIE_SECONDS
    return f"{expires}.{_cookie_signature(token, expires)}"


def admin_cookie_ok(value: str | None, token: str, now: float | None = None) -> bool:
    """An unexpired cookie made by `admin_cookie` for this very token (constant-time)."""
    expires_text, _, signature = (value or "").partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12:
        return False
    expires = int(expires_text)
    if expires <= (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(signature.encode(), _cookie_signature(token, expires).encode())


@dataclass(frozen=True)
class Viewer:
    """A signed-in user, as the sign-in knows them."""

    identifier: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


class SignIn(Protocol):
    """The app's sign-in, as far as the admin pages need it."""

    def enabled(self) -> bool:
        """Whether users must sign in (Chainlit's password, header or OAuth sign-in)."""
        ...

    async def viewer(self, request: HTTPConnection) -> Viewer | None:
        """The signed-in user of this request, or None."""
        ...


class AccessDenied(Exception):
    """The request may not see the analytics: `status` 401, 403 or 404."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bearer_token(request: HTTPConnection) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


@dataclass(frozen=True)
class AdminGate:
    settings: Settings
    sign_in: SignIn | None = None

    def token_ok(self, token: str | None) -> bool:
        expected = self.settings.admin_token
        if expected is None or token is None:
            return False
        return hmac.compare_digest(token.encode(), expected.get_secret_value().encode())

    def cookie_ok(self, request: HTTPConnection) -> bool:
        expected = self.settings.admin_token
        value = request.cookies.get(ADMIN_COOKIE)
        return expected is not None and admin_cookie_ok(value, expected.get_secret_value())

    def is_admin(self, viewer: Viewer) -> bool:
        role = viewer.metadata.get("role") if isinstance(viewer.metadata, Mapping) else None
        return viewer.identifier in self.settings.admin_users or role == "admin"

    async def check(self, request: HTTPConnection) -> str:
        """Who is let in ("token", "open" or the admin's identifier); else AccessDenied."""
        if self.token_ok(bearer_token(request)) or self.cookie_ok(request):
            return "token"
        if self.sign_in is not None and self.sign_in.enabled():
            viewer = await self.sign_in.viewer(request)
            if viewer is None:
                raise AccessDenied(401, "Sign in as an admin, or send the admin token.")
            if not self.is_admin(viewer):
                raise AccessDenied(403, "Only admins may see the analytics.")
            return viewer.identifier
        if not self.settings.analytics_enabled:
            raise AccessDenied(404, "Not Found")
        if self.settings.admin_token is not None:
            raise AccessDenied(
                401, "Enter the admin token (or send it as Authorization: Bearer ...)."
            )
        return "open"
