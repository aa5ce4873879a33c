"""What every API route needs: the bot (if one is loaded), the rate limit, settings, history."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from faqbot.answering.bot import FaqBot
from faqbot.answering.contact import support_contact
from faqbot.answering.events import TurnResult
from faqbot.config import Settings
from faqbot.domain import ChatTurn
from faqbot.logs import get_logger
from faqbot.spend import StreamSlots
from faqbot.state.conversations import ConversationSigner, ConversationStore, stored_secret
from faqbot.state.ratelimit import RateLimiter
from faqbot.store.turns import Store
from faqbot.validation import clean_question
from faqbot.web.errors import Unavailable

BotGetter = Callable[[], FaqBot | None]
log = get_logger("faqbot.web")


class Conversation(NamedTuple):
    """The conversation a request continues (or starts): its id, its token, its history."""

    id: str
    token: str
    history: tuple[ChatTurn, ...]


@dataclass(frozen=True)
class ApiContext:
    """The API's collaborators, shared by the route modules (built once per `create_api`)."""

    get_bot: BotGetter
    limiter: RateLimiter
    settings: Settings
    conversations: ConversationStore
    prefix: str = "/api"
    # Extra readiness checks (e.g. the database): each returns why not ready, or None
    ready_checks: tuple[Callable[[], Awaitable[str | None]], ...] = ()
    started: float = field(default_factory=time.monotonic)
    streams: StreamSlots = field(default_factory=lambda: StreamSlots(0))
    store: Store | None = None  # persistence on: conversations and feedback in the database

    def bot_or_503(self) -> FaqBot:
        """The serving bot; with none loaded the request ends as a 503."""
        bot = self.get_bot()
        if bot is None:
            raise Unavailable
        return bot

    @cached_property
    def signer(self) -> ConversationSigner:
        """Signs conversation tokens with CONVERSATION_SECRET; unset, with a secret kept in
        DATA_DIR when conversations are stored (they outlive the process), else per process."""
        secret = self.settings.conversation_secret
        if secret is not None:
            return ConversationSigner(secret.get_secret_value().encode())
        if self.store is not None:
            return ConversationSigner(stored_secret(self.settings.data_dir))
        return ConversationSigner(None)

    async def conversation(self, conversation_id: str | None, token: str | None) -> Conversation:
        """The conversation a request continues, if it proves it owns it; else a new one.

        A conversation id is not a credential: without the token issued with it (a restart
        with no CONVERSATION_SECRET set and persistence off, another client, a forged or old
        id) the question starts a new conversation and sees none of the earlier turns. Its
        history comes from memory, else (after a restart) from the database.
        """
        if conversation_id is not None:
            if self.signer.verify(conversation_id, token):
                history = await self._history(conversation_id)
                return Conversation(conversation_id, token or "", history)
            log.info(
                "api.conversation_not_continued",
                requested=conversation_id,
                reason="invalid token" if token else "no token",
            )
        new_id = self.conversations.new_id()
        return Conversation(new_id, self.signer.token(new_id), ())

    async def _history(self, conversation_id: str) -> tuple[ChatTurn, ...]:
        """From memory (or Redis); else, after a restart, from the database."""
        history = await self.conversations.history(conversation_id)
        if history or self.store is None:
            return history
        try:
            stored = await self.store.history(conversation_id, self.conversations.max_turns // 2)
        except Exception as exc:  # the database is down: answer without the old context
            log.error("store.history_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return ()
        for question, answer in zip(stored[::2], stored[1::2], strict=True):
            await self.conversations.record(conversation_id, question.content, answer.content)
        return await self.conversations.history(conversation_id)

    def clean(self, question: str) -> str:
        """The question, cleaned (the request was already counted: faqbot.web.limits)."""
        return clean_question(question, self.settings.max_question_chars)

    def contact_for(self, bot: FaqBot, result: TurnResult) -> str | None:
        """Who to ask instead, for the category the turn was routed to."""
        return support_contact(bot.kb, self.settings.support_contact, result.category)
