"""The real image, built from the Dockerfile by `.ci/image` (buildah), run as its own user.

No Docker engine runs here; `.ci/image` builds the Dockerfile with `buildah bud` on a stand-in
for python:3.11-slim and tags it faqbot:ci (FAQBOT_IMAGE overrides the name). This test runs that
image the way `docker run -v faqbot-data:/data faqbot` would, with `buildah run --isolation
chroot` (the host's network namespace, no cgroups): the image's CMD, ENV, USER and WORKDIR come
from `buildah inspect`, not from this file; only HOST and PORT are overridden (loopback, a free
port). The data volume is a host folder initialised like a Docker named volume (the owner and
mode of the image's DATA_DIR). It checks:

- the code in the image is read-only to the user; the API answers (/api/health, /api/chat);
- the chat UI's protocol: Engine.IO's handshake and one question over Chainlit's socket;
- the Dockerfile's HEALTHCHECK command, run inside the container, passes while the app serves
  and fails once it is stopped;
- SIGTERM (what `docker stop` sends) stops it with status 0; everything in the volume is the
  image user's (uid 10001);
- a new container on the same volume keeps the conversation key and continues an API
  conversation stored by the first one (read back from its SQLite file inside the image).

Skips, saying why, when not root, without buildah, or when the image was not built.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_support import ChatClient, free_port
from tests.test_container_emulation import _project_files, dockerfile_copy_sources
from tests.test_serve import ANSWER, QUESTION, ROOT, http_json

IMAGE = os.environ.get("FAQBOT_IMAGE", "faqbot:ci")
UID = 10001  # the Dockerfile's user (README, SECURITY and deploy/ name it)
REFUND_Q = "What is your refund policy?"
FOLLOW_UP = "and is that for new subscriptions only?"
COMBINED = f"{REFUND_Q} {FOLLOW_UP}"  # offline, a follow-up is searched with the last question

pytestmark = pytest.mark.chainlit


def buildah(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["buildah", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _checked(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"{proc.args}: {proc.returncode}\n{proc.stderr[-3000:]}"
    return proc.stdout


@dataclass(frozen=True)
class Image:
    """What `buildah inspect` says about the image, as Docker would use it."""

    command: list[str]  # ENTRYPOINT + CMD
    env: dict[str, str]
    user: str
    workdir: str
    healthcheck: list[str]  # the HEALTHCHECK test, e.g. ["CMD-SHELL", "python -c ..."]

    @property
    def data_dir(self) -> str:
        return self.env["DATA_DIR"]

    def health_command(self) -> list[str]:
        kind, *rest = self.healthcheck
        return ["/bin/sh", "-c", rest[0]] if kind == "CMD-SHELL" else rest


def read_image() -> Image | str:
    """The image's config, or why it cannot stand for this working tree (not root, no buildah,
    not built, or built from other code: a stale faqbot:ci must not pass for the current one)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root to run the image with buildah"
    if shutil.which("buildah") is None:
        return "needs buildah to run the image (.ci/image installs it and builds faqbot:ci)"
    proc = buildah("inspect", "--type", "image", IMAGE)
    if proc.returncode != 0:
        return (
            f"image {IMAGE} not built ({proc.stderr.strip()[:200]}): run .ci/image; "
            "CI runs it first and prints a warning when the build fails"
        )
    info = json.loads(proc.stdout)
    config = (info.get("Docker") or {}).get("config") or {}
    oci = (info.get("OCIv1") or {}).get("config") or {}
    env = dict(item.split("=", 1) for item in (config.get("Env") or oci.get("Env") or []))
    image = Image(
        command=[*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])],
        env=env,
        user=config.get("User") or oci.get("User") or "root",
        workdir=config.get("WorkingDir") or oci.get("WorkingDir") or "/",
        healthcheck=list((config.get("Healthcheck") or {}).get("Test") or []),
    )
    stale = _files_not_in_image(image)
    if stale:
        return (
            f"{IMAGE} was built from other code than this working tree ({len(stale)} files "
            f"differ, e.g. {stale[0]}): run .ci/image"
        )
    return image


def _files_not_in_image(image: Image) -> list[str]:
    """The working tree's files under the Dockerfile's COPY sources that the image's WORKDIR
    does not hold byte for byte."""
    with container() as name:
        root = Path(_checked(buildah("mount", name)).strip())
        try:
            app = root / image.workdir.lstrip("/")
            return [
                path
                for path in _project_files(dockerfile_copy_sources())
                if not (app / path).is_file()
                or (app / path).read_bytes() != (ROOT / path).read_bytes()
            ]
        finally:
            buildah("umount", name)


