"""What every API route needs: the bot (if one is loaded), the rate limit, settings, history."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from faqbot.bot import FaqBot
from faqbot.config import Settings
from faqbot.contact import support_contact
from faqbot.conversations import ConversationStore
from faqbot.events import TurnResult
from faqbot.ratelimit import RateLimiter
from faqbot.validation import clean_question
from faqbot.web.errors import Unavailable

BotGetter = Callable[[], FaqBot | None]


@dataclass(frozen=True)
class ApiContext:
    """The API's collaborators, shared by the route modules (built once per `create_api`)."""

    get_bot: BotGetter
    limiter: RateLimiter
    settings: Settings
    conversations: ConversationStore
    prefix: str = "/api"
    started: float = field(default_factory=time.monotonic)

    def bot_or_503(self) -> FaqBot:
        """The serving bot; with none loaded the request ends as a 503."""
        bot = self.get_bot()
        if bot is None:
            raise Unavailable
        return bot

    def clean(self, question: str) -> str:
        """The question, cleaned (the request was already counted: faqbot.web.limits)."""
        return clean_question(question, self.settings.max_question_chars)

    def contact_for(self, bot: FaqBot, result: TurnResult) -> str | None:
        """Who to ask instead, for the category the turn was routed to."""
        return support_contact(bot.kb, self.settings.support_contact, result.category)
