"""Sign-in: Chainlit's callbacks (off unless configured) and who a request is signed in as."""

from __future__ import annotations

import asyncio
from typing import Any

import chainlit as cl
from chainlit.oauth_providers import get_configured_oauth_providers
from starlette.requests import HTTPConnection

from faqbot.config import Settings
from faqbot.logs import get_logger
from faqbot.ops.auth_secret import ensure_auth_secret
from faqbot.passwords import verify_password
from faqbot.web.admin_access import Viewer

log = get_logger("faqbot.chainlit")


def register_callbacks(settings: Settings) -> None:
    """Sign-in is on with AUTH_USERS, AUTH_HEADER, or a Chainlit OAuth provider's variables."""
    ensure_auth_secret(settings)  # sign-in on, no CHAINLIT_AUTH_SECRET: the one kept in DATA_DIR
    if settings.auth_users:

        @cl.password_auth_callback
        async def password_sign_in(username: str, password: str) -> cl.User | None:
            """AUTH_USERS holds only PBKDF2 hashes; one check takes ~0.3 s of CPU: off the loop."""
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

    # Chainlit's OAUTH_<PROVIDER>_CLIENT_ID / _SECRET variables are set
    if get_configured_oauth_providers():  # type: ignore[no-untyped-call]

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


class ChainlitSignIn:
    """Who is signed in to Chainlit (its session cookie, or `Authorization: Bearer <its JWT>`),
    for /admin, /api and the session check (faqbot/web/session_check.py)."""

    def enabled(self) -> bool:
        from chainlit.auth import require_login

        return bool(require_login())  # type: ignore[no-untyped-call]

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
        return self.identify(dict(request.cookies), request.headers.get("authorization", ""))

    @classmethod
    def identify(cls, cookies: dict[str, str], authorization: str = "") -> Viewer | None:
        """The user a valid session token names: the cookie's, else a Bearer header's."""
        from chainlit.auth import get_token_from_cookies

        for token in (
            get_token_from_cookies(cookies),
            authorization[7:].strip() if authorization[:7].lower() == "bearer " else None,
        ):
            try:
                claims = cls.claims(token) if token else {}
            except Exception:  # expired, forged, or signed with another secret: not signed in
                claims = {}
            identifier, metadata = claims.get("identifier"), claims.get("metadata")
            if isinstance(identifier, str) and identifier:
                return Viewer(identifier, dict(metadata) if isinstance(metadata, dict) else {})
        return None


def _signed_in(cookies: dict[str, str], authorization: str = "") -> str | None:
    """The signed-in user's identifier, when sign-in is on and the session is valid."""
    from chainlit.auth import require_login

    if not require_login():  # type: ignore[no-untyped-call]
        return None
    viewer = ChainlitSignIn.identify(cookies, authorization)
    return viewer.identifier if viewer is not None else None


def signed_in_user(scope: Any) -> str | None:
    """The signed-in user of an HTTP request (Chainlit's cookie, or its Bearer header)."""
    request = HTTPConnection(scope)
    return _signed_in(dict(request.cookies), request.headers.get("authorization", ""))


def handshake_user(environ: dict[str, Any]) -> str | None:
    """The signed-in user of a socket.io handshake (Chainlit reads only its cookie)."""
    from starlette.requests import cookie_parser

    return _signed_in(cookie_parser(environ.get("HTTP_COOKIE", "") or ""))