@pytest.fixture(scope="module")
def image() -> Image:
    found = read_image()
    if isinstance(found, str):
        pytest.skip(found)
    # --format docker keeps it (OCI has no HEALTHCHECK); .ci/image builds so
    assert found.healthcheck, f"{IMAGE} has no HEALTHCHECK: build it with .ci/image"
    return found


@contextlib.contextmanager
def container() -> Iterator[str]:
    """A new working container from the image (`docker create`); removed afterwards."""
    name = _checked(buildah("from", "--pull=never", IMAGE)).strip()
    try:
        yield name
    finally:
        buildah("rm", name)


def _passwd_uid(root: Path, user: str) -> int:
    if user.isdigit():
        return int(user.split(":")[0])
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user.split(":")[0]:
            return int(fields[2])
    raise AssertionError(f"user {user} not in the image's /etc/passwd")


@pytest.fixture(scope="module")
def volume(image: Image) -> Iterator[tuple[Path, int]]:
    """A data volume as Docker makes a named one: the owner and mode of the image's DATA_DIR.
    Yields it and the uid the image's USER resolves to."""
    with container() as name:
        root = Path(_checked(buildah("mount", name)).strip())
        try:
            uid = _passwd_uid(root, image.user)
            seen = (root / image.data_dir.lstrip("/")).stat()
        finally:
            buildah("umount", name)
    top = Path(tempfile.mkdtemp(prefix="faqbot-volume-"))
    top.chmod(0o755)
    data = top / "data"
    data.mkdir()
    os.chown(data, seen.st_uid, seen.st_gid)
    data.chmod(seen.st_mode & 0o7777)
    try:
        yield data, uid
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rpartition(")")[2].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


