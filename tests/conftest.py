"""Shared fixtures. A guard refuses every non-loopback connection for the whole test run."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.redis_support import throwaway_redis  # noqa: F401 - a fixture for every module

ROOT = Path(__file__).resolve().parent.parent
FAQ_DIR = ROOT / "faqs"

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return False
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(address: Any) -> None:
    if isinstance(address, tuple) and address and not _is_loopback(address[0]):
        raise ConnectionRefusedError(f"tests may only connect to loopback, not {address[0]!r}")


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check(address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not _is_loopback(host):
        raise socket.gaierror(f"tests may only resolve loopback names, not {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the developer's key or .env: offline unless a test opts in."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "REDIS_URL", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def faq_dir() -> Path:
    return FAQ_DIR


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[Any]:
    from tests.fake_openai import FakeOpenAI

    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def fake_openai(fake_openai_server: Any) -> Any:
    """The loopback fake OpenAI server, with its script and records cleared for this test."""
    fake_openai_server.reset()
    return fake_openai_server


SMALL_FAQ = {
    "sales.txt": """SALES FAQ

Q: What are your pricing plans?
A: We offer three pricing tiers: Starter ($29/month), Professional ($79/month),
and Enterprise ($199/month).

Q: Do you offer discounts for annual subscriptions?
A: Yes, we offer a 20% discount for annual subscriptions on all plans.

Q: What is your refund policy?
A: We offer a 30-day money-back guarantee for all new subscriptions.

Q: Which payment methods do you accept?
A: We accept Visa, Mastercard, American Express and bank transfer for annual invoices.
""",
    "labs.txt": """LABS FAQ

Q: Which instruments can I connect?
A: Any instrument that exports CSV or mzML can be connected through the LabLens Agent.

Q: How long do you keep raw instrument data?
A: Raw instrument data is retained for seven years on every plan.

Q: How do I set up QC rules?
A: Open Settings > Quality Control and add Westgard rules per assay.
""",
    "reports.yaml": """category: reports
version: "2.0"
last_updated: "2026-10-01"
metadata:
  description: "Report building and exports"
entries:
  - question: "Can I export reports to PDF?"
    alternate_questions: ["How do I download a report as a PDF file?"]
    answer: "Yes. Every report has an Export button with PDF, CSV and Excel options."
    keywords: ["export", "pdf", "download"]
  - question: "Can I schedule reports?"
    answer: "Yes, reports can be emailed daily, weekly or monthly from the Schedule tab."
    keywords: ["schedule", "email", "recurring"]
""",
}


@pytest.fixture
def small_faq_dir(tmp_path: Path) -> Path:
    """A small, valid FAQ folder in both formats (3 categories)."""
    folder = tmp_path / "small_faqs"
    folder.mkdir()
    for name, text in SMALL_FAQ.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def make_settings(small_faq_dir: Path, tmp_path: Path) -> Any:
    """Settings factory: offline, lexical-only, over the small FAQ unless overridden.

    Hybrid retrieval is tested on its own (tests/test_hybrid*.py), with the test embedder and
    with the bundled model; here the lexical engine keeps the rest of the suite deterministic.
    """
    from faqbot.config import load_settings

    def make(**overrides: Any) -> Any:
        overrides.setdefault("faq_dir", small_faq_dir)
        overrides.setdefault("openai_api_key", None)
        overrides.setdefault("embeddings", "off")
        overrides.setdefault("data_dir", tmp_path / "data")
        return load_settings(**overrides)

    return make
