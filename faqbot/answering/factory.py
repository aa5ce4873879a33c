"""build_bot: the one place that knows settings, files and the concrete LLM together."""

from __future__ import annotations

from faqbot.answering.bot import FaqBot
from faqbot.config import Settings
from faqbot.knowledge import load_knowledge_base
from faqbot.llm.protocol import ChatModel
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