class Running:
    """`buildah run` of the image's CMD in a container; `stop()` is `docker stop`."""

    def __init__(self, image: Image, name: str, volume: Path, port: int, log: Any) -> None:
        self.image, self.name, self.url = image, name, f"http://127.0.0.1:{port}"
        # The image's ENV applies by itself; HOST/PORT: loopback and a free port on this host.
        self.overrides = {"HOST": "127.0.0.1", "PORT": str(port)}
        self.mount = f"{volume}:{image.data_dir}"
        self.log = log
        self.proc = subprocess.Popen(
            [*self.run_args(), "--", *image.command],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def run_args(self) -> list[str]:
        args = ["buildah", "run", "--isolation", "chroot", "--network", "host"]
        args += ["--user", self.image.user, "--workingdir", self.image.workdir]
        for key, value in self.overrides.items():
            args += ["--env", f"{key}={value}"]
        return [*args, "--volume", self.mount, self.name]

    def exec(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `command` in the container as its user, with its env and volume (`docker exec`)."""
        return subprocess.run(
            [*self.run_args(), "--", *command],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def output(self) -> str:
        fd = self.log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"exited with {self.proc.returncode}:\n{self.output()[-5000:]}"
                )
            with contextlib.suppress(OSError):
                if http_json(f"{self.url}/api/health", timeout=2) is not None:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"no /api/health in {timeout} s:\n{self.output()[-5000:]}")
            time.sleep(0.3)

    def main_pid(self) -> int:
        """The CMD's process (PID 1 in Docker): the user's process under buildah's helpers."""
        todo, found = [self.proc.pid], []
        while todo:
            pid = todo.pop()
            for child in _children(pid):
                todo.append(child)
                with contextlib.suppress(OSError):
                    if not os.readlink(f"/proc/{child}/exe").startswith("/memfd:"):
                        found.append(child)
        assert found, f"no process of the image's CMD under buildah run {self.proc.pid}"
        return found[0]

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM to the CMD's process, as `docker stop` does; its exit status."""
        if self.proc.poll() is None:
            os.kill(self.main_pid(), signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"ignored SIGTERM:\n{self.output()[-4000:]}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(AssertionError, ProcessLookupError):
                os.kill(self.main_pid(), signal.SIGKILL)
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def running(image: Image, name: str, volume: Path) -> Iterator[Running]:
    with tempfile.TemporaryFile() as log:
        served = Running(image, name, volume, free_port(), log)
        try:
            served.wait_healthy()
            yield served
        except BaseException:
            sys.stderr.write(f"\n--- container output ---\n{served.output()[-6000:]}\n")
            raise
        finally:
            served.kill()


def _engineio_handshake(url: str) -> dict[str, Any]:
    """Engine.IO's open packet, as the UI's socket.io client first asks for it."""
    with urllib.request.urlopen(f"{url}/ws/socket.io/?EIO=4&transport=polling", timeout=10) as r:
        packet = r.read().decode()
    assert packet.startswith("0"), packet[:200]  # "0" = open
    return dict(json.loads(packet[1:]))


async def _chat(url: str) -> str:
    async with ChatClient(url) as chat:
        turn = await chat.ask(QUESTION, wait_s=60)
        assert not turn.errors, turn.errors
        return turn.reply


READ_TURNS = (
    "import json, sqlite3, sys; db = sqlite3.connect(sys.argv[1]); print(json.dumps(db.execute("
    "'SELECT standalone_question, face FROM faqbot_turns WHERE thread_id = ? ORDER BY created_at',"
    " (sys.argv[2],)).fetchall()))"
)


def test_the_real_image_serves_as_its_user_and_keeps_its_data_across_a_restart(
    image: Image, volume: tuple[Path, int]
) -> None:
    data, uid = volume
    assert uid == UID, f"the image runs as uid {uid}, the docs say {UID}"
    assert data.stat().st_uid == UID  # the Dockerfile's chown of DATA_DIR

    with container() as first_box, running(image, first_box, data) as first:
        # The code is root's and read-only to the user.
        denied = first.exec("python", "-c", f"open('{image.workdir}/probe', 'w')")
        assert denied.returncode != 0, denied
        assert "PermissionError" in denied.stderr, denied
        health = http_json(f"{first.url}/api/health")
        assert health["status"] == "ok", health
        assert ANSWER in http_json(f"{first.url}/api/chat", {"question": QUESTION})["answer"]
        opened = http_json(f"{first.url}/api/chat", {"question": REFUND_Q})
        assert "30-day money-back guarantee" in opened["answer"]
        handshake = _engineio_handshake(first.url)
        assert handshake["sid"], handshake
        assert "websocket" in handshake["upgrades"], handshake
        assert ANSWER in asyncio.run(_chat(first.url))
        checked = first.exec(*image.health_command())
        assert checked.returncode == 0, f"HEALTHCHECK failed: {checked}"
        assert (data / "chainlit-files").is_dir()
        # The bundled model runs as the user over read-only code (it encodes in the background;
        # waiting for it would take minutes here: its cache's reuse has its own tests).
        embeddings = http_json(f"{first.url}/api/health")["retrieval"]["embeddings"]
        assert embeddings["error"] is None, embeddings
        assert embeddings["state"] in {"encoding", "ready"}, embeddings
        assert first.stop() == 0, first.output()[-4000:]
        assert not (data / "chainlit-files").exists()  # Chainlit's shutdown rmtree
        assert first.exec(*image.health_command()).returncode != 0  # the check sees it down
        output = first.output()
    assert "PermissionError" not in output, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    key = (data / "conversation.key").read_bytes()
    written = [data, *data.rglob("*")]
    assert (data / "faqbot.db").is_file(), sorted(p.name for p in written)
    assert {
        p.relative_to(data).as_posix(): p.stat().st_uid for p in written if p.stat().st_uid != UID
    } == {}
    assert (data / "conversation.key").stat().st_mode & 0o077 == 0  # owner-only

    # A new container on the same volume: the key, and the conversation, carry on.
    with container() as second_box, running(image, second_box, data) as second:
        follow = http_json(
            f"{second.url}/api/chat",
            {
                "question": FOLLOW_UP,
                "conversation_id": opened["conversation_id"],
                "conversation_token": opened["conversation_token"],
            },
        )
        assert (data / "chainlit-files").is_dir()  # made again after the shutdown rmtree
        assert follow["conversation_id"] == opened["conversation_id"]  # continued
        assert "30-day money-back guarantee" in follow["answer"]
        assert second.stop() == 0, second.output()[-4000:]
        db = f"{image.data_dir}/faqbot.db"
        turns = second.exec("python", "-c", READ_TURNS, db, opened["conversation_id"])
    assert (data / "conversation.key").read_bytes() == key
    assert turns.returncode == 0, turns
    assert json.loads(turns.stdout) == [[REFUND_Q, "api"], [COMBINED, "api"]]
    assert all(p.stat().st_uid == UID for p in [data, *data.rglob("*")])
