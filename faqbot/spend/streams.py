"""A cap on the answers one client has in progress at once (MAX_STREAMS_PER_CLIENT).

Shared by the chat UI and the API of one process (`/api/chat`, `/api/chat/stream`): a client
over the cap is refused at once with TooManyStreamsError (HTTP 429; a polite reply in the chat),
before any LLM call, and its session goes on. Counted per process: answers in progress live in
the process that streams them, so nothing leaks if a replica dies; behind a load balancer that
spreads one client over N replicas, that client may hold N times the cap.
"""

from __future__ import annotations

from collections import Counter
from types import TracebackType

from faqbot.errors import TooManyStreamsError
from faqbot.logs import get_logger
from faqbot.metrics import STREAMS_ACTIVE, STREAMS_REFUSED

log = get_logger("faqbot.spend")


class StreamSlot:
    """One answer in progress; `release()` (or leaving the `with` block) frees it, once."""

    def __init__(self, slots: StreamSlots, client: str) -> None:
        self._slots = slots
        self.client = client
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots._release(self.client)

    def __enter__(self) -> StreamSlot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class StreamSlots:
    """At most `limit` answers in progress per client key (0: no cap, only counted)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._active: Counter[str] = Counter()

    def acquire(self, client: str) -> StreamSlot:
        """A slot for one answer of `client`; TooManyStreamsError when it holds `limit`."""
        if self.limit and self._active[client] >= self.limit:
            STREAMS_REFUSED.inc()
            log.info("streams.refused", client=client, limit=self.limit)
            raise TooManyStreamsError(self.limit)
        self._active[client] += 1
        STREAMS_ACTIVE.inc()
        return StreamSlot(self, client)

    def active(self, client: str | None = None) -> int:
        """Answers in progress, of one client or of all."""
        return self._active[client] if client is not None else sum(self._active.values())

    def _release(self, client: str) -> None:
        self._active[client] -= 1
        if self._active[client] <= 0:
            del self._active[client]  # no key per client ever seen: memory stays bounded
        STREAMS_ACTIVE.dec()
