"""A disposable real redis-server for tests that must stop and restart Redis (never 6379), and
whether the machine's shared Redis at 127.0.0.1:6379 answers (tests skip, with a reason, if not).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

REDIS_SERVER = shutil.which("redis-server")
SHARED_REDIS_URL = "redis://127.0.0.1:6379/0"


def shared_redis_up() -> bool:
    """Whether the machine's Redis at 127.0.0.1:6379 answers."""
    try:
        return bool(redis.Redis.from_url(SHARED_REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ThrowawayRedis:
    """A disposable redis-server on one port, without persistence; can be killed and restarted."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                assert self.proc.poll() is None, "redis-server exited at start"
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=1)


@pytest.fixture
def throwaway_redis() -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(_free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()
