"""Command line: `python -m faqbot check|ask|eval|serve`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TextIO

from faqbot.config import load_settings
from faqbot.contact import support_contact
from faqbot.errors import ConfigError, FaqBotError, FaqFormatError, KnowledgeError
from faqbot.events import Done, Fallback, RouteDecided, Token, TurnResult
from faqbot.knowledge import check_dir
from faqbot.logs import configure_logging


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
    from faqbot.deployment import check_deployment

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
    from faqbot.factory import build_bot

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
    from faqbot.evaluation import format_report, run_eval

    report = asyncio.run(run_eval(Path(args.file), offline=args.offline))
    print(format_report(report))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from faqbot.serve import serve

    return serve(load_settings())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m faqbot", description=__doc__)
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
    srv = sub.add_parser(
        "serve",
        help="run the chat UI and API with HOST, PORT, RELOAD, DEBUG and DATA_DIR",
        description="Run chainlit_app.py (from the current folder) on HOST:PORT; exit 1 if the "
        "port is taken or DATA_DIR is not writable. RELOAD=true watches the code, DEBUG=true "
        "logs Chainlit at debug level.",
    )
    srv.set_defaults(func=_cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; problems print as one clear line and exit non-zero."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command != "serve":  # the app configures its own logging (LOG_LEVEL/LOG_FORMAT)
            level = settings.log_level if args.command == "check" else "WARNING"
            configure_logging(level, "console")
        result: int = args.func(args)
        return result
    except FaqFormatError as exc:
        print(f"FAQ files are invalid:\n{exc}", file=sys.stderr)
        return 1
    except (ConfigError, FaqBotError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
