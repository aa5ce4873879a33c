"""build_bot: the one place that knows settings, files and the concrete LLM together."""

from __future__ import annotations

from faqbot.bot import FaqBot
from faqbot.config import Settings
from faqbot.knowledge import load_knowledge_base


def build_bot(settings: Settings) -> FaqBot:
    """Load the FAQ folder and wire the bot for the configured mode."""
    kb = load_knowledge_base(settings.faq_dir)
    return FaqBot(kb, settings)
