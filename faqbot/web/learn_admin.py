"""GET and POST /admin/learn: owners attach visitors' questions to entries (issue 22).

Behind the admin gate (admin_access.py: an admin's session, the admin cookie or the token), and
every POST also against cross-site requests: the form's `csrf` field must equal the
`faqbot_csrf` cookie this page set (random, HttpOnly, SameSite=Strict, scoped to this path: a
page on another site can neither read nor send it), and a browser's Origin / Sec-Fetch-Site must
say the form came from this site. Anything else is 403 and changes nothing.

POST `do` = attach (question, entry_id), out_of_scope (question) or remove (id). Before an
attach or a mark is accepted, `faqbot.answering.learning_check.conflicts` asks whether it would
make other entries' questions answer wrongly; if so nothing is stored and a confirmation lists
what would break, with an explicit "anyway" (`force=1`). A change is stored in the database
(faqbot/store/learned.py) and this process's poller is nudged: this replica serves it at once,
the others at their next poll. Success redirects (303) to the page; invalid input re-shows
it with the reason (422).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from html import escape
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from faqbot.analytics.learning import MAX_SUGGESTIONS, suggestions
from faqbot.analytics.report import parse_since
from faqbot.answering.bot import FaqBot
from faqbot.answering.learning_check import Conflict, conflicts
from faqbot.errors import ConfigError
from faqbot.knowledge.learned import Kind, LearnedPhrasing, PhrasingError, phrasing_key
from faqbot.logs import get_logger
from faqbot.ops.learning import nudge_all
from faqbot.store import learned as store
from faqbot.web.admin_access import AccessDenied
from faqbot.web.analytics import AdminSite, denied_page, message_page
from faqbot.web.learn_page import conflict_page, learn_page

log = get_logger("faqbot.web.learn")
CSRF_COOKIE = "faqbot_csrf"
NO_STORE = {"Cache-Control": "no-store"}
MAX_FIELD_CHARS = 4000
DEFAULT_PERIOD = "30d"
PICKER_OPTIONS = 20_000


class Forbidden(Exception):
    """A POST that may be cross-site."""


class LearnAdmin:
    """The "Learn from visitors" page and its form posts."""

    def __init__(self, site: AdminSite) -> None:
        self.site = site

    def routes(self, path: str = "/admin/learn") -> list[Route]:
        return [
            Route(path, self.page, methods=["GET"]),
            Route(path, self.submit, methods=["POST"]),
        ]

    async def _who(self, request: Request) -> str | Response:
        try:
            who = await self.site.gate.check(request)
        except AccessDenied as exc:
            if exc.status != 401:
                return denied_page(exc)
            sign_in = request.url.path.rsplit("/learn", 1)[0]  # /admin: its token form, sign-in
            html = (
                '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in '
                f"required</title></head><body><h1>Sign-in required</h1><p>{escape(exc.message)}"
                f' <a id="sign-in" href="{escape(sign_in, quote=True)}">Sign in on the admin '
                "page</a>, then come back.</p></body></html>"
            )
            return HTMLResponse(html, 401, headers={**NO_STORE, "WWW-Authenticate": "Bearer"})
        return {"token": "admin (token)", "open": "admin (open)"}.get(who, who)

    def _ready(self) -> tuple[FaqBot, AsyncEngine] | Response:
        bot = self.site.bot()
        if bot is None:
            return _plain("Unavailable", "No valid FAQ is loaded yet.", 503)
        try:
            engine = self.site.engine()
        except Exception:
            return _plain("Unavailable", "The database could not be opened.", 503)
        return bot, engine

    async def page(self, request: Request) -> Response:
        """GET: suggestions, attached phrasings, out-of-scope marks."""
        who = await self._who(request)
        if isinstance(who, Response):
            return who
        done = request.query_params.get("done")
        return await self._render(request, done=done)

    async def _render(
        self, request: Request, *, error: str | None = None, done: str | None = None
    ) -> Response:
        ready = self._ready()
        if isinstance(ready, Response):
            return ready
        bot, engine = ready
        period = request.query_params.get("since", DEFAULT_PERIOD)
        try:
            parse_since(period)
        except ConfigError as exc:
            return _plain("Invalid period", str(exc), 422)
        known = {
            phrasing_key(q) for e in bot.kb.entries for q in (e.question, *e.alternate_questions)
        }
        try:
            listed = await suggestions(
                engine, period, known=known, limit=_rows(len(bot.kb.entries))
            )
            rows = await store.live(engine)
        except Exception as exc:
            log.warning("learn.database_error", error=f"{type(exc).__name__}"[:200])
            return _plain("Unavailable", "The database could not be read; see the log.", 503)
        csrf = _csrf_of(request)
        html = learn_page(
            app_name=self.site.settings.app_name, kb=bot.kb, suggestions=listed, learned=rows,
            action=request.url.path, csrf=csrf, period=period, error=error, done=done,
        )  # fmt: skip
        response = HTMLResponse(html, 422 if error else 200, headers=NO_STORE)
        _set_csrf(response, request, csrf)
        return response

    async def submit(self, request: Request) -> Response:
        """POST: attach, mark out of scope, or remove; see the module docstring."""
        who = await self._who(request)
        if isinstance(who, Response):
            return who
        form = await request.form(max_files=0, max_fields=8)
        try:
            _check_same_site(request, form)
        except Forbidden as exc:
            log.warning("learn.csrf_refused", reason=str(exc))
            return _plain("Forbidden", f"Refused: {exc}. Reload the page and try again.", 403)
        ready = self._ready()
        if isinstance(ready, Response):
            return ready
        bot, engine = ready
        do = _field(form, "do")
        try:
            if do == "remove":
                await store.remove(engine, _field(form, "id"), removed_by=who)
                return self._done(request, "removed")
            if do not in ("attach", "out_of_scope"):
                return await self._render(request, error="Unknown action.")
            question, entry_id = _field(form, "question"), _field(form, "entry_id")
            kind: Kind = "phrasing" if do == "attach" else "out_of_scope"
            if kind == "phrasing" and entry_id not in bot.kb.by_id:
                raise store.LearnError("Choose the FAQ entry that answers this question.")
            candidate = LearnedPhrasing(entry_id if kind == "phrasing" else "", question, kind)
            found = await asyncio.to_thread(conflicts, bot, bot.kb, candidate)
            duplicate = [c for c in found if c.reason == "duplicate"]
            if duplicate:
                raise store.LearnError(
                    f"That question is already a question of another entry "
                    f"({bot.kb.by_id[duplicate[0].expected_entry_id].question!r})."
                )
            if found and _field(form, "force") != "1":
                return self._conflicts(request, bot, question, entry_id, do, found)
            await store.add(engine, question, entry_id=entry_id, kind=kind, created_by=who)
        except (PhrasingError, store.LearnError) as exc:
            return await self._render(request, error=str(exc))
        log.info("learn.changed", action=do, by=who, forced=bool(_field(form, "force")))
        return self._done(request, "attached" if do == "attach" else "out_of_scope")

    def _done(self, request: Request, what: str) -> Response:
        nudge_all()  # this replica serves it now; the others at their next poll
        return RedirectResponse(f"{request.url.path}?done={what}", 303, headers=NO_STORE)

    def _conflicts(
        self, request: Request, bot: FaqBot, question: str, entry_id: str, do: str,
        found: list[Conflict],
    ) -> Response:  # fmt: skip
        kb = bot.kb
        rows = [
            (c.question, c.expected_entry_id,
             kb.by_id[c.now_entry_id].question if c.now_entry_id in kb.by_id else "")
            for c in found
        ]  # fmt: skip
        csrf = _csrf_of(request)
        html = conflict_page(
            app_name=self.site.settings.app_name, kb=kb, question=question, entry_id=entry_id,
            kind=do, conflicts=rows, action=request.url.path, csrf=csrf,
        )  # fmt: skip
        response = HTMLResponse(html, 409, headers=NO_STORE)
        _set_csrf(response, request, csrf)
        return response


def _rows(entries: int) -> int:
    """Suggestions shown at once: each carries a picker of every entry, so a large FAQ gets
    fewer rows (the page stays under about PICKER_OPTIONS options); the rest come next time."""
    return max(10, min(MAX_SUGGESTIONS, PICKER_OPTIONS // max(entries, 1)))


def _plain(title: str, text: str, status: int) -> Response:
    return HTMLResponse(message_page(title, text), status, headers=NO_STORE)


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value[:MAX_FIELD_CHARS] if isinstance(value, str) else ""


def _csrf_of(request: Request) -> str:
    """The page's CSRF token: the cookie's, or a new one."""
    token = request.cookies.get(CSRF_COOKIE, "")
    return token if 20 <= len(token) <= 100 else secrets.token_urlsafe(32)


def _set_csrf(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        CSRF_COOKIE, token, path=request.url.path, httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )  # fmt: skip


def _check_same_site(request: Request, form: FormData) -> None:
    """Raise Forbidden unless the post carries this site's token and no browser says it came
    from another site."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise Forbidden(f"a {site} request")
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden("the form came from another site")
    cookie, sent = request.cookies.get(CSRF_COOKIE, ""), _field(form, "csrf")
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise Forbidden("the form's security token is missing or stale")
