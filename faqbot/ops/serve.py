"""`python -m faqbot serve`: run the Chainlit app with the documented settings.

What `chainlit run chainlit_app.py` does, plus what a container needs:

- `HOST`, `PORT`, `RELOAD` (Chainlit's `--watch`) and `DEBUG` (`--debug`) are honoured.
- The listening socket is bound here, before Chainlit starts, and handed to uvicorn: a taken port
  fails at once with a clear message and exit status 1. (Under plain `chainlit run`, uvicorn's
  bind error goes through Chainlit's shutdown hook, which ends the process with status 0 after
  it has already printed "Your app is available at ...".)
- Every writable path lives under `DATA_DIR`: the vector cache (`vectors/`) and Chainlit's session
  files (`chainlit-files/`). Chainlit 2.12 puts its files in `<app root>/.files`, creating it when
  `chainlit.config` is imported and deleting it at shutdown; here that one directory is moved to
  `DATA_DIR/chainlit-files` before Chainlit's server module reads it, while `.chainlit/config.toml`,
  its translations, `chainlit.md` and `public/` are still read from the app folder (the current
  directory), which may be read-only.

Chainlit is imported only inside `serve`: the core package stays free of it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from faqbot.config import Settings
from faqbot.ops.auth_secret import ensure_auth_secret

APP_FILE = "chainlit_app.py"
CHAINLIT_FILES = "chainlit-files"  # under DATA_DIR; Chainlit empties it at shutdown


class ServeError(Exception):
    """A start-up problem the user can fix; printed as one line, exit status 1."""


def chainlit_args(settings: Settings, app: str = APP_FILE) -> list[str]:
    """The `chainlit run` arguments for these settings."""
    args = ["run", app, "--headless", "--host", settings.host, "--port", str(settings.port)]
    if settings.reload:
        args.append("--watch")
    if settings.debug:
        args.append("--debug")
    return args


def prepare_data_dir(data_dir: Path) -> Path:
    """Create DATA_DIR (absolute) and prove it is writable by this process."""
    path = data_dir.expanduser().resolve()
    who = f"uid {os.getuid()}" if hasattr(os, "getuid") else "this user"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ServeError(
            f"DATA_DIR={path} is not writable by {who} ({exc.strerror or exc}). "
            "Point DATA_DIR at a folder this user owns (in Docker: a volume mounted at /data "
            "owned by uid 10001)."
        ) from None
    return path


def bind_listeners(host: str, port: int) -> list[socket.socket]:
    """Bind and listen on every address of host:port, as uvicorn would; fail clearly if taken."""
    try:
        infos = socket.getaddrinfo(
            host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
    except OSError as exc:
        raise ServeError(f"cannot resolve HOST={host}: {exc}") from None
    listeners: list[socket.socket] = []
    seen: set[tuple[Any, ...]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            listeners.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio does
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(2048)  # uvicorn's default backlog; owning the port from here on
            sock.set_inheritable(False)
    except OSError as exc:
        for sock in listeners:
            sock.close()
        reason = exc.strerror or str(exc)
        hint = " (another process is using it: stop it or set PORT)" if _in_use(exc) else ""
        raise ServeError(f"cannot listen on {host}:{port}: {reason}{hint}") from None
    return listeners


def _in_use(exc: OSError) -> bool:
    import errno

    return exc.errno == errno.EADDRINUSE


@contextlib.contextmanager
def _mkdir_redirected(source: Path, target: Path) -> Iterator[None]:
    """While active, `source.mkdir(...)` creates `target` (with parents) instead."""
    original = Path.mkdir

    def mkdir(self: Path, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        if self == source:
            original(target, mode, parents=True, exist_ok=True)
            return
        original(self, mode, parents, exist_ok)

    Path.mkdir = mkdir  # type: ignore[method-assign]
    try:
        yield
    finally:
        Path.mkdir = original  # type: ignore[method-assign]


def import_chainlit_with_files_in(files_dir: Path) -> None:
    """Import `chainlit.config` so that Chainlit's files directory is `files_dir`.

    Must run before anything imports `chainlit.server` (which copies FILES_DIRECTORY at import
    and rmtree's it at shutdown); `chainlit.session` reads it at call time.
    """
    if "chainlit.config" in sys.modules:
        raise RuntimeError("chainlit.config was imported before faqbot serve could configure it")
    app_root = Path(os.environ.get("CHAINLIT_APP_ROOT", os.getcwd()))
    try:
        with _mkdir_redirected(app_root / ".files", files_dir):
            import chainlit.config as cl_config
    except PermissionError as exc:
        # With a read-only app folder, Chainlit's import-time writes must already be done:
        # `.chainlit/config.toml` and `.chainlit/translations/` (the image runs `chainlit init`).
        raise ServeError(
            f"Chainlit could not write {exc.filename}: the app folder is read-only. Create "
            "Chainlit's files at build time (`chainlit init` in the app folder, as the "
            "Dockerfile does)."
        ) from None
    cl_config.FILES_DIRECTORY = files_dir


def _use_listeners(listeners: list[socket.socket]) -> None:
    """Make uvicorn serve on the sockets bound here instead of binding host:port itself."""
    import uvicorn

    class PreboundServer(uvicorn.Server):
        async def serve(self, sockets: list[socket.socket] | None = None) -> None:
            await super().serve(sockets=sockets if sockets is not None else listeners)

    # Chainlit's `run` builds `uvicorn.Server(config)` through the module attribute.
    setattr(uvicorn, "Server", PreboundServer)  # noqa: B010


def serve(settings: Settings, app: str = APP_FILE) -> int:
    """Run the app in this process until it is stopped; returns only on a start-up problem."""
    try:
        if not Path(app).is_file():
            raise ServeError(f"{app} not found in {Path.cwd()}: run from the faqbot folder")
        data_dir = prepare_data_dir(settings.data_dir)
        # The app (this process) reads the same, now absolute, folder.
        os.environ["DATA_DIR"] = str(data_dir)
        # With sign-in on and no CHAINLIT_AUTH_SECRET, one kept in DATA_DIR (not per start).
        ensure_auth_secret(settings.model_copy(update={"data_dir": data_dir}))
        listeners = bind_listeners(settings.host, settings.port)
        import_chainlit_with_files_in(data_dir / CHAINLIT_FILES)
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _use_listeners(listeners)
    print(
        f"faqbot: serving on http://{settings.host}:{settings.port} "
        f"(data: {data_dir}, reload: {settings.reload}, debug: {settings.debug})",
        file=sys.stderr,
        flush=True,
    )
    from chainlit.cli import cli

    # Chainlit's own `run` (the same code path as `chainlit run ...`); it exits the process.
    cli.main(args=chainlit_args(settings, app), prog_name="chainlit")  # NoReturn
