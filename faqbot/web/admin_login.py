"""/admin from a browser: a token form, and the way to sign in as an admin (issue 20, item 15).

A browser cannot send `Authorization: Bearer <ADMIN_TOKEN>`, so with ANALYTICS_ENABLED and a
token but sign-in off /admin was unreachable from one. Now, when the gate says 401, GET /admin
shows a page with a form for the token (when ADMIN_TOKEN is set) and, with sign-in on, a link to
the sign-in page (an admin user then sees /admin on their session). POST /admin checks the token
in constant time and, when it matches, sets the `faqbot_admin` cookie (admin_access.py: HttpOnly,
SameSite=Strict, Secure when the request came over HTTPS; 8 hours) and redirects to GET /admin.
A wrong token gets the form again, 401. Every other answer of GET /admin is the admin site's.

No script (the CSP allows none): a plain HTML form, posting to the same path.
"""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from faqbot.logs import get_logger
from faqbot.web.admin_access import ADMIN_COOKIE, ADMIN_COOKIE_SECONDS, AccessDenied, admin_cookie
from faqbot.web.analytics import AdminSite

log = get_logger("faqbot.web.admin_login")
MAX_TOKEN_CHARS = 512
NO_STORE = {"Cache-Control": "no-store"}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem;"
    "color:#1f2937}label{display:block;margin:.8rem 0 .3rem}input{width:100%;padding:.45rem;"
    "box-sizing:border-box}button{margin-top:.8rem;padding:.45rem 1rem}.error{color:#b91c1c}"
)


def _here(request: Request) -> str:
    """This page's path and query (the period chosen), for the form and the redirect."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


class AdminLogin:
    """GET and POST /admin in front of the admin site's page."""

    def __init__(self, site: AdminSite, sign_in_path: str = "/login") -> None:
        self.site = site
        self.sign_in_path = sign_in_path

    def routes(self, path: str = "/admin") -> list[Route]:
        return [
            Route(path, self.page, methods=["GET"]),
            Route(path, self.submit, methods=["POST"]),
        ]

    def _signs_in(self) -> bool:
        sign_in = self.site.gate.sign_in
        return sign_in is not None and sign_in.enabled()

    async def page(self, request: Request) -> Response:
        """The report for admins; the sign-in page instead of a bare 401."""
        try:
            await self.site.gate.check(request)
        except AccessDenied as exc:
            if exc.status == 401:
                return self._sign_in_page(_here(request), None)
        return await self.site.page(request)

    async def submit(self, request: Request) -> Response:
        """The token form: a right token sets the cookie, a wrong one shows the form again."""
        if self.site.settings.admin_token is None:
            return HTMLResponse("Not Found", 404, headers=NO_STORE)
        form = await request.form(max_files=0, max_fields=4)
        token = form.get("token")
        text = token.strip() if isinstance(token, str) else ""
        if len(text) > MAX_TOKEN_CHARS or not self.site.gate.token_ok(text):
            log.warning("admin.token_refused")
            return self._sign_in_page(_here(request), "That is not the admin token.")
        response = RedirectResponse(_here(request), status_code=303, headers=NO_STORE)
        response.set_cookie(
            ADMIN_COOKIE,
            admin_cookie(text),
            max_age=ADMIN_COOKIE_SECONDS,
            path=request.url.path,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        log.info("admin.token_accepted")
        return response

    def _sign_in_page(self, path: str, error: str | None) -> HTMLResponse:
        parts = [
            '<!doctype html><html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(self.site.settings.app_name)}: admin</title>",
            f"<style>{_STYLE}</style></head><body><h1>Analytics: sign-in required</h1>",
        ]
        if error:
            parts.append(f'<p class="error" id="error">{escape(error)}</p>')
        if self._signs_in():
            parts.append(
                f'<p>Sign in as an admin user (<a id="sign-in" href="{escape(self.sign_in_path)}">'
                "sign in</a>), then open this page again.</p>"
            )
        if self.site.settings.admin_token is not None:
            parts.append(
                f'<form method="post" action="{escape(path)}" id="token-form">'
                '<label for="token">Admin token</label>'
                '<input id="token" name="token" type="password" autocomplete="current-password"'
                f' required maxlength="{MAX_TOKEN_CHARS}">'
                '<button type="submit">Open the analytics</button></form>'
            )
        parts.append("</body></html>")
        headers = {**NO_STORE, "WWW-Authenticate": "Bearer"}
        return HTMLResponse("".join(parts), 401, headers=headers)
