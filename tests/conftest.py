"""Shared fixtures. A guard refuses every non-loopback connection for the whole test run.

Tests never write into the repository: each test runs in its own tmp folder with `DATA_DIR`
there too (subprocesses that run from the repository root inherit it), and a check at the end
of the session fails the run if the repository's files changed (see `pytest_sessionfinish`).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from tests.redis_support import throwaway_redis  # noqa: F401 - a fixture for every module

ROOT = Path(__file__).resolve().parent.parent
FAQ_DIR = ROOT / "faqs"

# Hypothesis keeps its example database and a cache of constants in `./.hypothesis` (the
# repository root, where pytest starts): outside the repository instead, kept between runs.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "faqbot-tests-hypothesis")

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
    # The default DATA_DIR (.faqbot) relative to the current folder is this one; the variable
    # keeps subprocesses that run from the repository root (the CLI, the app) out of its own
    # .faqbot/ too.
    monkeypatch.setenv("DATA_DIR", str(tmp_path / ".faqbot"))


@pytest.fixture(scope="session")
def shipped_vectors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped FAQ's vector cache (bundled model), encoded once per session (all workers),
    and kept between runs while its inputs stay the same (tests/vector_support.py)."""
    from tests.vector_support import cache_folder, encode_shipped_faq

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of one run
    return encode_shipped_faq(cache_folder(base / "shipped-vectors"))


@pytest.fixture
def seeded_data_dir(shipped_vectors: Path, tmp_path: Path) -> Path:
    """This test's DATA_DIR, starting with the shipped FAQ's vectors (no encoding at start)."""
    from tests.vector_support import seed_vectors

    return seed_vectors(shipped_vectors, tmp_path / ".faqbot")


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


# --- The repository stays as the tests found it -------------------------------------------
# Paths a test run may change: caches, the screenshots the browser tests keep for people
# (README: "screenshots land in test-artifacts/"), the storage folder pytest-benchmark makes
# at start when installed, and what `chainlit run` itself writes into the app folder it is run
# from (its translations on first start, and `.files/`, which it deletes at shutdown).
_TREE_ALLOWED = (
    "__pycache__/",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".benchmarks/",
    "test-artifacts/",
    ".chainlit/translations/",
    ".files/",
)
_tree_before: dict[str, tuple[str, int, int]] | None = None


def _tree_state() -> dict[str, tuple[str, int, int]] | None:
    """Every changed, untracked or ignored path in the repository -> (status, mtime, size)."""
    try:
        listed = subprocess.run(
            ["git", "status", "--porcelain=v1", "-z", "--ignored", "--untracked-files=all"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None  # not a git checkout (an sdist, the image): nothing to compare
    state: dict[str, tuple[str, int, int]] = {}
    entries = iter(listed.split("\0"))
    for entry in entries:
        if not entry:
            continue
        status, path = entry[:2], entry[3:]
        if status[0] in "RC":
            next(entries, None)  # a rename's source follows as its own entry
        if any(part in f"/{path}" for part in (f"/{a}" for a in _TREE_ALLOWED)):
            continue
        try:
            st = (ROOT / path).stat()
            state[path] = (status, st.st_mtime_ns, st.st_size)
        except OSError:
            state[path] = (status, 0, -1)
    return state


def pytest_sessionstart(session: pytest.Session) -> None:
    global _tree_before
    if not hasattr(session.config, "workerinput"):  # the controller only, under pytest-xdist
        _tree_before = _tree_state()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when it created files in the repository that git ignores (data folders,
    databases: what a leaking test writes), and, under CI, when it changed any file at all.

    Outside CI other changes are only reported: a developer (or another process) may edit
    sources or run the CLI in the checkout during the run. FAQBOT_TREE_GUARD=0 skips the check.
    """
    if _tree_before is None or os.environ.get("FAQBOT_TREE_GUARD") == "0":
        return
    after = _tree_state()
    if after is None:
        return
    before = _tree_before
    created = sorted(p for p, entry in after.items() if entry[0] == "!!" and p not in before)
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    strict = bool(os.environ.get("CI"))
    failing = changed if strict else created
    others = [p for p in changed if p not in failing]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def say(text: str, **markup: bool) -> None:
        if reporter is not None:
            reporter.write_line(text, **markup)
        else:
            print(text)

    def listed(paths: list[str]) -> str:
        shown = "\n".join(f"  {after.get(p, ('gone', 0, 0))[0]} {p}" for p in paths[:30])
        return shown + (f"\n  ... and {len(paths) - 30} more" if len(paths) > 30 else "")

    if others:
        say(f"\nnote: files in the repository changed during the run (edited meanwhile?):\n"
            f"{listed(others)}")  # fmt: skip
    if failing:
        say(
            f"\nERROR: the test run wrote {len(failing)} path(s) into the repository {ROOT} "
            f"(tests must write under tmp_path; FAQBOT_TREE_GUARD=0 skips this check):\n"
            f"{listed(failing)}",
            red=True,
            bold=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
