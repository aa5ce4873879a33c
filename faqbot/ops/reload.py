"""Keep the serving bot in step with the FAQ folder (watchfiles).

A bad edit keeps the last good knowledge base serving; the problems are logged with file:line,
kept in `ReloadStatus` and reported by `/api/health` (status "degraded", field `knowledge`). If no
valid FAQ has loaded yet (a broken or missing folder at start-up), there is no bot: the faces
answer "unavailable" (HTTP 503) until a valid folder appears.

A category whose file goes missing or empty is not dropped at once: editors that save without
an atomic rename, `cp`, rsync and deploy scripts leave a file absent or empty for a moment. The
last good version of that category keeps serving until the file has been missing or empty for
`settle_seconds`; a file back within that time serves on without a gap. The same holds for the
whole folder (a rename swap, a remount): with nothing on disk the last good version serves, and
only after the settle period is the folder reported as rejected (a bot is never emptied).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import watchfiles

from faqbot.answering.bot import FaqBot
from faqbot.answering.factory import build_bot
from faqbot.config import Settings
from faqbot.domain import Category, KnowledgeBase
from faqbot.errors import FaqFormatError, KnowledgeError
from faqbot.knowledge.learned import LearnedPhrasing, apply_learned, out_of_scope_texts
from faqbot.knowledge.loader import EMPTY_FILE, check_dir, is_faq_name
from faqbot.logs import get_logger

log = get_logger("faqbot.reload")

SETTLE_SECONDS = 2.0  # how long a file must stay missing/empty before its category is dropped
TICK_SECONDS = 0.5  # the watcher's backstop: path re-check, settle deadlines, missed events
_MAX_LINKS = 40  # symlink hops followed from FAQ_DIR (the kernel's own limit is 40)


@dataclass
class ReloadStatus:
    """What the reloader knows: reloads done, why the files on disk were refused, what settles."""

    reloads: int = 0
    last_error: list[str] = field(default_factory=list)
    settle_seconds: float = SETTLE_SECONDS
    # category -> time.monotonic() when its file was first seen missing or empty
    gone_since: dict[str, float] = field(default_factory=dict)
    # the last good FAQ as the files say it, and what owners taught on top (issue 22): the bot
    # serves `apply_learned(files_kb, learned)`, so a file reload keeps the learned phrasings
    files_kb: KnowledgeBase | None = None
    learned: tuple[LearnedPhrasing, ...] = ()

    def settling(self, now: float | None = None) -> dict[str, float]:
        """Categories kept although their file is missing or empty: seconds until dropped."""
        now = time.monotonic() if now is None else now
        left = {n: t + self.settle_seconds - now for n, t in self.gone_since.items()}
        return {n: round(s, 2) for n, s in sorted(left.items()) if s > 0}

    def recheck_in(self) -> float | None:
        """Seconds until a settle period ends (reload then, even with no new file event)."""
        left = self.settling().values()
        return min(left) if left else None

    def report(self, serving_version: str) -> dict[str, Any]:
        """For /api/health: state (ok | settling | rejected), the problems, the serving version."""
        settling = self.settling()
        state = "rejected" if self.last_error else "settling" if settling else "ok"
        return {
            "state": state,
            "serving_version": serving_version,
            "problems": list(self.last_error),
            "settling": settling,
            "reloads": self.reloads,
        }


_STATUS: weakref.WeakKeyDictionary[FaqBot, ReloadStatus] = weakref.WeakKeyDictionary()


def reload_status(bot: FaqBot) -> ReloadStatus | None:
    """The reload status of a bot kept in step with its folder (None for a bot nobody reloads)."""
    return _STATUS.get(bot)


def _problems(exc: KnowledgeError) -> list[str]:
    if isinstance(exc, FaqFormatError):
        return [str(p) for p in exc.problems]
    return [str(exc)]


def reload_once(bot: FaqBot, directory: Path, status: ReloadStatus) -> bool:
    """Try to load `directory`; swap it in if valid. Returns True when the bot was reloaded.

    A serving category whose file is missing or empty is kept (its last good version) until
    that has lasted `status.settle_seconds`; any other problem refuses the whole edit.
    """
    _STATUS[bot] = status
    now = time.monotonic()
    serving = status.files_kb if status.files_kb is not None else bot.kb
    folder_error: str | None = None
    try:
        categories, problems = check_dir(directory)
    except KnowledgeError as exc:  # the folder is missing, unreadable or holds no FAQ file
        categories, problems, folder_error = [], [], str(exc)
    empty = [p for p in problems if p.message == EMPTY_FILE]
    problems = [p for p in problems if p.message != EMPTY_FILE]
    faulty = {p.path.stem.lower() for p in problems}
    present = {c.name for c in categories}
    gone = set(serving.categories) - present - faulty  # missing or empty files
    for name in set(status.gone_since) - gone:
        del status.gone_since[name]
    for name in gone:
        status.gone_since.setdefault(name, now)
    kept = sorted(n for n in gone if now - status.gone_since[n] < status.settle_seconds)
    dropped = sorted(gone - set(kept))
    # an empty file that serves nothing yet (a new one) is an error, as at start-up
    problems += [p for p in empty if p.path.stem.lower() not in serving.categories]
    if problems:
        return _reject(bot, status, [str(p) for p in problems])
    merged: list[Category] = categories + [serving.categories[n] for n in kept]
    if not merged:  # never empty the bot: the last good version serves on
        return _reject(bot, status, [folder_error or f"no FAQ category left in {directory}"])
    status.last_error = []
    status.files_kb = KnowledgeBase.build(merged)
    kb = with_learned(status.files_kb, status.learned)
    if kb.version == bot.kb.version:
        return False
    bot.reload(kb)
    for name in dropped:
        status.gone_since.pop(name, None)
    status.reloads += 1
    log.info(
        "knowledge.reloaded", version=kb.version, counts=kb.counts(), kept=kept, dropped=dropped
    )
    return True


def with_learned(kb: KnowledgeBase, learned: tuple[LearnedPhrasing, ...]) -> KnowledgeBase:
    """The files' knowledge base with the owners' phrasings attached (itself when none)."""
    if not learned:
        return kb
    try:
        return apply_learned(kb, learned)
    except Exception:  # never let a bad learned row stop the FAQ from serving
        log.exception("learned.apply_failed", rows=len(learned))
        return kb


def serve_learned(bot: FaqBot, status: ReloadStatus, learned: tuple[LearnedPhrasing, ...]) -> bool:
    """Serve the last good files with `learned` on top; True when the bot was reloaded."""
    status.learned = learned
    if status.files_kb is None:
        status.files_kb = bot.kb
    set_out_of_scope(bot, learned)
    kb = with_learned(status.files_kb, learned)
    if kb.version == bot.kb.version:
        return False
    bot.reload(kb)
    log.info("learned.applied", version=kb.version, rows=len(learned))
    return True


def set_out_of_scope(bot: FaqBot, learned: tuple[LearnedPhrasing, ...]) -> None:
    """The questions owners marked out of scope: the bot refuses an exact repeat."""
    bot.out_of_scope = out_of_scope_texts(learned)


def _reject(bot: FaqBot, status: ReloadStatus, problems: list[str]) -> bool:
    if problems != status.last_error:  # log a refused edit once, not on every re-check
        log.error("knowledge.reload_rejected", problems=problems, kept=bot.kb.version)
    status.last_error = problems
    return False


class BotHolder:
    """The serving bot, or None while no valid FAQ folder has been loaded."""

    def __init__(self, settings: Settings, *, settle_seconds: float = SETTLE_SECONDS) -> None:
        self.settings = settings
        self.status = ReloadStatus(settle_seconds=settle_seconds)
        self.bot: FaqBot | None = None
        self.refresh()

    def refresh(self) -> float | None:
        """Build the bot on the first valid load, then reload its knowledge on later ones.

        Returns the seconds after which it wants to be called again even if no file changes
        (a missing or empty file is settling), else None: `watch_knowledge` honours it.
        """
        if self.bot is not None:
            reload_once(self.bot, self.settings.faq_dir, self.status)
            return self.status.recheck_in()
        try:
            self.bot = build_bot(self.settings)
        except KnowledgeError as exc:
            problems = _problems(exc)
            if problems != self.status.last_error:
                log.error(
                    "knowledge.unavailable",
                    problems=problems,
                    hint="fix the FAQ files; they are watched and will load when valid",
                )
            self.status.last_error = problems
            return None
        _STATUS[self.bot] = self.status
        self.status.last_error = []
        self.status.files_kb = self.bot.kb
        log.info("knowledge.loaded", version=self.bot.kb.version, counts=self.bot.kb.counts())
        if self.status.learned:
            serve_learned(self.bot, self.status, self.status.learned)
        return None

    def set_learned(self, learned: tuple[LearnedPhrasing, ...]) -> bool:
        """Serve what owners taught (faqbot/ops/learning.py polls it); kept across file reloads
        and applied to a bot built later. True when the serving bot was reloaded."""
        self.status.learned = learned
        if self.bot is None:
            return False
        return serve_learned(self.bot, self.status, learned)


@dataclass(frozen=True)
class _Target:
    """Where FAQ_DIR points now, and what to watch to notice when that changes.

    `roots` are real (resolved) directories, each watched without recursion: the folder the
    path resolves to, and the directory holding each hop of the path (FAQ_DIR itself, each
    symlink on the way), or, while the path is missing, its nearest existing ancestor.
    `links` are the entries in those directories whose creation, removal, rename or re-pointing
    changes what FAQ_DIR means. `ident` tells a folder replaced under the same path.
    """

    roots: tuple[str, ...]
    links: frozenset[str]
    folder: str | None
    ident: tuple[int, int] | None

    def accepts(self, _: watchfiles.Change, path: str) -> bool:
        """The events worth a reload: a hop of the path changed, or a file in the folder."""
        if path in self.links:
            return True
        parent, name = os.path.split(path)
        # "..data" and friends: the entries a Kubernetes ConfigMap swaps atomically
        return parent == self.folder and (is_faq_name(name) or name.startswith(".."))


def _target(directory: Path) -> _Target:
    roots: list[str] = []
    links: set[str] = set()
    path = Path(os.path.abspath(directory))
    for _ in range(_MAX_LINKS):
        child, anchor = path, path.parent
        while not anchor.is_dir() and anchor != anchor.parent:  # climb to what exists
            child, anchor = anchor, anchor.parent
        real_anchor = Path(os.path.realpath(anchor))
        entry = real_anchor / child.name
        roots.append(str(real_anchor))
        links.add(str(entry))
        if child != path or not entry.is_symlink():
            break
        path = Path(os.path.abspath(real_anchor / os.readlink(entry)))
    folder: str | None = None
    ident: tuple[int, int] | None = None
    try:
        real = Path(os.path.realpath(directory))
        st = real.stat()
        if real.is_dir():
            folder, ident = str(real), (st.st_dev, st.st_ino)
            roots.append(folder)
    except OSError:
        pass
    return _Target(tuple(dict.fromkeys(roots)), frozenset(links), folder, ident)


def _fingerprint(directory: Path) -> tuple[object, ...]:
    """A cheap summary of the FAQ files (following symlinks): changes when any of them does."""
    try:
        real = directory.resolve(strict=True)
        st = real.stat()
        names = sorted(n for n in os.listdir(real) if is_faq_name(n))
    except OSError:
        return ()
    files: list[tuple[object, ...]] = []
    for name in names:
        try:
            s = (real / name).stat()
            files.append((name, s.st_ino, s.st_size, s.st_mtime_ns))
        except OSError:
            files.append((name,))
    return (str(real), st.st_dev, st.st_ino, tuple(files))


def _call(refresh: Callable[[], object]) -> float | None:
    try:
        again = refresh()
    except Exception:  # never let one bad reload end the watch
        log.exception("knowledge.refresh_failed")
        return None
    return again if isinstance(again, float) else None


async def watch_knowledge(
    directory: Path,
    refresh: Callable[[], object],
    stop: asyncio.Event | None = None,
    *,
    tick: float = TICK_SECONDS,
) -> None:
    """Call `refresh` after every change to the FAQ folder at `directory` until `stop` is set.

    The folder is followed by path, not by the directory it first resolved to: FAQ_DIR may be
    missing at start (it is loaded once created), replaced by a rename, or a symlink re-pointed
    (`ln -sfn releases/N current`; a Kubernetes ConfigMap swaps `..data -> ..<timestamp>`
    atomically and deletes the old directory).

    How: watchfiles watches, without recursion, the folder FAQ_DIR resolves to plus the
    directory holding each hop of the path (or the nearest existing ancestor while it is
    missing); see `_Target`. When a hop changes, the watch is re-established on the new target.
    Watching only the parent recursively was not chosen: it would not see a symlink target in
    another directory, and FAQ_DIR's parent may be a large tree (the app's own directory).
    A tick (`tick` seconds, watchfiles' `yield_on_timeout`) re-checks the path and a cheap
    fingerprint of the FAQ files, so changes that raise no event (files edited behind a
    symlink elsewhere, network filesystems, a change between a reload and a re-established
    watch) are still picked up, and ends settle periods: `refresh` may return the seconds after
    which it wants to be called again (see `BotHolder.refresh`).
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    seen: tuple[object, ...] | None = None  # None: refresh at the first tick (start-up race)
    recheck_at: float | None = None
    while not stop.is_set():
        target = _target(directory)
        log.info("knowledge.watching", directory=str(directory), folder=target.folder)
        try:
            async for changes in watchfiles.awatch(
                *target.roots,
                watch_filter=target.accepts,
                stop_event=stop,
                debounce=300,
                recursive=False,
                rust_timeout=max(1, int(tick * 1000)),
                yield_on_timeout=True,
                ignore_permission_denied=True,
            ):
                moved = _target(directory) != target
                now = _fingerprint(directory)
                due = recheck_at is not None and loop.time() >= recheck_at
                if changes or moved or due or now != seen:
                    seen = now
                    again = _call(refresh)
                    recheck_at = None if again is None else loop.time() + again
                if moved:
                    break  # re-establish the watch on what the path means now
        except Exception as exc:  # e.g. a root vanished between resolving and watching it
            log.warning("knowledge.watch_failed", error=repr(exc), directory=str(directory))
            with contextlib.suppress(TimeoutError):  # retry after a tick, unless stopped
                await asyncio.wait_for(stop.wait(), tick)
