"""Every change faqbot makes to Chainlit's own code at run time, in one place.

Each patch says what it changes, why, the upstream issue or behaviour, and when it can go. They
were written against Chainlit PATCHED_FOR: `check_version()` warns at start-up when another
version is installed (tests/test_chainlit_patches.py fails then), so that an upgrade is met by
re-reading each note below, not by a patch silently hitting code that moved.

- `strip_page_links`: `chainlit.server.get_html_template`; goes when index.html links no CDN;
- `serve_watermark`: shadows route `/project/translations`; stays (faqbot's own text);
- `sync_session_config`: `WebsocketSession.get_config`; goes when it stops nesting loops;
- `forget_chat_context`: `WebsocketSession.delete`; goes when Chainlit #2951 is fixed;
- `unblock_step_creation`: `time` in chainlit.step/.message; goes with `time.sleep(0.001)`.

One more lives in `faqbot/ops/serve.py` (`_mkdir_redirected`), because it must run before
Chainlit is imported at all: `Path.mkdir` is swapped while `chainlit.config` is imported, so
Chainlit's files folder (`<app root>/.files`, made at import) is created under DATA_DIR. It can
go when Chainlit lets the files folder be configured.
"""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from faqbot.logs import get_logger
from faqbot.web.login_labels import name_sign_in

PATCHED_FOR = "2.12.0"  # the Chainlit version every patch below was written against and tested
log = get_logger("faqbot.chainlit")


def installed_version() -> str:
    import chainlit

    return str(chainlit.__version__)


def check_version() -> bool:
    """Warn when the installed Chainlit is not PATCHED_FOR; True when it is."""
    found = installed_version()
    if found == PATCHED_FOR:
        return True
    log.warning(
        "chainlit.unexpected_version", installed=found, patched_for=PATCHED_FOR,
        hint="re-check every patch in faqbot_chainlit/patches.py, then update PATCHED_FOR",
    )  # fmt: skip
    return False


def apply(
    profiles: Callable[[], list[Any]],
    watermark: Callable[[], str],
    disconnected: MutableMapping[str, None],
) -> None:
    """Check the version, then install every patch (once per server: they must not stack)."""
    check_version()
    strip_page_links()
    serve_watermark(watermark)
    sync_session_config(profiles)
    forget_chat_context(disconnected)
    unblock_step_creation()


def strip_page_links() -> None:
    """index.html without links to other hosts.

    Why: Chainlit's page links the KaTeX stylesheet on a CDN and preconnects to Google Fonts; an
    air-gapped install must make no outside request (faqbot/web/airgap.py, SECURITY.md).
    Upstream: Chainlit's behaviour (its frontend build); no upstream issue known.
    Can go: when Chainlit's index.html links only its own server.
    """
    import chainlit.server as cl_server

    from faqbot.web.airgap import strip_external_links

    template: Callable[[str], str] = cl_server.get_html_template
    cl_server.get_html_template = lambda root_path: strip_external_links(template(root_path))


def serve_watermark(watermark: Callable[[], str]) -> None:
    """`/project/translations` answered here, ahead of Chainlit's route, `chat.watermark` replaced.

    Why: the notice under the chat input ("LLMs can make mistakes") must say what the running
    mode does (offline answers come verbatim from the FAQ), in every language.
    Upstream: Chainlit's behaviour: the text is a translation key, with no per-app hook.
    Can go: if Chainlit lets an app set the watermark text at run time. Re-check on upgrade:
    this copies Chainlit's own route (`_language_pattern`, `load_translation`).
    """
    import chainlit.server as cl_server
    from chainlit.config import config as cl_config
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def translations(request: Request) -> JSONResponse:
        language = request.query_params.get("language", "en-US")
        if not re.fullmatch(cl_server._language_pattern, language):
            language = "en-US"
        translation = name_sign_in(  # users sign in with names, not e-mail addresses
            cl_config.load_translation(cl_config.ui.language or language),
            cl_config.ui.language or language,
        )
        translation.setdefault("chat", {})["watermark"] = watermark()
        return JSONResponse({"translation": translation})

    path = f"{cl_config.run.root_path}/project/translations"
    cl_server.app.router.routes.insert(0, Route(path, translations, methods=["GET"]))


