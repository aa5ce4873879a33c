"""Command line: `python -m faqbot <command>`; the help lists every command, from the parser."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from faqbot.answering.contact import support_contact
from faqbot.answering.events import Done, Fallback, RouteDecided, Token, TurnResult
from faqbot.config import Settings, load_settings
from faqbot.errors import ConfigError, FaqBotError, FaqFormatError, KnowledgeError
from faqbot.knowledge import check_dir
from faqbot.logs import configure_logging
from faqbot.ops.learn_cli import add_learn_command

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")


def _cmd_check(args: argparse.Namespace) -> int:
    if args.deployment:
        if args.dir:
            print("error: --deployment checks settings and takes no DIR", file=sys.stderr)
            return 2
        return _check_deployment(strict=args.strict)
    if args.strict:
        print("error: --strict goes with --deployment", file=sys.stderr)
        return 2
    directory = Path(args.dir) if args.dir else load_settings().faq_dir
    try:
        categories, problems = check_dir(directory)
    except KnowledgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {directory}", file=sys.stderr)
        return 1
    for cat in categories:
        print(f"ok  {cat.path.name}: {len(cat.entries)} entries ({cat.name})")
    return 0


def _check_deployment(*, strict: bool) -> int:
    """One `warning:` line per unsafe setting; exit 1 with --strict when any stands."""
    from faqbot.ops.deployment import check_deployment

    warnings = check_deployment(load_settings())
    for warning in warnings:
        print(f"warning: {warning.line()}")
    if not warnings:
        print("ok  no unsafe deployment settings found")
        return 0
    print(f"{len(warnings)} deployment warning(s); see SECURITY.md", file=sys.stderr)
    return 1 if strict else 0


def _write_result(out: TextIO, r: TurnResult, contact: str | None) -> None:
    """The closing lines of `ask`: outcome, meta, sources, suggestions, contact, usage."""
    flags = ["fallback"] if r.fallback else []
    out.write(
        f"[outcome: {r.outcome} | category: {r.category or 'none'} | "
        f"confidence: {r.confidence:.2f} | {r.elapsed_s * 1000:.0f} ms"
        f"{' | ' + ', '.join(flags) if flags else ''}]\n"
    )
    for s in r.sources:
        out.write(f"  source: {s.id} - {s.question}\n")
    for s in r.suggestions:
        out.write(f"  did you mean: {s.id} - {s.question}\n")
    if r.outcome == "refused" and contact:
        out.write(f"  support contact: {contact}\n")
    if r.usage.total_tokens:
        out.write(
            f"  usage: {r.usage.prompt_tokens} prompt + {r.usage.completion_tokens} "
            f"completion tokens, ${r.usage.cost_usd:.6f}\n"
        )


async def _ask(question: str) -> int:
    from faqbot.answering.factory import build_bot

    settings = load_settings()
    bot = build_bot(settings)
    bot.wait_for_vectors(timeout=600)  # a one-off question: answer with the full ranking
    out = sys.stdout
    out.write(f"[mode: {bot.mode}]\n")
    async for event in bot.answer(question):
        if isinstance(event, RouteDecided):
            where = event.category or "none"
            out.write(f"[route: {where} via {event.via}, confidence {event.confidence:.2f}]\n")
        elif isinstance(event, Fallback):
            out.write(f"[fallback: {event.message}]\n")
        elif isinstance(event, Token):
            out.write(event.text)
            out.flush()
        elif isinstance(event, Done):
            out.write("\n")
            contact = support_contact(bot.kb, settings.support_contact, event.result.category)
            _write_result(out, event.result, contact)
    return 0


def _cmd_ask(args: argparse.Namespace) -> int:
    return asyncio.run(_ask(" ".join(args.question)))


def _cmd_eval(args: argparse.Namespace) -> int:
    from faqbot.ops.evaluation import format_report, run_eval

    report = asyncio.run(run_eval(Path(args.file), offline=args.offline))
    print(format_report(report))
    return 0


def _cmd_redteam(args: argparse.Namespace) -> int:
    from faqbot.security.cases import DEFAULT_CASES, load_cases
    from faqbot.security.redteam import run_cases, write_table

    settings = load_settings()
    path = Path(args.cases) if args.cases else DEFAULT_CASES
    cases = load_cases(path)
    print(
        f"{len(cases)} prompt-injection cases from {path}, offline half (retrieval, no LLM "
        f"calls) against {settings.faq_dir}, embeddings={settings.embeddings}"
    )
    reports = asyncio.run(run_cases(cases, settings))
    write_table(sys.stdout, reports)
    return 1 if any(r.verdict == "fail" for r in reports) else 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from faqbot.ops.serve import serve

    return serve(load_settings())


def _open_database(settings: Settings) -> AsyncEngine:
    """The app's database; a missing SQLite file is an error here, never created empty."""
    from faqbot.analytics.engine import open_engine

    engine = open_engine(settings)
    path = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if path and path != ":memory:" and not Path(path).exists():
        raise ConfigError(f"no database at {path} (the app creates it when it first starts)")
    return engine


