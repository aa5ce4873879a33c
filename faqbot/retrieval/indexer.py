"""Background encoding of entry vectors: start-up and hot reload never wait for the model.

The bot serves lexical answers at once; `SemanticIndexer.start` encodes the FAQ's texts in a
worker thread (only those missing from the disk cache) and hands the finished DenseIndex back,
and the bot switches to hybrid ranking. A newer start supersedes an older one still running.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from faqbot.domain import FaqEntry
from faqbot.errors import EmbeddingError
from faqbot.logs import get_logger
from faqbot.retrieval.confidence import Calibrator, calibrator_for
from faqbot.retrieval.embedders import Embedder
from faqbot.retrieval.hybrid import QueryEncoder
from faqbot.retrieval.vectors import QUESTION, DenseIndex, VectorCache, build_dense_index

BACKGROUND = Path(__file__).parent / "data" / "background.txt"


def background_questions() -> list[str]:
    """Questions no product FAQ answers (trivia, lab practice, IT help, chit-chat, injection)."""
    lines = BACKGROUND.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


log = get_logger("faqbot.indexer")
State = Literal["encoding", "ready", "error"]
OnReady = Callable[[str, DenseIndex], None]  # (knowledge version, index)


@dataclass
class IndexStatus:
    """What health reports about the semantic side."""

    state: State = "encoding"
    model: str = ""
    version: str = ""
    encoded: int = 0
    to_encode: int = 0
    seconds: float = 0.0
    error: str | None = None


class SemanticIndexer:
    """Owns the embedder, its query cache, its calibration and the entry-vector cache."""

    def __init__(self, embedder: Embedder, cache_dir: Path | None) -> None:
        self.embedder = embedder
        self.queries = QueryEncoder(embedder)
        self.calibrator: Calibrator = calibrator_for(embedder.model_id)
        self.cache = VectorCache(cache_dir, embedder.model_id)
        self._background_cache = VectorCache(cache_dir, embedder.model_id + "#background")
        self.background: np.ndarray | None = None
        self._status = IndexStatus(model=embedder.model_id)
        self._lock = threading.Lock()  # one encoding at a time
        self._latest = ""
        self._ready = threading.Condition()

    def status(self) -> dict[str, Any]:
        status = asdict(self._status)
        if self.queries.down():
            status["query_embedding"] = "failing: questions are ranked lexically meanwhile"
        return status

    def start(self, entries: Sequence[FaqEntry], version: str, on_ready: OnReady) -> None:
        """Encode in a daemon thread, then call `on_ready` unless a newer version was started."""
        self._latest = version
        self._status = IndexStatus(state="encoding", model=self.embedder.model_id, version=version)
        thread = threading.Thread(
            target=self._run, args=(tuple(entries), version, on_ready), daemon=True,
            name="faqbot-encoder",
        )  # fmt: skip
        thread.start()

    def _run(self, entries: tuple[FaqEntry, ...], version: str, on_ready: OnReady) -> None:
        status = self._status  # this run's own status: a newer start() replaces the attribute
        try:
            with self._lock:
                if version == self._latest:
                    self._encode(entries, version, on_ready, status)
        finally:
            with self._ready:
                self._ready.notify_all()

    def _encode(
        self, entries: tuple[FaqEntry, ...], version: str, on_ready: OnReady, status: IndexStatus
    ) -> None:
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            status.encoded, status.to_encode = done, total

        try:
            if self.background is None:
                self.background = self.encode_background()
            index = build_dense_index(entries, self.embedder, self.cache, progress)
        except (EmbeddingError, ValueError) as exc:  # health shows the summary, the log says all
            shown = exc.summary if isinstance(exc, EmbeddingError) else str(exc)
            status.state, status.error = "error", shown[:300]
            log.warning("vectors.encoding_failed", error=str(exc)[:300], serving="lexical")
            return
        seconds = round(time.perf_counter() - started, 2)
        if version != self._latest:
            return
        on_ready(version, index)
        status.state, status.seconds = "ready", seconds
        log.info("vectors.ready", version=version, encoded=status.to_encode,
                 rows=int(index.matrix.shape[0]), seconds=seconds)  # fmt: skip

    def encode_background(self) -> np.ndarray:
        """The generic off-topic question bank (data/background.txt), encoded once and cached."""
        bank = [
            FaqEntry(id=f"bg-{i}", category="background", question=text, answer="")
            for i, text in enumerate(background_questions())
        ]
        index = build_dense_index(bank, self.embedder, self._background_cache, fields=(QUESTION,))
        return index.matrix

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the latest start has finished (ready or failed); for CLIs and tests."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._ready:
            while self._status.state == "encoding":
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._ready.wait(left if left is not None else 1.0)
        return self._status.state == "ready"