def sync_session_config(profiles: Callable[[], list[Any]]) -> None:
    """Open websocket sessions without re-entering the event loop (the ~25-users defect).

    Why: Chainlit 2.12's `WebsocketSession.__init__` calls `get_config()`, which, when the app
    has `@cl.set_chat_profiles` and the client names a profile (the UI always does once profiles
    exist), runs `asyncio.get_event_loop().run_until_complete(set_chat_profiles(...))` inside the
    socket.io connect handler. `chainlit run` applies nest_asyncio, so each connection being set
    up concurrently adds a nested loop of about 40 frames; about 24 of them reach Python's
    recursion limit: RecursionError, "Unexpected connection error" (tests/test_ws_load.py).
    Here the profile comes from `profiles()` synchronously; the result is the same (the global
    config, with the profile's `config_overrides` if any).
    Upstream: Chainlit's behaviour since profiles got `config_overrides` (PR #2401); no issue
    filed. Can go: when `get_config` no longer calls `run_until_complete`.
    """
    from chainlit.config import config as cl_config
    from chainlit.session import WebsocketSession

    def get_config(self: WebsocketSession) -> Any:
        if getattr(self, "config", None):
            return self.config
        cfg = cl_config
        if self.chat_profile:
            try:  # as Chainlit's own: a failing profile lookup leaves the global config
                profile = next((p for p in profiles() if p.name == self.chat_profile), None)
                overrides = getattr(profile, "config_overrides", None)
                if overrides:
                    cfg = cl_config.with_overrides(overrides)
            except Exception:
                log.exception("chat.profile_config_failed")
        self.config = cfg
        return cfg

    WebsocketSession.get_config = get_config  # type: ignore[method-assign]


def forget_chat_context(disconnected: MutableMapping[str, None]) -> None:
    """Forget a session's messages when Chainlit deletes the session (and its socket id from
    `disconnected`, the adapter's record of sessions kept for a reconnection).

    Why: Chainlit records every message of a session in `chainlit.chat_context.chat_contexts`,
    keyed by session id, and never removes the entry: measured, every short session left its
    messages in memory for the life of the process (bench/RESULTS.md "Soak").
    Upstream: Chainlit issue #2951 "Memory leak in chat_context"; fix proposed in PR #2959.
    Can go: once a Chainlit release pops `chat_contexts` on disconnect (keep forgetting
    `disconnected`: move that line to the adapter's own end of a session).
    """
    from chainlit.chat_context import chat_contexts
    from chainlit.session import WebsocketSession

    delete: Callable[[WebsocketSession], Awaitable[None]] = WebsocketSession.delete

    async def delete_and_forget(self: WebsocketSession) -> None:
        chat_contexts.pop(self.id, None)
        disconnected.pop(self.socket_id, None)
        await delete(self)

    WebsocketSession.delete = delete_and_forget  # type: ignore[method-assign]


class TickClock:
    """Stands in for the `time` module inside chainlit.step and chainlit.message."""

    @staticmethod
    def sleep(seconds: float) -> None:
        """Wait for the clock's next microsecond instead of blocking the event loop `seconds`."""
        until = time.time_ns() + 1_000
        while time.time_ns() < until:
            pass


def unblock_step_creation() -> None:
    """Create Chainlit steps and messages without stopping the server for a millisecond each.

    Why: Chainlit 2.12's `Step.__init__` and `Message.__init__` call `time.sleep(0.001)`
    (blocking, in the event loop), apparently so that back-to-back objects get distinct
    `created_at` stamps (ISO strings with microseconds). Each question creates four of them, so
    every question stopped all sessions for 4+ ms, far more on a busy machine (the largest single
    cost of the socket.io path; bench/RESULTS.md "Load"). The stand-in waits only until the
    clock's microsecond changes: stamps stay distinct and ordered (test_chainlit_unblocked.py).
    Upstream: Chainlit's behaviour; no issue filed. Can go: when those `__init__`s stop sleeping.
    """
    # import_module: `import chainlit.step as m` would give the `chainlit.step` decorator
    for name in ("chainlit.step", "chainlit.message"):
        setattr(importlib.import_module(name), "time", TickClock)  # noqa: B010
