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
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
import uuid
from pathlib import Path

from cachetools import TTLCache

from faqbot.domain import ChatTurn
from faqbot.logs import get_logger
from faqbot.state.redis import SharedRedis

log = get_logger("faqbot.state")

TOKEN_PREFIX = "v1."  # noqa: S105 - a version tag, not a secret: tells later schemes apart
# One random secret per process, used when CONVERSATION_SECRET is not set: tokens then stop
# working at a restart and on any other replica (multi-replica deployments must set the secret).
_PROCESS_SECRET = secrets.token_bytes(32)


SECRET_FILE = "conversation.key"  # noqa: S105 - a file name, not a secret
SECRET_BYTES = 32
# Keys that could not be saved (full disk, read-only DATA_DIR): kept in memory, per key file,
# with why; every later `stored_secret` call tries to save the same key again
_UNSAVED: dict[Path, tuple[bytes, str]] = {}
_KEYS_LOCK = threading.Lock()


def stored_secret(data_dir: Path) -> bytes:
    """A random secret kept in DATA_DIR (made on first use, owner-only): with persistence on
    and CONVERSATION_SECRET unset, tokens then survive a restart, as the conversations do.

    Never raises for the file: one that cannot be written (full disk, read-only) leaves the
    key in memory (`unsaved_secret` says why; tokens then end at a restart), and is written
    whole or not at all (a temporary file renamed into place: never an empty or partial key).
    A damaged key file (shorter than a key: an older faqbot's empty file on a full disk) holds
    no usable key and is replaced.
    """
    path = Path(data_dir) / SECRET_FILE
    with _KEYS_LOCK:
        pending = _UNSAVED.get(path)
        secret = pending[0] if pending else secrets.token_bytes(SECRET_BYTES)
        try:
            secret = _load_or_save(path, secret)
        except OSError as exc:
            reason = f"{type(exc).__name__}: {exc.strerror or exc}"
            if pending is None or pending[1] != reason:
                log.error("conversation.key_not_saved", path=str(path), error=reason)
            _UNSAVED[path] = (secret, reason)
            return secret
        if pending is not None and secret == pending[0]:
            log.info("conversation.key_saved", path=str(path))
        elif pending is not None:  # another process saved its key first: this one's tokens
            log.warning("conversation.key_replaced", path=str(path))  # end at a restart
        _UNSAVED.pop(path, None)
        return secret


def unsaved_secret(data_dir: Path) -> str | None:
    """Why this DATA_DIR's conversation key lives in memory only (None: saved, or never made).

    Tries to save it again first, so the answer turns None once the disk has room."""
    path = Path(data_dir) / SECRET_FILE
    if path not in _UNSAVED:
        return None
    stored_secret(data_dir)
    pending = _UNSAVED.get(path)
    if pending is None:
        return None
    return f"conversation key not saved in DATA_DIR ({pending[1]}): tokens end at a restart"


def _load_or_save(path: Path, secret: bytes) -> bytes:
    """The key in `path`, else `secret` saved there (the key a concurrent process saved first
    wins: tokens it issued stay valid)."""
    try:
        existing = path.read_bytes()
    except FileNotFoundError:
        existing = None
    if existing is not None and len(existing) >= SECRET_BYTES:
        return existing
    if existing is not None:
        log.warning("conversation.key_damaged", path=str(path), size=len(existing))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".conversation-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:  # mkstemp: owner-only (0600)
            out.write(secret)
            out.flush()
            os.fsync(out.fileno())
        if existing is None:
            try:
                os.link(tmp, path)  # never replaces a key another process saved meanwhile
            except FileExistsError:
                return _load_or_save(path, secret)
            except OSError:  # a file system without hard links
                os.replace(tmp, path)
        else:
            os.replace(tmp, path)
        _sync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return secret


def _sync_dir(folder: Path) -> None:
    """The rename itself survives a power cut (where directories can be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