def _run_on_database(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    from sqlalchemy.exc import SQLAlchemyError

    async def run() -> T:
        engine = _open_database(settings)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except SQLAlchemyError as exc:
        raise FaqBotError(f"cannot read the database: {type(exc).__name__}: {exc}"[:400]) from None


def _cmd_report(args: argparse.Namespace) -> int:
    from faqbot.analytics.report import build_report, parse_since
    from faqbot.analytics.text import format_report
    from faqbot.retrieval.factory import build_embedder

    settings = load_settings()
    parse_since(args.since)  # a bad period fails before anything loads
    embedder = None if args.words else build_embedder(settings)
    report = _run_on_database(
        settings,
        lambda engine: build_report(
            engine, args.since, low_confidence=args.low_confidence, embedder=embedder
        ),
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(format_report(report))
    return 0


def _print_deleted(counts: Mapping[str, int], what: str) -> None:
    from faqbot.privacy.retention import TABLES

    total = sum(counts.values())
    detail = ", ".join(f"{counts.get(t, 0)} {t}" for t in TABLES if counts.get(t, 0))
    print(f"{what}: {total} rows deleted" + (f" ({detail})" if detail else ""))


def _cmd_delete_user(args: argparse.Namespace) -> int:
    """Revoke the user's sessions first, give running apps time to re-read the revocations
    (faqbot/store/revocations.py), then delete: a session still open cannot re-create rows."""
    from faqbot.privacy.retention import delete_user
    from faqbot.store.revocations import REFRESH_S, revoke

    async def erase(engine: AsyncEngine) -> Mapping[str, int]:
        await revoke(engine, args.identifier)
        await asyncio.sleep(REFRESH_S + 0.5)
        return await delete_user(engine, args.identifier)

    counts = _run_on_database(load_settings(), erase)
    print(f"user {args.identifier!r}: sessions revoked (signed-in sessions end now)")
    _print_deleted(counts, f"user {args.identifier!r}")
    return 0


def _cmd_retention(args: argparse.Namespace) -> int:
    from faqbot.privacy.retention import apply_retention

    settings = load_settings()
    days = settings.retention_days if args.days is None else args.days
    if days <= 0:
        print("retention: RETENTION_DAYS is 0 (keep forever): nothing deleted")
        return 0
    counts = _run_on_database(settings, lambda e: apply_retention(e, days))
    _print_deleted(counts, f"retention ({days} days)")
    return 0


def _add_data_commands(sub: Any) -> None:
    report = sub.add_parser(
        "report",
        help="what users asked: unanswered questions, outcomes, thumbs down, latency, cost",
        description="Read the app's database (DATABASE_URL, else DATA_DIR/faqbot.db) and print "
        "the unanswered and low-confidence questions grouped by similarity, then questions and "
        "outcomes per category and day, the most disliked FAQ entries, latency, tokens and cost.",
    )
    report.add_argument("--since", default="7d", help="period: a number and h, d or w (7d)")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.add_argument(
        "--low-confidence", type=float, default=0.5, metavar="X",
        help="list answers below this confidence with the unanswered questions (0.5)",
    )  # fmt: skip
    report.add_argument(
        "--words", action="store_true", help="group by word overlap, not the embedding model"
    )
    report.set_defaults(func=_cmd_report)
    delete = sub.add_parser(
        "delete-user",
        help="delete one user's conversations, feedback and account record",
        description="Delete every thread of the signed-in user IDENTIFIER (with its messages, "
        "feedback and turn rows) and the user record, from the app's database.",
    )
    delete.add_argument("identifier", help="the user's identifier (their sign-in name)")
    delete.set_defaults(func=_cmd_delete_user)
    retention = sub.add_parser(
        "retention", help="delete conversations older than RETENTION_DAYS now"
    )
    retention.add_argument("--days", type=int, help="override RETENTION_DAYS")
    retention.set_defaults(func=_cmd_retention)


def _cmd_hash_password(args: argparse.Namespace) -> int:
    """Print `name:hash` for AUTH_USERS; the password comes from a prompt or from stdin."""
    from getpass import getpass

    from faqbot.passwords import hash_password

    if sys.stdin.isatty():
        password = getpass("Password: ")
        if getpass("Again: ") != password:
            print("error: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("error: the password is empty", file=sys.stderr)
        return 1
    encoded = hash_password(password)
    print(f"{args.user}:{encoded}" if args.user else encoded)
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from faqbot.ops.doctor import run

    return run(load_settings(), timeout_s=args.timeout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m faqbot")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser(
        "check",
        help="validate FAQ files (exit 1 on any problem), or with --deployment the settings",
    )
    check.add_argument("dir", nargs="?", help="FAQ folder (default: FAQ_DIR)")
    check.add_argument(
        "--deployment",
        action="store_true",
        help="instead, warn about settings unsafe on a public deployment (one line each)",
    )
    check.add_argument(
        "--strict", action="store_true", help="with --deployment: exit 1 if any warning stands"
    )
    check.set_defaults(func=_cmd_check)
    ask = sub.add_parser("ask", help="ask one question and stream the answer")
    ask.add_argument("question", nargs="+")
    ask.set_defaults(func=_cmd_ask)
    ev = sub.add_parser("eval", help="routing/refusal accuracy on a labelled YAML set")
    ev.add_argument("file")
    ev.add_argument("--offline", action="store_true", help="ignore OPENAI_API_KEY")
    ev.set_defaults(func=_cmd_eval)
    red = sub.add_parser(
        "redteam",
        help="run the prompt-injection cases through the offline engine; exit 1 if any is unsafe",
        description="Ask every case of the injection cases file (default: the shipped "
        "faqbot/security/injection_cases.yaml; add your own) of the FAQ in FAQ_DIR with offline "
        "retrieval, and print one line per case: pass, warn (safe, but not the expected outcome) "
        "or fail (an answer that is not the refusal, real suggestions or a verbatim FAQ entry). "
        "What reaches an LLM is checked by tests/test_injection_suite.py.",
    )
    red.add_argument("--cases", help="a YAML cases file (see the shipped one for the format)")
    red.set_defaults(func=_cmd_redteam)
    doc = sub.add_parser(
        "doctor",
        help="probe the configured LLM endpoint: one line per capability; exit 1 if blocked",
        description="Probe OPENAI_BASE_URL (and the embeddings endpoint with EMBEDDINGS=openai): "
        "models list, plain chat, streaming, usage in the stream, the router's tool call in each "
        "tool_choice form, embeddings and their dimension, first-token time; then the settings "
        "it recommends. Exit 1 when something blocks the LLM path.",
    )
    doc.add_argument("--timeout", type=float, default=120.0, help="seconds per probe")
    doc.set_defaults(func=_cmd_doctor)
    srv = sub.add_parser(
        "serve",
        help="run the chat UI and API with HOST, PORT, RELOAD, DEBUG and DATA_DIR",
        description="Run chainlit_app.py (from the current folder) on HOST:PORT; exit 1 if the "
        "port is taken or DATA_DIR is not writable. RELOAD=true watches the code, DEBUG=true "
        "logs Chainlit at debug level.",
    )
    srv.set_defaults(func=_cmd_serve)
    _add_data_commands(sub)
    add_learn_command(sub)  # faqbot/ops/learn_cli.py (issue 22)
    hp = sub.add_parser(
        "hash-password",
        help="hash a password for AUTH_USERS (prompted, or read from stdin)",
        description="Print the PBKDF2 hash of a password (asked twice, or one line of stdin) "
        "for AUTH_USERS; with --user NAME, the whole `NAME:hash` entry.",
    )
    hp.add_argument("--user", help="print NAME:hash, an AUTH_USERS entry")
    hp.set_defaults(func=_cmd_hash_password)
    # From the commands registered above, so that the summary never misses one.
    parser.description = f"faqbot's commands: {', '.join(sub.choices)} (each has --help)."
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; problems print as one clear line and exit non-zero."""
    args = build_parser().parse_args(argv)
    if args.command == "hash-password":  # needs no settings (they may be what is being fixed)
        return int(args.func(args))
    try:
        settings = load_settings()
        if args.command != "serve":  # the app configures its own logging (LOG_LEVEL/LOG_FORMAT)
            level = settings.log_level if args.command == "check" else "WARNING"
            configure_logging(level, "console", mask_pii=settings.mask_pii)
        result: int = args.func(args)
        return result
    except FaqFormatError as exc:
        print(f"FAQ files are invalid:\n{exc}", file=sys.stderr)
        return 1
    except (ConfigError, FaqBotError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
