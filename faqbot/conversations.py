"""Server-side conversation histories for the HTTP API (the chat UI keeps its own per session).

Bounded three ways: turns per conversation, number of conversations (LRU), idle time (TTL).
One process only; several replicas need sticky routing by conversation id (see README).

Ownership: a conversation id is an identifier, not a credential (it is logged, and it travels
in every SSE `route` event). The first answer of a conversation also hands its client a
`conversation_token`, an HMAC-SHA256 of the id under a server secret (`ConversationSigner`); a
follow-up continues the conversation only when it brings that token back. Without a valid token
the question starts a new conversation, so nobody who merely learnt an id can read the earlier
turns back (the follow-up rewrite `standalone_question` quotes them) or write into them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid

from cachetools import TTLCache

from faqbot.domain import ChatTurn

TOKEN_PREFIX = "v1."  # noqa: S105 - a version tag, not a secret: tells later schemes apart
# One random secret per process, used when CONVERSATION_SECRET is not set: tokens then stop
# working at a restart and on any other replica (multi-replica deployments must set the secret).
_PROCESS_SECRET = secrets.token_bytes(32)


class ConversationSigner:
    """Issues and checks the token that binds a conversation id to the client it was given to."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._key = hashlib.sha256(
            b"faqbot-conversation\x00" + (secret or _PROCESS_SECRET)
        ).digest()
        self.per_process = secret is None

    def __repr__(self) -> str:  # never the key
        return f"ConversationSigner(per_process={self.per_process})"

    def token(self, conversation_id: str) -> str:
        mac = hmac.new(self._key, conversation_id.encode("utf-8"), hashlib.sha256).digest()
        return TOKEN_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def verify(self, conversation_id: str, token: str | None) -> bool:
        """Is `token` the one this server issued for `conversation_id`? (Constant time.)"""
        if not token:
            return False
        return hmac.compare_digest(self.token(conversation_id), token)


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
