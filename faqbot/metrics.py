"""Prometheus metrics (prometheus-client), recorded once per answered turn."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from faqbot.domain import TurnResult

REGISTRY = CollectorRegistry(auto_describe=True)
TURNS = Counter(
    "faqbot_turns_total",
    "Answered questions by mode, category and outcome",
    ["mode", "category", "outcome"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "faqbot_turn_seconds",
    "Time to answer a question (whole turn)",
    ["mode"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
    registry=REGISTRY,
)
TOKENS = Counter("faqbot_llm_tokens_total", "LLM tokens used", ["kind"], registry=REGISTRY)
COST = Counter("faqbot_llm_cost_usd_total", "Estimated LLM cost in USD", registry=REGISTRY)
# Spend limits (faqbot.spend)
SPEND_TODAY = Gauge(
    "faqbot_spend_deployment_tokens_today",
    "LLM tokens the deployment spent today (UTC) as the budget store counts them "
    "(all replicas when REDIS_URL is set)",
    registry=REGISTRY,
)
SPEND_LIMIT = Gauge(
    "faqbot_spend_limit_tokens",
    "Configured token budgets by scope (conversation, client per day, deployment per day; "
    "0 = no limit)",
    ["scope"],
    registry=REGISTRY,
)
SPEND_LIMITED = Counter(
    "faqbot_spend_limited_turns_total",
    "Questions answered offline because a token budget was reached, by scope",
    ["scope"],
    registry=REGISTRY,
)
STREAMS_ACTIVE = Gauge(
    "faqbot_streams_active", "Answers in progress in this process", registry=REGISTRY
)
STREAMS_REFUSED = Counter(
    "faqbot_streams_refused_total",
    "Questions refused because their client already had MAX_STREAMS_PER_CLIENT answers in progress",
    registry=REGISTRY,
)

SPECULATIVE = Counter(
    "faqbot_speculative_answers_total",
    "Answer calls started before the router decided (SPECULATIVE_ANSWER): kept when the router "
    "agreed, discarded (tokens wasted) when it did not",
    ["outcome"],
    registry=REGISTRY,
)


def observe_speculation(outcome: str) -> None:
    """`kept` or `discarded`."""
    SPECULATIVE.labels(outcome).inc()


def observe_turn(result: TurnResult) -> None:
    if result.fallback:
        outcome = "fallback"
    elif result.refused:
        outcome = "refused"
    elif result.cached:
        outcome = "cached"
    else:
        outcome = "answered"
    TURNS.labels(result.mode, result.category or "none", outcome).inc()
    LATENCY.labels(result.mode).observe(result.elapsed_s)
    if result.usage.total_tokens:
        TOKENS.labels("prompt").inc(result.usage.prompt_tokens)
        TOKENS.labels("completion").inc(result.usage.completion_tokens)
        COST.inc(result.usage.cost_usd)


def exposition() -> bytes:
    """The Prometheus text format of every faqbot metric."""
    return generate_latest(REGISTRY)


TOOL_CHOICE_REFUSED = Counter(
    "faqbot_llm_tool_choice_refused_total",
    "Router calls whose tool_choice form the endpoint refused (a capability mismatch, not a "
    "provider failure: the router fell back to the next form; faqbot.llm.capabilities)",
    ["form"],
    registry=REGISTRY,
)


def observe_tool_choice_refused(form: str) -> None:
    """A router call's `form` ("required", "named", "auto") was refused by the endpoint."""
    TOOL_CHOICE_REFUSED.labels(form).inc()
