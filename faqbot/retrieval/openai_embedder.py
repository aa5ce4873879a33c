"""OpenAIEmbedder: the Embedder seam over any OpenAI-compatible `/v1/embeddings` endpoint.

Works with OpenAI, Azure-style gateways, Ollama, vLLM, LM Studio and text-embeddings-inference.
The client is the synchronous `openai.OpenAI`: `embed` blocks, and callers run it in a worker
thread. Every failure (HTTP status, transport, timeout, a body of the wrong shape, NaN) becomes
`EmbeddingError`, whose message names the endpoint but never the API key, so retrieval can go on
lexical-only and the operator can read why.

`dim` is learned from the first successful response and is 0 until then. A probe request in the
constructor would make start-up block on, or fail with, an endpoint that lexical retrieval does
not need; the first real `embed` call (the FAQ's passages) sets it instead. A later response with
another dimension is an error: the vectors would no longer share a space.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Sequence
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import numpy as np
import openai

from faqbot.errors import EmbeddingError
from faqbot.retrieval.embedders import Kind, normalise_rows

MAX_BATCH = 256  # inputs per request; well under the API's 2048 and its 300k-token cap
DEFAULT_BASE_URL = "https://api.openai.com/v1"
NO_KEY = "no-key"  # the SDK insists on a key; local servers ignore it


def endpoint_label(base_url: str | None) -> str:
    """Host and path of the endpoint, without scheme, credentials or query (for ids and logs)."""
    if not base_url:
        return "api.openai.com"
    parts = urlsplit(base_url)
    netloc = parts.netloc.rpartition("@")[2]  # drop user:password@
    label = f"{netloc}{parts.path}".rstrip("/") if netloc else base_url.split("?")[0]
    return "api.openai.com" if label == "api.openai.com/v1" else label


def _decode(value: Any) -> np.ndarray:
    """One vector from a float list or a base64 string of little-endian float32."""
    if isinstance(value, str):
        vector = np.frombuffer(base64.b64decode(value, validate=True), dtype="<f4")
    else:
        vector = np.asarray(value, dtype=np.float32)
    if vector.ndim != 1:
        raise ValueError("an embedding is not a flat list of numbers")
    return vector.astype(np.float32, copy=False)


class OpenAIEmbedder:
    """Embedder over an OpenAI-compatible endpoint; batches, validates and normalises responses.

    `kind` is ignored: OpenAI-style embedding models embed queries and passages alike. Blank texts
    are not sent (the API rejects empty input) and get zero rows. `encoding_format` "float" is
    the default because every compatible server speaks it; "base64" is smaller on the wire and
    both forms are decoded here (some servers ignore the request and send the other one).

    `billed`: such an endpoint is taken to bill per token, so the query texts a question sends
    it are charged to the asker's token budget (faqbot.answering.bot, faqbot.spend).
    """

    billed: ClassVar[bool] = True

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
        max_retries: int = 1,
        batch_size: int = MAX_BATCH,
        encoding_format: Literal["float", "base64"] = "float",
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
        label = self._redact(endpoint_label(base_url), api_key)
        self.model = model
        self.dim = 0
        self.model_id = f"openai:{label}:{model}"
        self.batch_size = batch_size
        self.encoding_format: Literal["float", "base64"] = encoding_format
        self.timeout = timeout
        self._secret = api_key or ""
        self._where = f"embeddings {label} ({model})"
        self._lock = threading.Lock()
        # An explicit base URL: without one the SDK would read OPENAI_BASE_URL from the
        # environment, and model_id would then name the wrong endpoint.
        self._client = openai.OpenAI(
            api_key=api_key or NO_KEY,
            base_url=base_url or DEFAULT_BASE_URL,
            timeout=openai.Timeout(timeout, connect=min(timeout, 5.0)),
            max_retries=max_retries,
        )

    @staticmethod
    def _redact(text: str, secret: str | None) -> str:
        return text.replace(secret, "[redacted]") if secret else text

    def _fail(self, problem: str, summary: str | None = None) -> EmbeddingError:
        """The error; `summary` leaves out the provider's own words (health shows it)."""
        return EmbeddingError(
            self._redact(f"{self._where}: {problem}", self._secret),
            summary=self._redact(f"{self._where}: {summary or problem}", self._secret),
        )

    def embed(self, texts: Sequence[str], *, kind: Kind = "query") -> np.ndarray:
        """Rows in the order of `texts`, L2-normalised; one request per `batch_size` texts."""
        sent = [i for i, t in enumerate(texts) if t.strip()]
        if not sent:
            if self.dim or not texts:
                return np.zeros((len(texts), self.dim), dtype=np.float32)
            raise self._fail("only blank texts, and the dimension is not known yet")
        parts = [
            self._request([texts[i] for i in sent[start : start + self.batch_size]])
            for start in range(0, len(sent), self.batch_size)
        ]
        matrix = np.zeros((len(texts), self.dim), dtype=np.float32)
        matrix[sent] = np.concatenate(parts)
        return normalise_rows(matrix)

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def _request(self, batch: list[str]) -> np.ndarray:
        try:
            response = self._client.embeddings.create(
                model=self.model, input=batch, encoding_format=self.encoding_format
            )
        except openai.APITimeoutError as exc:
            raise self._fail(f"timed out after {self.timeout:g} s") from exc
        except openai.APIStatusError as exc:
            status = f"HTTP {exc.status_code}"
            raise self._fail(f"{status}{self._detail(exc)}", summary=status) from exc
        except openai.APIConnectionError as exc:
            cause = type(exc.__cause__).__name__ if exc.__cause__ else type(exc).__name__
            raise self._fail(f"connection failed ({cause})") from exc
        except Exception as exc:  # the SDK raises plain ValueError/JSONDecodeError on bad bodies
            raise self._fail(f"unusable response ({type(exc).__name__})") from exc
        return self._check(response, len(batch))

    @staticmethod
    def _detail(exc: openai.APIStatusError) -> str:
        body = exc.body
        message = body.get("message") if isinstance(body, dict) else None
        return f": {str(message)[:200]}" if message else ""

    def _check(self, response: Any, expected: int) -> np.ndarray:
        """The batch's vectors as a matrix, in input order, after every shape check."""
        data = getattr(response, "data", None)  # a non-JSON 200 comes back as a plain str
        if not isinstance(data, list) or not data:
            raise self._fail("the response has no embeddings")
        if len(data) != expected:
            raise self._fail(f"{len(data)} embeddings for {expected} inputs")
        try:
            items = sorted(data, key=lambda item: int(item.index))
            indexes = [int(item.index) for item in items]
            vectors = [_decode(item.embedding) for item in items]
        except (AttributeError, TypeError, ValueError) as exc:
            raise self._fail(f"malformed embedding items ({type(exc).__name__})") from exc
        if indexes != list(range(expected)):
            raise self._fail("embedding indexes are not 0..n-1")
        sizes = {len(v) for v in vectors}
        if len(sizes) != 1 or 0 in sizes:
            raise self._fail(f"embeddings of different sizes {sorted(sizes)}")
        matrix = np.stack(vectors)
        if not np.isfinite(matrix).all():
            raise self._fail("embeddings contain NaN or infinite values")
        size = sizes.pop()
        with self._lock:
            if self.dim == 0:
                self.dim = size
            elif size != self.dim:
                raise self._fail(f"dimension changed from {self.dim} to {size}")
        return matrix
