"""Every API error as an ErrorResponse: `register_error_handlers` installs the handlers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from faqbot.errors import InputError, RateLimitedError
from faqbot.logs import get_logger
from faqbot.validation import too_long
from faqbot.web.schemas import FIELD_MESSAGES, PATTERN_MISMATCH, ErrorResponse

log = get_logger("faqbot.web")


class Unavailable(Exception):
    """No bot is loaded (the knowledge base failed to load)."""


def error_response(
    status: int, error: str, code: str, detail: str | None = None, **headers: str
) -> JSONResponse:
    """The ErrorResponse body with `status` (and any extra headers)."""
    body = ErrorResponse(error=error, detail=detail, error_code=code).model_dump()
    return JSONResponse(body, status_code=status, headers=headers or None)


def in_words(err: Any) -> str:
    """One validation error as a person would say it (never a regular expression)."""
    kind = str(err.get("type", ""))
    if kind == "json_invalid":  # FastAPI says "0: JSON decode error" (its loc: the offset)
        return not_json(err)
    where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
    if (message := FIELD_MESSAGES.get((where, kind))) is not None:
        return message
    if where == "question" and kind == "string_too_long":
        value = err.get("input")
        return too_long(len(value) if isinstance(value, str) else None, err["ctx"]["max_length"])
    if kind == "string_pattern_mismatch":
        return f"{where}: {PATTERN_MISMATCH}"
    return f"{where}: {err.get('msg', 'invalid')}"


def not_json(err: Any) -> str:
    """A body that does not parse, with the parser's reason and where it stopped."""
    reason = str((err.get("ctx") or {}).get("error") or "it cannot be parsed")
    at = next((p for p in reversed(err.get("loc", ())) if isinstance(p, int)), None)
    where = f" (at character {at})" if at is not None else ""
    return f"The request body is not valid JSON: {reason}{where}."


async def on_validation(request: Request, exc: RequestValidationError) -> Any:
    detail = "; ".join(dict.fromkeys(in_words(err) for err in exc.errors()))
    return error_response(422, "Invalid request", "VALIDATION_ERROR", detail[:500])


async def on_input(request: Request, exc: InputError) -> Any:
    return error_response(422, "Invalid question", exc.code, exc.user_message)


def rate_limited_response(exc: RateLimitedError) -> JSONResponse:
    """The 429 answer with Retry-After (from a route, or from the gate before any route)."""
    return error_response(
        429,
        "Too many requests",
        exc.code,
        exc.user_message,
        **{"Retry-After": str(exc.retry_after)},
    )


async def on_rate(request: Request, exc: RateLimitedError) -> Any:
    return rate_limited_response(exc)


async def on_unavailable(request: Request, exc: Unavailable) -> Any:
    return error_response(503, "Service unavailable", "NO_KNOWLEDGE_BASE", "No FAQ is loaded.")


async def on_http(request: Request, exc: StarletteHTTPException) -> Any:
    response = error_response(exc.status_code, str(exc.detail), f"HTTP_{exc.status_code}")
    response.headers.update(exc.headers or {})  # e.g. Allow on 405
    return response


async def on_error(request: Request, exc: Exception) -> Any:
    log.exception("api.unexpected_error", path=request.url.path)
    return error_response(
        500, "Internal server error", "INTERNAL_ERROR", "An unexpected error occurred."
    )


def register_error_handlers(api: FastAPI) -> None:
    """Answer every error with the ErrorResponse shape (no details leaked on a 500)."""
    api.exception_handler(RequestValidationError)(on_validation)
    api.exception_handler(InputError)(on_input)
    api.exception_handler(RateLimitedError)(on_rate)
    api.exception_handler(Unavailable)(on_unavailable)
    api.exception_handler(StarletteHTTPException)(on_http)
    api.exception_handler(Exception)(on_error)
