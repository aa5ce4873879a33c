"""Server-side conversation histories for the HTTP API (the chat UI keeps its own per session).

Bounded three ways: turns per conversation, number of conversations (LRU), idle time (TTL).
One process only; several replicas need sticky routing by conversation id (see README).
"""

from __future__ import annotations

import uuid

from cachetools import TTLCache

from faqbot.domain import ChatTurn


class ConversationStore:
    def __init__(self, max_turns: int = 20, ttl_s: float = 3600, max_conversations: int = 10_000):
        self.max_turns = max_turns
        self._store: TTLCache[str, tuple[ChatTurn, ...]] = TTLCache(max_conversations, ttl_s)

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def history(self, conversation_id: str) -> tuple[ChatTurn, ...]:
        return self._store.get(conversation_id, ())

    def record(self, conversation_id: str, question: str, answer: str) -> None:
        turns = (*self.history(conversation_id), ChatTurn("user", question))
        turns = (*turns, ChatTurn("assistant", answer))
        self._store[conversation_id] = turns[-self.max_turns :]

    def __len__(self) -> int:
        return len(self._store)
