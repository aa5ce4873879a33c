"""Live and ready, for load balancers and orchestrators (GET or HEAD).

- `/health/live`: the process serves HTTP. A failing liveness probe means "restart me".
- `/health/ready`: this replica can answer well: the FAQ is loaded, and every configured shared
  store answers (Redis for rate limits and the answer cache; the database through the checks
  the app registers). 503 with the reasons otherwise, so a load balancer drains the replica.
  With persistence on, storage counts too: writes must commit (a full disk, a read-only file
  system or a database refusing writes: `Database.write_problem`), and the conversation key
  must be saved in DATA_DIR (else tokens end at a restart). Both recover by themselves.

A replica that is not ready still answers the requests it gets (degraded: per-process limits
and cache), so a shared-store outage that hits every replica at once costs quality, not service,
for as long as the balancer keeps sending traffic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from faqbot.state.conversations import unsaved_secret
from faqbot.web.context import ApiContext

# A registered check returns why the replica is not ready (e.g. "database unreachable"), or None
ReadinessCheck = Callable[[], Awaitable[str | None]]


async def not_ready_reasons(ctx: ApiContext) -> list[str]:
    """Everything that keeps this replica from being ready; empty when it is."""
    bot = ctx.get_bot()
    if bot is None:
        return ["FAQ not loaded"]
    reasons: list[str] = []
    limits = await ctx.limiter.status()
    if "degraded" in limits:
        reasons.append(str(limits["degraded"]))
    for store_down in (await bot.cache.check(), await ctx.conversations.check()):
        if store_down:
            reasons.append(store_down)
    for check in ctx.ready_checks:
        try:
            reason = await check()
        except Exception as exc:  # a broken check means "not ready", never a 500
            reason = f"readiness check failed ({type(exc).__name__})"
        if reason:
            reasons.append(reason)
    return reasons + await storage_problems(ctx)


async def storage_problems(ctx: ApiContext) -> list[str]:
    """Why what should be stored is not (persistence on): failing writes, an unsaved key."""
    if ctx.store is None:
        return []
    problems: list[str] = []
    try:
        if problem := await ctx.store.db.write_problem():
            problems.append(problem)
    except Exception as exc:  # never a 500 from health
        problems.append(f"database write check failed ({type(exc).__name__})")
    if ctx.settings.conversation_secret is None:
        _ = ctx.signer  # loads or makes the key now: a full disk shows before the first chat
        if problem := unsaved_secret(ctx.settings.data_dir):
            problems.append(problem)
    return problems


def register_readiness(api: FastAPI, ctx: ApiContext) -> None:
    """GET|HEAD /health/live and /health/ready."""

    async def live() -> dict[str, str]:
        """The process is up and serving HTTP."""
        return {"status": "live"}

    async def ready() -> JSONResponse:
        """Ready to take traffic: FAQ loaded, configured Redis and database reachable."""
        reasons = await not_ready_reasons(ctx)
        if reasons:
            return JSONResponse({"ready": False, "reasons": reasons}, status_code=503)
        return JSONResponse({"ready": True, "reasons": []})

    not_ready: dict[int | str, dict[str, Any]] = {503: {"description": "not ready: `reasons`"}}
    api.get("/health/live", tags=["health"])(live)
    api.get("/health/ready", tags=["health"], responses=not_ready)(ready)
    # HEAD (some load balancers probe with it): the same answers, kept out of the schema
    api.head("/health/live", include_in_schema=False)(live)
    api.head("/health/ready", include_in_schema=False)(ready)
