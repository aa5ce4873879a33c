"""`python -m faqbot serve`: HOST/PORT/RELOAD/DEBUG are honoured, a taken port exits 1.

The serving tests run the real command in a child process, as a user (or the Dockerfile's CMD)
would. The start-up refusals and `--help` run in process (`main(argv)`, tests/cli_support.py),
with the step that imports Chainlit replaced by a failure: they must end before it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import faqbot.ops.serve
from faqbot.config import load_settings
from faqbot.ops.serve import chainlit_args
from tests.cli_support import Ran, in_process_cli
from tests.e2e_support import free_port, loopback_aliases_work

pytestmark = pytest.mark.chainlit  # runs the real server

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Do you offer discounts for annual subscriptions?"
ANSWER = "20% discount for annual subscriptions"


def serve_env(**extra: str) -> dict[str, str]:
    """This environment minus OPENAI_* and CI (CI makes Chainlit export a fake key), plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_") and k != "CI"}
    env.update({"PYTHONUNBUFFERED": "1", "EMBEDDINGS": "off", "LOG_LEVEL": "INFO"})
    env.update(extra)
    return env


def http_json(url: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read())


class Served:
    """A running `python -m faqbot serve` child: its URL, process and output so far."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Any, url: str) -> None:
        self.proc, self._log, self.url = proc, log, url
        self.final: str | None = None  # the whole output, once the log file is closed

    def output(self) -> str:
        if self.final is not None:
            return self.final
        fd = self._log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (what `docker stop` sends), then wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"serve ignored SIGTERM:\n{self.output()[-4000:]}") from None


@contextlib.contextmanager
def serving(
    command: Sequence[str], env: dict[str, str], url: str, cwd: Path = ROOT, timeout: float = 90.0
) -> Iterator[Served]:
    """Start `command`; yield once GET {url}/health answers 200. Stops it on exit."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            list(command), cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        served = Served(proc, log, url)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise AssertionError(
                        f"serve exited with {proc.returncode}:\n{served.output()[-6000:]}"
                    )
                with contextlib.suppress(OSError):
                    if http_json(f"{url}/health", timeout=1) is not None:
                        break
                if time.monotonic() > deadline:
                    raise AssertionError(f"no /health in {timeout} s:\n{served.output()[-6000:]}")
                time.sleep(0.2)
            yield served
        except BaseException:
            sys.stderr.write(f"\n--- serve output ---\n{served.output()[-6000:]}\n")
            raise
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            served.final = served.output()


SERVE = (sys.executable, "-m", "faqbot", "serve")


def test_serve_honours_port_and_host_and_answers(tmp_path: Path) -> None:
    port = free_port()
    env = serve_env(PORT=str(port), HOST="127.0.0.1", DATA_DIR=str(tmp_path / "data"))
    url = f"http://127.0.0.1:{port}"
    with serving(SERVE, env, url) as served:
        reply = http_json(f"{url}/api/chat", {"question": QUESTION})
        assert ANSWER in reply["answer"]
        assert f"faqbot: serving on http://127.0.0.1:{port}" in served.output()
        # Chainlit's files live under DATA_DIR, not in the code folder.
        assert (tmp_path / "data" / "chainlit-files").is_dir()
        assert served.stop() == 0
    assert not (tmp_path / "data" / "chainlit-files").exists()  # Chainlit's shutdown rmtree


@pytest.mark.skipif(not loopback_aliases_work(), reason="needs 127.0.0.2 (a Linux loopback alias)")
def test_serve_binds_only_the_host_it_is_given(tmp_path: Path) -> None:
    port = free_port()
    env = serve_env(PORT=str(port), HOST="127.0.0.2", DATA_DIR=str(tmp_path / "data"))
    with (
        serving(SERVE, env, f"http://127.0.0.2:{port}"),
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", port), timeout=2),
    ):
        pass


@pytest.fixture
def serve_here(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., Ran]]:
    """`serve_here(cwd, NAME=value, ...)`: `python -m faqbot serve` in process, in folder cwd
    with serve_env's variables; reaching Chainlit's import fails the test instead of serving."""

    def no_chainlit(files_dir: Path) -> None:
        raise AssertionError("serve went on to load Chainlit")

    monkeypatch.setattr(faqbot.ops.serve, "import_chainlit_with_files_in", no_chainlit)
    with in_process_cli(capsys) as cli:

        def run(cwd: Path, **extra: str) -> Ran:
            for name in [k for k in os.environ if k.startswith("OPENAI_") or k == "CI"]:
                monkeypatch.delenv(name)
            for name, value in serve_env(**extra).items():
                monkeypatch.setenv(name, value)
            monkeypatch.chdir(cwd)
            return cli("serve")

        yield run


def test_serve_on_a_taken_port_exits_1_with_a_clear_message(
    tmp_path: Path, serve_here: Callable[..., Ran]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = serve_here(ROOT, PORT=str(port), HOST="127.0.0.1", DATA_DIR=str(tmp_path / "data"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in proc.stderr
    assert "set PORT" in proc.stderr
    assert "available at" not in proc.stdout + proc.stderr  # nothing claims to be serving
    # (It fails before loading Chainlit's app: serve_here fails the test on that import.)


def test_serve_with_an_unwritable_data_dir_exits_1(
    tmp_path: Path, serve_here: Callable[..., Ran]
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where DATA_DIR should be")
    proc = serve_here(ROOT, PORT=str(free_port()), HOST="127.0.0.1", DATA_DIR=str(blocker / "data"))
    assert proc.returncode == 1
    assert f"DATA_DIR={blocker / 'data'} is not writable" in proc.stderr


def test_serve_outside_the_app_folder_exits_1(
    tmp_path: Path, serve_here: Callable[..., Ran]
) -> None:
    proc = serve_here(tmp_path, PORT=str(free_port()))
    assert proc.returncode == 1
    assert "chainlit_app.py not found" in proc.stderr


def test_reload_and_debug_become_chainlit_flags() -> None:
    plain = chainlit_args(load_settings(host="0.0.0.0", port=8050))
    assert plain == ["run", "chainlit_app.py", "--headless", "--host", "0.0.0.0", "--port", "8050"]
    both = chainlit_args(load_settings(reload=True, debug=True))
    assert both[-2:] == ["--watch", "--debug"]


def test_serve_is_listed_in_the_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with in_process_cli(capsys) as cli:
        proc = cli("serve", "--help")
    assert proc.returncode == 0
    assert "HOST:PORT" in proc.stdout
