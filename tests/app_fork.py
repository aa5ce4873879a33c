"""Start `chainlit run` apps from a warm parent process (a fork server), one per test worker.

Why: an app start costs ~4.5-5 CPU-seconds on 2 cores, most of it importing third-party packages
(mcp, sqlalchemy, literalai with traceloop and opentelemetry, bm25s with numpy and scipy, fastapi,
...); the suite starts ~66 apps, a third of its CPU. Python's `forkserver` imports those once per
test worker and forks each app from there, so only Chainlit itself, the app and faqbot are
imported per app.

What each app gets is what `python -m chainlit run ...` gets: its own process, the environment
and working folder it asks for, the `sys.path` a fresh interpreter would have (folder,
PYTHONPATH, site), its output in the log file, Chainlit's own CLI, its exit code and signals.
Chainlit, faqbot and openai are never preloaded: Chainlit reads the environment and the working
folder at import, and tests check what an app start imports.
Under pytest only (`FAQBOT_TEST_FORK=0`: plain subprocesses there too; `=1`: outside it).
"""

from __future__ import annotations

import atexit
import io
import json
import multiprocessing
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

# The third-party modules an offline app start imports directly from Chainlit, faqbot and the app
# (the first third-party module on each import chain in `python -X importtime -m chainlit run
# chainlit_app.py`: ~4.5 of its ~5.4 s of imports). Importing them reads neither the environment
# nor the working folder; a module missing here is simply imported by the app, as before.
PRELOAD = [
    "Stemmer", "aiofiles", "aiosqlite", "anyio._core._sockets", "anyio._core._streams", "asyncer",
    "bm25s", "cachetools", "dataclasses_json", "dotenv", "fastapi", "fastapi.middleware.cors",
    "fastapi.middleware.gzip", "fastapi.telemetry._runtime", "filetype", "httptools", "jwt",
    "lazify", "limits", "literalai", "mcp", "nest_asyncio", "prometheus_client", "pydantic.v1",
    "pydantic_settings", "socketio", "sqlalchemy", "sqlalchemy.dialects.postgresql",
    "sqlalchemy.dialects.sqlite", "sqlalchemy.ext.asyncio", "starlette.datastructures",
    "starlette.middleware.cors", "structlog", "syncer", "threadpoolctl", "tomli",
    "uvicorn.protocols.http.h11_impl", "uvicorn.protocols.websockets.wsproto_impl", "websockets",
    "wsproto", "yaml",
]  # fmt: skip
# The interpreter reads PYTHON* variables at start-up: a fork honours only these (_main).
_FRESH_ONLY = {"PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
_server: Any = None


def enabled(env: dict[str, str]) -> bool:
    """Whether an app with this environment may come from the fork server."""
    # On under pytest; benchmarks (bench/) time and measure plain processes.
    default = "1" if "PYTEST_CURRENT_TEST" in os.environ else "0"
    if os.environ.get("FAQBOT_TEST_FORK", default) == "0":
        return False
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    return not any(k.startswith("PYTHON") and k not in _FRESH_ONLY for k in env)


def _context() -> Any:
    """The forkserver context with its preload set (the server starts on first use)."""
    global _server
    if _server is None:
        _server = multiprocessing.get_context("forkserver")
        _server.set_forkserver_preload(PRELOAD)
    return _server


def _fresh_view(cwd: Path, env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The environment and sys.path a fresh interpreter has with `env` in `cwd` (it may add to
    the environment, e.g. LC_CTYPE when it coerces a C locale; PYTHONPATH and site make the path).
    """
    probe = "import json, os, sys; print(json.dumps([dict(os.environ), sys.path[1:]]))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=cwd, env=env, capture_output=True,
                         text=True, check=True)  # fmt: skip
    environ, path = json.loads(out.stdout)
    return environ, [str(cwd), *path]


class App:
    """A started app, with the part of `subprocess.Popen`'s interface the tests use."""

    def __init__(self, process: Any) -> None:
        self._process = process
        self.pid: int = process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode  # type: ignore[no-any-return]

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired("chainlit", timeout or 0)
        return self._process.exitcode  # type: ignore[no-any-return]

    def terminate(self) -> None:
        self._process.terminate()

    def kill(self) -> None:
        self._process.kill()


def start(args: list[str], cwd: Path, env: dict[str, str], log_path: str) -> App:
    """`python -m chainlit <args>` in `cwd` with exactly `env`, output appended to `log_path`."""
    environ, path = _fresh_view(cwd, env)
    process = _context().Process(target=_main, args=(args, str(cwd), environ, log_path, path))
    process.start()
    return App(process)


def _main(args: list[str], cwd: str, env: dict[str, str], log_path: str, path: list[str]) -> None:
    """In the forked child: become `python -m chainlit <args>`."""
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    # Unbuffered, as PYTHONUNBUFFERED=1 gives a fresh interpreter: the tests read the log live.
    for name, fileno in (("stdout", 1), ("stderr", 2)):
        stream = io.TextIOWrapper(io.FileIO(fileno, "w", closefd=False),
                                  write_through=True, line_buffering=True)  # fmt: skip
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.path[:] = path
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    sys.argv = ["chainlit", *args]
    try:
        runpy.run_module("chainlit", run_name="__main__", alter_sys=True)
    finally:
        atexit._run_exitfuncs()
