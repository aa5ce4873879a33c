"""Entry vectors: what is embedded per entry, a disk cache keyed by model and text, the matrix.

Each entry contributes one row per matching text: its question, each alternate question (a query
is scored against the best of them) and the question with its answer. Encoding a large FAQ takes
minutes on a CPU, so rows are cached on disk under `data_dir/vectors/`, one file per model id,
keyed by a hash of the text: a restart or a hot reload encodes only new or changed texts.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faqbot.domain import FaqEntry
from faqbot.errors import EmbeddingError
from faqbot.logs import get_logger
from faqbot.retrieval.embedders import Embedder, Kind

log = get_logger("faqbot.vectors")

QUESTION, ALTERNATE, QA, ANSWER = 0, 1, 2, 3
BATCH = 32
Progress = Callable[[int, int], None]  # (texts done, texts to encode)


def entry_texts(entry: FaqEntry) -> list[tuple[int, str, Kind]]:
    """(field, text, embedding side) rows of one entry.

    Questions use the query side (question-to-question matching is symmetric); the question with
    its answer, and the answer alone, are passages: users often ask about a fact of the answer
    in words the question does not use.
    """
    rows: list[tuple[int, str, Kind]] = [(QUESTION, entry.question, "query")]
    rows += [(ALTERNATE, alt, "query") for alt in entry.alternate_questions]
    rows.append((QA, f"{entry.question}\n{entry.answer}", "passage"))
    rows.append((ANSWER, entry.answer, "passage"))
    return rows


def text_key(kind: Kind, text: str) -> str:
    return hashlib.sha256(f"{kind}\x00{text}".encode()).hexdigest()[:32]


class VectorCache:
    """Text-hash -> vector, persisted as one .npz per model id (written atomically)."""

    def __init__(self, directory: Path | None, model_id: str) -> None:
        self.model_id = model_id
        slug = hashlib.sha256(model_id.encode()).hexdigest()[:16]
        self.path = directory / f"{slug}.npz" if directory else None
        self._rows: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            with np.load(self.path, allow_pickle=False) as data:
                if str(data["model_id"]) != self.model_id:
                    return
                keys, vectors = data["keys"], data["vectors"]
                self._rows = {str(k): vectors[i] for i, k in enumerate(keys)}
        except Exception as exc:  # an empty, torn or foreign file: re-encode
            # np.load raises EOFError, zipfile.BadZipFile, TypeError (a .npy), ValueError...
            log.warning("vectors.cache_unreadable", path=str(self.path), error=str(exc))
            self._rows = {}

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key: str) -> np.ndarray | None:
        return self._rows.get(key)

    def put_many(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        with self._lock:
            for key, vector in zip(keys, vectors, strict=True):
                self._rows[key] = vector

    def save(self, keep: set[str]) -> None:
        """Write the rows in `keep` (the current FAQ's texts) to disk; drop the rest."""
        if self.path is None:
            return
        with self._lock:
            keys = sorted(k for k in keep if k in self._rows)
            vectors = np.stack([self._rows[k] for k in keys]) if keys else np.zeros((0, 0))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp.npz")
            with os.fdopen(fd, "wb") as f:
                np.savez(f, model_id=np.array(self.model_id), keys=np.array(keys), vectors=vectors)
                f.flush()
                os.fsync(f.fileno())  # never rename an empty file into place after a crash
            os.replace(tmp, self.path)
        except OSError as exc:  # a read-only data dir costs re-encoding at restart, nothing else
            log.warning("vectors.cache_not_saved", path=str(self.path), error=str(exc))


@dataclass(frozen=True, slots=True)
class DenseIndex:
    """Unit vectors of every entry text; `owner[i]` is the entry index of row i."""

    model_id: str
    matrix: np.ndarray
    owner: np.ndarray
    field: np.ndarray
    n_entries: int

    def entry_scores(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per entry: best cosine over its question and alternates; cosines with Q+A, answer."""
        sims = self.matrix @ query.astype(np.float32)
        best_q = np.full(self.n_entries, -1.0, dtype=np.float32)
        is_q = self.field <= ALTERNATE
        np.maximum.at(best_q, self.owner[is_q], sims[is_q])
        return best_q, self._per_entry(sims, QA), self._per_entry(sims, ANSWER)

    def _per_entry(self, sims: np.ndarray, field: int) -> np.ndarray:
        out = np.full(self.n_entries, -1.0, dtype=np.float32)
        rows = self.field == field
        out[self.owner[rows]] = sims[rows]
        return out


def build_dense_index(
    entries: Sequence[FaqEntry],
    embedder: Embedder,
    cache: VectorCache,
    progress: Progress | None = None,
    fields: tuple[int, ...] = (QUESTION, ALTERNATE, QA, ANSWER),
) -> DenseIndex:
    """Embed every entry text not in the cache (in batches), then assemble the matrix."""
    rows = [
        (i, f, text, kind)
        for i, e in enumerate(entries)
        for f, text, kind in entry_texts(e)
        if f in fields
    ]
    keys = [text_key(kind, text) for _, _, text, kind in rows]
    todo: dict[str, tuple[str, Kind]] = {}  # a text shared by two entries is encoded once
    for key, (_, _, text, kind) in zip(keys, rows, strict=True):
        if cache.get(key) is None:
            todo[key] = (text, kind)
    _encode(embedder, cache, list(todo.items()), progress)
    if todo:
        cache.save(set(keys))
    matrix = (
        np.stack([cache.get(k) for k in keys]).astype(np.float32)  # type: ignore[misc]
        if keys
        else np.zeros((0, embedder.dim), np.float32)
    )
    return DenseIndex(
        model_id=embedder.model_id,
        matrix=matrix,
        owner=np.array([r[0] for r in rows], dtype=np.int64),
        field=np.array([r[1] for r in rows], dtype=np.int8),
        n_entries=len(entries),
    )


def _encode(
    embedder: Embedder,
    cache: VectorCache,
    todo: list[tuple[str, tuple[str, Kind]]],
    progress: Progress | None,
) -> None:
    done, total = 0, len(todo)
    if progress:
        progress(0, total)
    for kind in ("query", "passage"):
        items = [(key, text) for key, (text, k) in todo if k == kind]
        for start in range(0, len(items), BATCH):
            batch = items[start : start + BATCH]
            vectors = embedder.embed([text for _, text in batch], kind=kind)
            if vectors.shape[0] != len(batch):
                raise EmbeddingError(f"embedder returned {vectors.shape[0]} of {len(batch)} rows")
            cache.put_many([key for key, _ in batch], vectors)
            done += len(batch)
            if progress:
                progress(done, total)
