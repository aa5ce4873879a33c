"""build_bot: the one place that knows settings, files and the concrete LLM together."""

from __future__ import annotations

import asyncio
import copy
import time

from faqbot.answering.bot import FaqBot
from faqbot.answering.router import LLMRouter
from faqbot.config import Settings
from faqbot.knowledge import load_knowledge_base
from faqbot.llm.capabilities import MEMORY
from faqbot.llm.protocol import ChatModel
from faqbot.logs import get_logger
from faqbot.retrieval.factory import build_embedder
from faqbot.retrieval.indexer import SemanticIndexer


def build_model(settings: Settings) -> ChatModel | None:
    """The configured OpenAI-compatible model, or None (offline mode) without an API key."""
    if settings.openai_api_key is None:
        return None
    from faqbot.llm.openai_model import OpenAIChatModel, make_client, retry_wait_bound

    silence = settings.llm_first_token_seconds
    client = make_client(
        settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout,
        connect_timeout=settings.openai_connect_timeout,
        max_retries=settings.openai_max_retries,
        max_retry_wait=retry_wait_bound(silence),
    )
    return OpenAIChatModel(
        client,
        model=settings.openai_model,
        max_tokens=settings.openai_max_tokens,
        temperature=settings.openai_temperature,
        prices=settings.llm_price_table,
        first_token_s=silence,
        stall_s=silence,
        prefill_s_per_1k=settings.llm_first_token_seconds_per_1k_tokens,
    )


def build_semantic(settings: Settings) -> SemanticIndexer | None:
    """The semantic side (embedder, query cache, vector cache), or None for lexical-only."""
    embedder = build_embedder(settings)
    if embedder is None:
        return None
    return SemanticIndexer(embedder, settings.data_dir / "vectors")


def build_bot(
    settings: Settings,
    model: ChatModel | None = None,
    semantic: SemanticIndexer | None = None,
) -> FaqBot:
    """Load the FAQ folder and wire the bot for the configured mode (vectors encode behind)."""
    kb = load_knowledge_base(settings.faq_dir)
    return FaqBot(
        kb,
        settings,
        model=model if model is not None else build_model(settings),
        semantic=semantic if semantic is not None else build_semantic(settings),
    )


WARM_UP_SECONDS = 120.0
log = get_logger("faqbot.llm")


async def warm_up(bot: FaqBot, timeout_s: float = WARM_UP_SECONDS) -> dict[str, object] | None:
    """At start, off the request path (LLM_WARM_UP): one router call with a greeting, with no
    first-token deadline, so a local server loads the model and caches the router's prompt
    prefix, and the router learns which tool_choice form the endpoint takes (per process,
    faqbot.llm.capabilities) before the first user waits on it. Logs the endpoint's
    capabilities in one line (`llm.capabilities`) and returns them; never raises, never
    touches the circuit breaker."""
    model = bot.model
    if model is None or not bot.settings.llm_warm_up:
        return None
    patient = copy.copy(model)
    for attr in ("first_token_s", "stall_s"):  # OpenAIChatModel's silence bounds
        if hasattr(patient, attr):
            setattr(patient, attr, None)
    router = LLMRouter(
        patient, bot.kb, bot.retriever, app_name=bot.settings.app_name, history_turns=0
    )
    started = time.perf_counter()
    error = None
    try:
        async with asyncio.timeout(timeout_s):
            await router.route("Hello", ())
    except Exception as exc:  # the first question will tell; the breaker decides then
        error = f"{type(exc).__name__}: {exc}"[:200]
    report: dict[str, object] = {
        "endpoint": model.endpoint,
        "warm_up_s": round(time.perf_counter() - started, 2),
        **MEMORY.snapshot().get(model.endpoint, {}),
    }
    if error:
        report["warm_up_error"] = error
    log.info("llm.capabilities", **report)
    return report
