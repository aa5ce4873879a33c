"""`python -m faqbot learn`: what /admin/learn does, from a shell (issue 22).

    learn list                         the attached phrasings and out-of-scope marks
    learn attach ENTRY_ID "question"   attach a question to an entry as another phrasing
    learn out-of-scope "question"      refuse that exact question from now on
    learn remove ID                    take one back
    learn export OUTDIR                the FAQ with the phrasings applied, as YAML files

It writes the app's database (DATABASE_URL, else DATA_DIR/faqbot.db); running replicas pick a
change up at their next poll (LEARNED_POLL_SECONDS). `attach` and `out-of-scope` run the same
conflict check as /admin (faqbot/answering/learning_check.py) on the FAQ as served (files plus
what was learned) and refuse, listing what would answer wrongly, unless `--force`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from faqbot.config import Settings, load_settings
from faqbot.errors import ConfigError, FaqBotError
from faqbot.knowledge.learned import Kind, LearnedPhrasing, PhrasingError, write_export

T = TypeVar("T")


def _run(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """`work(database)` on the app's database (schema made or upgraded first); a SQLite file
    that does not exist yet is an error, never created empty here."""
    from sqlalchemy.exc import SQLAlchemyError

    from faqbot.store.database import Database

    database = Database.from_settings(settings)
    path = database.url.database if database.dialect == "sqlite" else None
    if path and path != ":memory:" and not Path(path).exists():
        raise ConfigError(f"no database at {path} (the app creates it when it first starts)")

    async def run() -> T:
        try:
            await database.ensure_schema()
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except SQLAlchemyError as exc:
        raise FaqBotError(f"cannot use the database: {type(exc).__name__}: {exc}"[:400]) from None


def _list(args: argparse.Namespace) -> int:
    from faqbot.store import learned

    rows = _run(load_settings(), lambda db: learned.live(db.engine))
    for r in rows:
        what = f"-> {r.entry_id}" if r.kind == "phrasing" else "(out of scope)"
        print(f"{r.id}  {r.text!r} {what}  by {r.created_by or '?'} at {r.created_at[:19]}")
    print(f"{len(rows)} learned", file=sys.stderr)
    return 0


def _decide(args: argparse.Namespace, kind: Kind) -> int:
    from faqbot.answering.learning_check import conflicts
    from faqbot.ops.learning import LearnedSync
    from faqbot.ops.reload import BotHolder
    from faqbot.store import learned

    settings = load_settings()
    entry_id = args.entry_id if kind == "phrasing" else ""

    async def work(database: Any) -> int:
        holder = BotHolder(settings)
        bot = holder.bot
        if bot is None:
            raise FaqBotError(f"the FAQ in {settings.faq_dir} does not load: see `faqbot check`")
        await LearnedSync(holder, database.engine).poll_once()  # the FAQ as served
        if kind == "phrasing" and entry_id not in bot.kb.by_id:
            raise FaqBotError(f"no FAQ entry with id {entry_id!r} (see `faqbot learn export`)")
        found = conflicts(bot, bot.kb, LearnedPhrasing(entry_id, args.question, kind))
        if found and (not args.force or any(c.reason == "duplicate" for c in found)):
            print("refused: it would make these questions answer wrongly:", file=sys.stderr)
            for c in found:
                now = f" but {c.now_entry_id}" if c.now_entry_id else ""
                print(f"  {c.question!r}: not {c.expected_entry_id}{now} ({c.reason})",
                      file=sys.stderr)  # fmt: skip
            if not any(c.reason == "duplicate" for c in found):
                print("(--force accepts it anyway)", file=sys.stderr)
            return 1
        row = await learned.add(database.engine, args.question, entry_id=entry_id, kind=kind,
                                created_by=args.by)  # fmt: skip
        what = f"attached to {row.entry_id}" if kind == "phrasing" else "marked out of scope"
        print(f"{row.id}  {row.text!r} {what}")
        return 0

    return _guarded(lambda: _run(settings, work))


def _remove(args: argparse.Namespace) -> int:
    from faqbot.store import learned

    settings = load_settings()

    async def work(database: Any) -> int:
        row = await learned.remove(database.engine, args.id, removed_by=args.by)
        print(f"removed {row.id}  {row.text!r}")
        return 0

    return _guarded(lambda: _run(settings, work))


def _export(args: argparse.Namespace) -> int:
    from faqbot.knowledge import load_knowledge_base
    from faqbot.store import learned

    settings = load_settings()
    kb = load_knowledge_base(settings.faq_dir)
    rows = _run(settings, lambda db: learned.live(db.engine))
    written = write_export(kb, [r.phrasing() for r in rows], Path(args.outdir))
    for path in written:
        print(path)
    attached = sum(r.kind == "phrasing" for r in rows)
    print(f"{len(written)} file(s), {attached} learned phrasing(s); check them with "
          f"`python -m faqbot check {args.outdir}`", file=sys.stderr)  # fmt: skip
    return 0


def _guarded(run: Callable[[], int]) -> int:
    from faqbot.store.learned import LearnError

    try:
        return run()
    except (PhrasingError, LearnError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def add_learn_command(sub: Any) -> None:
    """Register `learn` and its subcommands on the CLI's subparsers."""
    learn = sub.add_parser(
        "learn",
        help="attach visitors' questions to FAQ entries, mark them out of scope, export them",
        description="What owners teach the bot, kept in the app's database and served by every "
        "replica within LEARNED_POLL_SECONDS (see also /admin/learn).",
    )
    verbs = learn.add_subparsers(dest="learn_command", required=True)
    verbs.add_parser("list", help="the attached phrasings and out-of-scope marks").set_defaults(
        func=_list
    )
    attach = verbs.add_parser("attach", help="attach a question to an entry as a phrasing")
    attach.add_argument("entry_id", help="the entry's id (as in /api/faq/ENTRY_ID)")
    attach.add_argument("question", help="the question, as visitors ask it")
    attach.set_defaults(func=lambda a: _decide(a, "phrasing"))
    scope = verbs.add_parser("out-of-scope", help="refuse this exact question from now on")
    scope.add_argument("question")
    scope.set_defaults(func=lambda a: _decide(a, "out_of_scope"))
    for verb in (attach, scope):
        verb.add_argument("--force", action="store_true", help="accept despite conflicts")
    remove = verbs.add_parser("remove", help="take an attached phrasing or a mark back")
    remove.add_argument("id", help="its id (see `learn list`)")
    remove.set_defaults(func=_remove)
    for verb in (attach, scope, remove):
        verb.add_argument("--by", default="cli", help="who made the change (recorded)")
    export = verbs.add_parser(
        "export", help="write the FAQ with the learned phrasings as YAML files into OUTDIR"
    )
    export.add_argument("outdir")
    export.set_defaults(func=_export)
