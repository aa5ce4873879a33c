"""A disposable real PostgreSQL server for tests that must kill and restart the database.

The machine's own server (127.0.0.1:5432) is shared and must never be stopped; this one is
made with Debian's binaries (`initdb`, `postgres`) in a temporary folder, on a free port, with
trust authentication, and owned by the `postgres` system user when the tests run as root
(PostgreSQL refuses to run as root). `kill()` is a `kill -9` of the postmaster; `start()` again
runs crash recovery on the same data, as after a real crash.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
BIN = Path(BINARIES[-1]) if BINARIES else None


def _as_postgres() -> list[str]:
    """Run as the postgres user when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return []
    return ["runuser", "-u", "postgres", "--"]


def available() -> str | None:
    """None when a throwaway server can run here, else why not (for a skip reason)."""
    if BIN is None or not (BIN / "initdb").exists():
        return "PostgreSQL server binaries are not installed (/usr/lib/postgresql/*/bin)"
    if os.geteuid() == 0 and not _as_postgres():
        return "running as root without a postgres system user"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayPostgres:
    def __init__(self) -> None:
        assert BIN is not None
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="faqbot-pg-"))
        self.data = self.folder / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        if _as_postgres():
            shutil.chown(self.folder, "postgres", "postgres")
        subprocess.run(
            [*_as_postgres(), str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-instructions"],
            check=True, capture_output=True,
        )  # fmt: skip

    @property
    def url(self) -> str:
        """SQLAlchemy URL for the asyncpg driver (database `postgres`)."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, timeout: float = 30) -> None:
        self.proc = subprocess.Popen(
            [*_as_postgres(), str(BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-k", str(self.folder), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            ready = subprocess.run(
                [str(BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True, check=False,
            )  # fmt: skip
            if ready.returncode == 0:
                return
            assert self.proc.poll() is None, "postgres exited at start"
            assert time.monotonic() < deadline, "postgres did not start"
            time.sleep(0.1)

    def kill(self) -> None:
        """kill -9 the postmaster (its backends exit when they notice it is gone)."""
        if self.proc is not None and self.proc.poll() is None:
            pid = self._postmaster_pid()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
            self.proc.wait(10)
            time.sleep(0.3)  # let the orphaned backends notice and exit

    def _postmaster_pid(self) -> int | None:
        pid_file = self.data / "postmaster.pid"
        try:
            return int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            pid = self._postmaster_pid()
            if pid is not None:
                os.kill(pid, signal.SIGINT)  # fast shutdown
            self.proc.wait(20)
        shutil.rmtree(self.folder, ignore_errors=True)
