"""The container emulation runs the app as uid 10001 with this interpreter, or skips: never another.

On a machine whose Python lives in root's home (pyenv under /root, mode 700), uid 10001 cannot
run it; a copy reached another way must be this very Python with its packages, not Debian's
/usr/bin/python3 (3.11.2, where redis wants `async_timeout`), which made the README's test
command red for a reason unrelated to the change under test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from tests.test_container_emulation import SETPRIV, _python_for_uid, interpreter_mismatch
from tests.test_serve import ROOT

OTHER_PYTHON = "/usr/bin/python3"


def _other_python_differs() -> bool:
    if (
        not Path(OTHER_PYTHON).exists()
        or Path(OTHER_PYTHON).resolve() == Path(sys.executable).resolve()
    ):
        return False
    probe = "import sys; print(sys.version); print(sys.prefix)"
    out = subprocess.run([OTHER_PYTHON, "-c", probe], capture_output=True, text=True, check=False)
    return out.stdout.splitlines() != [sys.version, sys.prefix]


@pytest.mark.skipif(not _other_python_differs(), reason=f"needs a second Python at {OTHER_PYTHON}")
def test_another_python_is_refused_even_with_our_packages_on_its_path(tmp_path: Path) -> None:
    """Debian's Python fed our site-packages imports them but is not this interpreter."""
    (tmp_path / "faqbot").symlink_to(ROOT / "faqbot")
    env = {"PYTHONPATH": sysconfig.get_paths()["purelib"]}
    why = interpreter_mismatch([OTHER_PYTHON], env, tmp_path, {sys.prefix})
    assert why is not None
    assert OTHER_PYTHON in why
    # This interpreter passes the same check.
    assert interpreter_mismatch([sys.executable], {}, ROOT, {sys.prefix}) is None


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to drop to uid 10001",
)
def test_the_command_for_uid_10001_runs_this_python_or_skips() -> None:
    base = Path(tempfile.mkdtemp(prefix="faqbot-uid-python-"))  # pytest's tmp is root-only
    try:
        shutil.copytree(ROOT / "faqbot", base / "app" / "faqbot")
        for path in [base, *base.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        _check_command_for_uid(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _check_command_for_uid(base: Path) -> None:
    command, env = _python_for_uid(base)  # skips when no copy of this Python is reachable
    assert command[: len(SETPRIV)] == SETPRIV or "unshare" in command[0]
    out = subprocess.run(
        [*command, "-c", "import sys, redis.asyncio; print(sys.version)"],
        cwd=base / "app", env={**os.environ, **env}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.strip() == sys.version
