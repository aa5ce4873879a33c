"""GET /health (what is serving, and whether it is degraded) and GET /metrics (Prometheus)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Response

from faqbot.answering.bot import FaqBot
from faqbot.errors import LLMError
from faqbot.llm.capabilities import MEMORY
from faqbot.metrics import exposition
from faqbot.ops.reload import ReloadStatus, reload_status
from faqbot.web.context import ApiContext
from faqbot.web.readiness import not_ready_reasons
from faqbot.web.schemas import ERRORS, CategoryOut, HealthResponse

Status = Literal["ok", "degraded"]


async def ping_llm(bot: FaqBot) -> dict[str, Any]:
    """Whether the LLM endpoint answers a ping (and how fast), or the error code if not."""
    assert bot.model is not None
    t0 = time.perf_counter()
    try:
        await asyncio.wait_for(bot.model.ping(3.0), 4.0)
    except (LLMError, TimeoutError) as exc:
        code = exc.code if isinstance(exc, LLMError) else "LLM_TIMEOUT"
        return {"reachable": False, "error_code": code}
    return {"reachable": True, "latency_ms": round((time.perf_counter() - t0) * 1000, 1)}


def persistence_status(ctx: ApiContext, not_ready: list[str]) -> dict[str, Any] | None:
    """Where turns are stored, whether writes commit, where the conversation key lives, and
    how many of Chainlit's statements failed (None: nothing is stored)."""
    if ctx.store is None:
        return None
    writes = ctx.store.db.writes.health
    status = dict(ctx.store.db.describe())
    status["state"] = "failing" if writes.failing else "ok"
    status["failed_writes"] = writes.failed  # every writer: faqbot's and Chainlit's
    status["writes"] = writes.snapshot()
    status["conversation_key"] = _key_state(ctx, not_ready)
    if ctx.store.failures is not None:
        failures, last = ctx.store.failures()
        status["failed_statements"] = failures  # Chainlit's data layer, reads included
        if last:
            status["last_error"] = last
    return status


def _key_state(ctx: ApiContext, not_ready: list[str]) -> str:
    """Where conversation tokens are signed from: the setting, a DATA_DIR file, or memory only
    (tokens end at a restart). No word of the setting's name: clients see this."""
    if ctx.settings.conversation_secret is not None:
        return "setting"
    if any(reason.startswith("conversation key not saved") for reason in not_ready):
        return "memory"
    return "file"


def llm_capabilities(bot: FaqBot) -> dict[str, Any] | None:
    """What this process learnt the LLM endpoint accepts (faqbot.llm.capabilities); None
    offline. Empty until the start-up warm-up or the first routed question asked."""
    if bot.model is None:
        return None
    return {"endpoint": bot.model.endpoint, **MEMORY.snapshot().get(bot.model.endpoint, {})}


async def health_report(ctx: ApiContext, bot: FaqBot, deep: bool) -> HealthResponse:
    """The health of `bot`; `deep` also pings the LLM endpoint (in LLM mode)."""
    retrieval = bot.retrieval_status()
    rate_limit = await ctx.limiter.status()
    not_ready = await not_ready_reasons(ctx)
    cache = {**bot.cache.stats(), **bot.cache.status()}
    spend = await bot.spend.status()
    # a bot that no watcher keeps in step (tests, embedding) has nothing refused on disk
    knowledge = (reload_status(bot) or ReloadStatus()).report(bot.kb.version)
    degraded = (
        bot.breaker.state != "closed"
        or bool(retrieval.get("degraded"))
        or "degraded" in rate_limit
        or bool(not_ready)  # a configured store does not answer, or storage writes fail
        or "degraded" in spend
        or spend["deployment_budget_reached"]  # every answer is offline until midnight UTC
        or bool(knowledge["problems"])  # the FAQ on disk was refused: an older version serves
    )
    llm = await ping_llm(bot) if deep and bot.model is not None else None
    status: Status = "degraded" if degraded or (llm and not llm["reachable"]) else "ok"
    return HealthResponse(
        status=status,
        version=ctx.settings.app_version,
        mode=bot.mode,
        model=bot.model_name,
        ready=not not_ready,
        not_ready=not_ready,
        knowledge_version=bot.kb.version,
        knowledge=knowledge,
        categories=[CategoryOut(name=n, entries=c) for n, c in bot.kb.counts().items()],
        circuit_breaker=bot.breaker.snapshot(),
        cache=cache,
        llm=llm,
        llm_capabilities=llm_capabilities(bot),
        retrieval=retrieval,
        rate_limit=rate_limit,
        spend=spend,
        persistence=persistence_status(ctx, not_ready),
        uptime_s=round(time.monotonic() - ctx.started, 1),
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def register_health(api: FastAPI, ctx: ApiContext) -> None:
    """GET /health (and HEAD /health)."""

    @api.get(
        "/health",
        response_model=HealthResponse,
        tags=["health"],
        responses={422: ERRORS[422], 503: ERRORS[503]},
    )
    async def health(
        deep: Annotated[bool, Query(description="Also check the LLM endpoint")] = False,
    ) -> HealthResponse:
        """Liveness plus what is serving: mode, knowledge version, circuit breaker, cache."""
        return await health_report(ctx, ctx.bot_or_503(), deep)

    @api.head("/health", include_in_schema=False)
    async def health_head() -> Response:
        """GET /health's status code without its body: the check some load balancers send."""
        ctx.bot_or_503()
        return Response(status_code=200)


def register_metrics(api: FastAPI, ctx: ApiContext) -> None:
    """GET /metrics."""

    @api.get("/metrics", tags=["health"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics."""
        bot = ctx.get_bot()
        if bot is not None:  # today's spend as the shared store has it (all replicas)
            await bot.spend.spent_today()
        return Response(exposition(), media_type="text/plain; version=0.0.4")
