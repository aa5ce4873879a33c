"""Server-side conversation histories for the HTTP API (the chat UI keeps its own per session).

Bounded three ways: turns per conversation, number of conversations (LRU), idle time (TTL).
With `REDIS_URL` set the histories live in Redis (same bounds), so any replica continues any
conversation; while Redis is down each replica keeps the turns it saw in its own memory, and a
conversation that moved replicas meanwhile continues without its earlier turns.

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
import json
import os
import secrets
import uuid
from pathlib import Path

from cachetools import TTLCache

from faqbot.domain import ChatTurn
from faqbot.state.redis import SharedRedis

TOKEN_PREFIX = "v1."  # noqa: S105 - a version tag, not a secret: tells later schemes apart
# One random secret per process, used when CONVERSATION_SECRET is not set: tokens then stop
# working at a restart and on any other replica (multi-replica deployments must set the secret).
_PROCESS_SECRET = secrets.token_bytes(32)


SECRET_FILE = "conversation.key"  # noqa: S105 - a file name, not a secret


def stored_secret(data_dir: Path) -> bytes:
    """A random secret kept in DATA_DIR (made on first use, owner-only): with persistence on
    and CONVERSATION_SECRET unset, tokens then survive a restart, as the conversations do."""
    path = Path(data_dir) / SECRET_FILE
    try:
        secret = path.read_bytes()
        if len(secret) >= 32:
            return secret
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(secret)
        out.flush()
        os.fsync(out.fileno())
    return secret


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
        raw = conversation_id.encode("utf-8", "surrogatepass")  # any str: never raises
        mac = hmac.new(self._key, raw, hashlib.sha256).digest()
        return TOKEN_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def verify(self, conversation_id: str, token: str | None) -> bool:
        """Is `token` the one this server issued for `conversation_id`? (Constant time.)"""
        if not token or not token.isascii():  # compare_digest raises on non-ASCII text
            return False
        return hmac.compare_digest(self.token(conversation_id), token)


class ConversationStore:
    """API conversation histories: per process, and in Redis (shared by replicas) when set."""

    def __init__(
        self,
        max_turns: int = 20,
        ttl_s: float = 3600,
        max_conversations: int = 10_000,
        redis_url: str | None = None,
    ) -> None:
        self.max_turns = max_turns
        self.ttl_s = ttl_s
        self._store: TTLCache[str, tuple[ChatTurn, ...]] = TTLCache(max_conversations, ttl_s)
        self.shared = SharedRedis(redis_url, "conversation store") if redis_url else None

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    async def history(self, conversation_id: str) -> tuple[ChatTurn, ...]:
        """The shared history when Redis answers (another replica may have added turns)."""
        if self.shared is not None:
            raw = await self.shared.run(lambda r: r.get(_key(conversation_id)))
            turns = _decode(raw) if raw is not None else None
            if turns is not None:
                return turns
        return self._store.get(conversation_id, ())

    async def record(self, conversation_id: str, question: str, answer: str) -> None:
        turns = (*await self.history(conversation_id), ChatTurn("user", question))
        turns = (*turns, ChatTurn("assistant", answer))[-self.max_turns :]
        self._store[conversation_id] = turns
        if self.shared is not None:
            value = json.dumps([[t.role, t.content] for t in turns], ensure_ascii=False)
            ttl_ms = max(1, int(self.ttl_s * 1000))
            await self.shared.run(lambda r: r.set(_key(conversation_id), value, px=ttl_ms))

    async def check(self) -> str | None:
        """For readiness and health: why the shared store is down now, or None."""
        return None if self.shared is None else await self.shared.check()

    def __len__(self) -> int:
        return len(self._store)


def _key(conversation_id: str) -> str:
    return "faqbot:conversation:" + conversation_id


def _decode(raw: str | bytes) -> tuple[ChatTurn, ...] | None:
    """A damaged value reads as unknown (the per-process copy is used), never an error."""
    try:
        turns = tuple(ChatTurn(role, str(text)) for role, text in json.loads(raw))
    except (ValueError, TypeError):
        return None
    if all(t.role in ("user", "assistant") for t in turns):
        return turns
    return None
