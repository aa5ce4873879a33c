"""Helpers for end-to-end tests: a real `chainlit run` process and a socket.io chat client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import socketio

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def chainlit_server(env: dict[str, str] | None = None, timeout: float = 60.0) -> Iterator[str]:
    """Run `chainlit run chainlit_app.py --headless` on a free loopback port; yield its URL."""
    port = free_port()
    # `chainlit run` with CI set exports a fake OPENAI_API_KEY: keep CI out of the child.
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_") and k != "CI"}
    child_env.update({"LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"})
    child_env.update(env or {})
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chainlit", "run", "chainlit_app.py", "--headless",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"

        def output() -> str:
            log.seek(0)
            return log.read().decode(errors="replace")[-6000:]

        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"chainlit exited with {proc.returncode}:\n{output()}")
                # Our own process must say it serves this port (another process could have
                # taken the port between free_port() and chainlit's bind).
                if f"Your app is available at http://localhost:{port}" in output():
                    try:
                        with urllib.request.urlopen(f"{url}/health", timeout=1) as resp:
                            if resp.status == 200 and proc.poll() is None:
                                break
                    except OSError:
                        pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"chainlit did not start in {timeout} s:\n{output()}")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@dataclass
class Turn:
    """Everything the server sent for one user message."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    @property
    def router(self) -> dict[str, Any] | None:
        found = [s for s in self.steps if s.get("name") == "Router"]
        return found[-1] if found else None

    @property
    def reply(self) -> str:
        """The last assistant message's final content."""
        replies = [m for m in self.messages if m.get("type") == "assistant_message"]
        return str(replies[-1].get("output", "")) if replies else ""


class ChatClient:
    """One Chainlit session over socket.io (the protocol the web UI speaks)."""

    def __init__(self, url: str, client_type: str = "webapp") -> None:
        self.url = url
        self.client_type = client_type
        self.session_id = str(uuid.uuid4())
        self.sio = socketio.AsyncClient()
        self._turn: Turn | None = None
        self._done = asyncio.Event()
        self.sio.on("*", self._on_event)

    async def _on_event(self, event: str, data: Any = None) -> None:
        turn = self._turn
        if turn is None:
            return
        turn.events.append(event)
        if event in ("new_message", "update_message") and isinstance(data, dict):
            if data.get("type") == "tool":
                turn.steps.append(data)
            else:
                turn.messages.append(data)
        elif event == "stream_start" and isinstance(data, dict):
            turn.tokens.append(str(data.get("output", "")))
        elif event == "stream_token" and isinstance(data, dict):
            turn.tokens.append(str(data.get("token", "")))
        elif event == "task_end":
            self._done.set()

    async def __aenter__(self) -> ChatClient:
        await self.sio.connect(
            self.url,
            socketio_path="/ws/socket.io",
            transports=["websocket"],
            auth={
                "sessionId": self.session_id,
                "clientType": self.client_type,
                "threadId": "",
                "userEnv": "{}",
                "chatProfile": "FAQ assistant",
            },
        )
        self._turn = Turn()
        self._done.clear()
        await self.sio.emit("connection_successful")
        await asyncio.sleep(0.5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.sio.disconnect()

    async def ask(self, question: str, wait_s: float = 20.0) -> Turn:
        self._turn = Turn()
        self._done.clear()
        message = {
            "id": str(uuid.uuid4()),
            "threadId": "",
            "name": "User",
            "type": "user_message",
            "output": question,
            "createdAt": datetime.now(UTC).isoformat(),
        }
        await self.sio.emit("client_message", {"message": message, "fileReferences": []})
        await asyncio.wait_for(self._done.wait(), wait_s)
        return self._turn
