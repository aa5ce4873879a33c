"""Token budgets: how many LLM tokens a conversation, a client per UTC day and the whole
deployment per UTC day may spend, so a public widget cannot spend the owner's money without end.

The budget is checked before each LLM call (router and answer) against what was spent so far.
Tokens are charged while they are spent, through a `Tab` per turn (faqbot.spend.tab): the prompt
when a call starts, the completion as it streams, the provider's `usage` when it arrives and, for
a call abandoned mid-stream (a client that leaves after the first token, the chat's Stop), what
it consumed; the provider bills all of that whether or not anyone reads the answer. A turn may
overshoot a budget by the calls it had already started. When a budget is spent the bot answers
offline (retrieval) with a notice saying why: never an error. The broadest
budget reached is the one reported (deployment, then client, then conversation), so the notice
gives the right advice ("start a new conversation" only helps with a conversation's budget).

Keys (in Redis or in memory): `<ns>/spend/deployment/<day>`,
`<ns>/spend/client/<day>/<client>`, `<ns>/spend/conversation/<id>`. Day keys expire a little
after their day; a conversation's count a day after its first LLM call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faqbot.config import Settings
from faqbot.domain import Fallback, Usage
from faqbot.logs import get_logger
from faqbot.metrics import SPEND_LIMIT, SPEND_LIMITED, SPEND_TODAY
from faqbot.spend.counters import FailoverCounters
from faqbot.spend.tab import Keys, Scope, Tab

log = get_logger("faqbot.spend")
DAY_S = 86_400
DAY_KEY_EXPIRY_S = DAY_S + 3_600  # a day key outlives its day, whenever it was created
CONVERSATION_EXPIRY_S = DAY_S

OFFLINE = "so this answer is quoted directly from the FAQ."
NOTICES: dict[Scope, str] = {
    "deployment": f"Today's AI budget for this service is used up, {OFFLINE} "
    "AI-written answers return after midnight UTC.",
    "client": f"You have reached today's limit of AI-written answers, {OFFLINE} "
    "They return after midnight UTC.",
    "conversation": f"This conversation has reached its limit of AI-written answers, {OFFLINE} "
    "Start a new conversation to get them again.",
}


@dataclass(frozen=True, slots=True)
class Spender:
    """Who a turn's tokens are charged to: the client (`ip:<addr>` or `user:<id>`, as the rate
    limit names it) and the conversation. None parts are not limited (the CLI has neither)."""

    client: str | None = None
    conversation: str | None = None


class BudgetReached(Exception):
    """A budget was spent between two LLM calls of one turn: answer offline with `fallback`."""

    def __init__(self, fallback: Fallback) -> None:
        super().__init__(fallback.reason)
        self.fallback = fallback


class TokenBudgets:
    """The three budgets (0 = no limit) over FailoverCounters; the deployment is always counted,
    so /api/health and /api/metrics can show today's spend even without a deployment budget."""

    def __init__(
        self,
        *,
        conversation_tokens: int = 0,
        client_daily_tokens: int = 0,
        deployment_daily_tokens: int = 0,
        redis_url: str | None = None,
        namespace: str = "faqbot",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limits: dict[Scope, int] = {
            "deployment": deployment_daily_tokens,
            "client": client_daily_tokens,
            "conversation": conversation_tokens,
        }
        self.counters = FailoverCounters(redis_url)
        self.namespace = namespace
        self._clock = clock
        for scope, limit in self.limits.items():
            SPEND_LIMIT.labels(scope).set(limit)

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenBudgets:
        return cls(
            conversation_tokens=settings.spend_conversation_tokens,
            client_daily_tokens=settings.spend_client_daily_tokens,
            deployment_daily_tokens=settings.spend_deployment_daily_tokens,
            redis_url=settings.redis_url,
        )

    def day(self) -> str:
        """Today in UTC, as the day keys name it."""
        return time.strftime("%Y-%m-%d", time.gmtime(self._clock()))

    def _deployment_key(self) -> str:
        return f"{self.namespace}/spend/deployment/{self.day()}"

    def keys(self, who: Spender | None) -> Keys:
        """(scope, key, expiry) of every count this spender's tokens go to, broadest first."""
        base, day = f"{self.namespace}/spend", self.day()
        keys: Keys = [("deployment", self._deployment_key(), DAY_KEY_EXPIRY_S)]
        if who is not None and who.client and self.limits["client"]:
            keys.append(("client", f"{base}/client/{day}/{who.client}", DAY_KEY_EXPIRY_S))
        if who is not None and who.conversation and self.limits["conversation"]:
            key = f"{base}/conversation/{who.conversation}"
            keys.append(("conversation", key, CONVERSATION_EXPIRY_S))
        return keys

    async def check(self, who: Spender | None) -> Fallback | None:
        """The offline notice of the broadest budget this spender has used up, else None.

        One read of all its counts (one Redis round trip). A fault of the counters themselves
        never stops an answer: it is logged and the LLM is allowed (fail open, like the rate
        limit).
        """
        try:
            limited = [(s, k) for s, k, _ in self.keys(who) if self.limits[s]]
            spent = await self.counters.get_many([key for _, key in limited])
        except Exception:
            log.exception("spend.check_failed")
            return None
        for (scope, _), total in zip(limited, spent, strict=True):
            limit = self.limits[scope]
            if total >= limit:
                SPEND_LIMITED.labels(scope).inc()
                log.info("spend.budget_reached", scope=scope, limit=limit)
                return Fallback(f"budget_{scope}", NOTICES[scope])
        return None

    async def ensure(self, who: Spender | None) -> None:
        """`check` for the middle of a turn: raise BudgetReached when a budget is spent."""
        fallback = await self.check(who)
        if fallback is not None:
            raise BudgetReached(fallback)

    def tab(self, who: Spender | None) -> Tab:
        """A turn's tab: charges this spender's budgets as the turn's calls spend tokens."""
        return Tab(self, self.keys(who), waits=self.counters.backend == "redis")

    async def record(self, who: Spender | None, usage: Usage) -> None:
        """Charge one finished call's tokens to every budget of this spender."""
        if usage.total_tokens > 0:
            await self.add(self.keys(who), usage.total_tokens)

    async def add(self, keys: Keys, tokens: int) -> None:
        """Add `tokens` (negative: a correction) to every count in `keys`, in one write (one
        Redis round trip); a fault is only logged."""
        if not tokens or not keys:
            return
        try:
            totals = await self.counters.add([(k, tokens, ttl) for _, k, ttl in keys])
        except Exception:
            log.exception("spend.record_failed", tokens=tokens)
            return
        SPEND_TODAY.set(totals[0])  # the deployment's count comes first

    async def spent_today(self) -> int:
        """The deployment's tokens today (all replicas when Redis counts)."""
        (total,) = await self.counters.get_many([self._deployment_key()])
        SPEND_TODAY.set(total)
        return total

    async def status(self) -> dict[str, Any]:
        """For /api/health: today's deployment tokens, the limits, where they are counted.

        Never names a client or a conversation. `degraded` says why the shared store is
        bypassed; `deployment_budget_reached` that every answer is offline until midnight UTC.
        """
        await self.counters.ping()
        spent = await self.spent_today()
        limit = self.limits["deployment"]
        report: dict[str, Any] = {
            "day": self.day(),
            "deployment_tokens_today": spent,
            "deployment_budget_reached": bool(limit) and spent >= limit,
            "limits": {
                "conversation_tokens": self.limits["conversation"],
                "client_daily_tokens": self.limits["client"],
                "deployment_daily_tokens": limit,
            },
            "backend": self.counters.backend,
            "shared": self.counters.shared,
        }
        if self.counters.degraded:
            report["degraded"] = self.counters.degraded
        return report
