"""Helpers for end-to-end tests: a real `chainlit run` process and a socket.io chat client.

    with chainlit_server({"RATE_LIMIT_REQUESTS": "3"}) as url:
        async with ChatClient(url) as chat:          # one Chainlit session
            turn = await chat.ask("Do you offer discounts?")
            turn.router["output"], turn.text, turn.reply
            follow = await chat.ask("and for annual plans?")   # same session, same history

The client speaks the protocol of Chainlit's web UI (DESIGN.md section 4): auth with a client-made
session id, `connection_successful`, then `client_message` per question; a turn ends at `task_end`.
"""

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import socketio

from faqbot.domain import ROUTE_STEP_NAME
from tests import app_fork

ROOT = Path(__file__).resolve().parent.parent
PROFILE = "FAQ assistant"
_LOGS: dict[str, Callable[[], str]] = {}  # base URL -> that server's output so far
_PIDS: dict[str, int] = {}  # base URL -> that server's process id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loopback_address(i: int) -> str:
    """A distinct loopback address per simulated user: 127.0.1.1, 127.0.1.2, ... (i = 0, 1, ...).

    Linux routes all of 127.0.0.0/8 to the loopback interface, so a client can bind any of them
    as its source address and the server sees a different peer (`ChatClient(local_addr=...)`).
    """
    n = 256 + 1 + i  # skip 127.0.0.x, which tests name one by one
    return f"127.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def loopback_aliases_work() -> bool:
    """Whether this machine lets a client bind 127.0.0.2 (Linux yes; macOS needs an alias)."""
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False


def server_log(url: str, tail: int = 6000) -> str:
    """The last `tail` characters a running `chainlit_server` printed ("" if unknown)."""
    read = _LOGS.get(url.rstrip("/"))
    return read()[-tail:] if read else ""


def server_pid(url: str) -> int:
    """The process id of a running `chainlit_server` (for /proc readings in benchmarks)."""
    return _PIDS[url.rstrip("/")]


def server_logs_on_failure(request: Any) -> Iterator[None]:
    """Body of an autouse fixture: after a failed test, print the logs of the servers it used.

    Teardown output is shown under the test's failure, so module-scoped servers' logs appear
    there too. Use as `yield from server_logs_on_failure(request)`.
    """
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        for value in request.node.funcargs.values():
            if isinstance(value, str) and value.rstrip("/") in _LOGS:
                print(f"--- chainlit server log ({value}) ---\n{server_log(value)}")


class _PortTaken(RuntimeError):
    """Another process bound the port between free_port() and chainlit's bind."""


@contextlib.contextmanager
def chainlit_server(
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    app: str = "chainlit_app.py",
    *,
    root: Path = ROOT,
    args: tuple[str, ...] = (),
) -> Iterator[str]:
    """`_chainlit_once` on a new free port when the port was taken before chainlit bound it
    (parallel test workers and servers restarted on their port make that race real)."""
    for attempt in range(3):
        try:
            with _chainlit_once(env, timeout, app, root=root, args=args) as url:
                yield url
            return
        except _PortTaken:
            if attempt == 2:
                raise


@contextlib.contextmanager
def _chainlit_once(
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    app: str = "chainlit_app.py",
    *,
    root: Path = ROOT,
    args: tuple[str, ...] = (),
) -> Iterator[str]:
    """Run `chainlit run chainlit_app.py --headless` on a free loopback port; yield its URL.

    `app` runs another app file instead (from the repository root, which is on its sys.path:
    e.g. an older version of chainlit_app.py for a before/after benchmark). `root` runs it from
    another folder (a copy of the app's files; faqbot is then imported from the repository);
    `args` are more `chainlit run` flags (e.g. "--watch").

    The child gets this environment minus every OPENAI_* variable and CI (with CI set,
    `chainlit run` exports a placeholder OPENAI_API_KEY), lexical-only retrieval, plus `env`.
    Startup fails with the process output if it exits or `/health` does not answer within
    `timeout` seconds; an exception raised inside the block prints the server output to stderr.
    """
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_") and k != "CI"}
    # Lexical-only unless a test asks for the bundled model (EMBEDDINGS=bundled): answers do
    # not change while vectors encode; the vector cache goes to a throwaway folder.
    data_dir = tempfile.mkdtemp(prefix="faqbot-e2e-")
    child_env.update(
        # No LLM warm-up call at start (tests count the fake provider's requests; the warm-up
        # has its own tests: test_doctor.py, test_warm_up_app.py)
        {
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "EMBEDDINGS": "off",
            "DATA_DIR": data_dir,
            "LLM_WARM_UP": "false",
        }
    )
    if root != ROOT:
        child_env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
        )
    child_env.update(env or {})
    url = f"http://127.0.0.1:{port}"
    with tempfile.NamedTemporaryFile() as log:

        def output() -> str:
            # pread: the child writes through the same file offset, so never move it.
            fd = log.fileno()
            return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

        argv = ["run", app, "--headless", "--host", "127.0.0.1", "--port", str(port), *args]
        proc: subprocess.Popen[bytes] | app_fork.App
        if app_fork.enabled(child_env):  # imports shared with the other apps: tests/app_fork.py
            proc = app_fork.start(argv, root, child_env, log.name)
        else:
            command = [sys.executable, "-m", "chainlit", *argv]
            proc = subprocess.Popen(
                command, cwd=root, env=child_env, stdout=log, stderr=subprocess.STDOUT
            )
        _LOGS[url] = output
        _PIDS[url] = proc.pid
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    error = _PortTaken if "address already in use" in output() else RuntimeError
                    raise error(f"chainlit exited with {proc.returncode}:\n{output()[-6000:]}")
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
                    raise RuntimeError(
                        f"chainlit did not start in {timeout} s:\n{output()[-6000:]}"
                    )
                time.sleep(0.2)
            try:
                yield url
            except BaseException:
                sys.stderr.write(f"\n--- chainlit server log ({url}) ---\n{output()[-6000:]}\n")
                raise
        finally:
            _LOGS.pop(url, None)
            _PIDS.pop(url, None)
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@dataclass
class Turn:
    """Everything the server sent for one user message, in arrival order."""

    steps: list[dict[str, Any]] = field(default_factory=list)  # type "tool" (the Router)
    tokens: list[str] = field(default_factory=list)  # stream_start's output + stream_token's
    messages: list[dict[str, Any]] = field(default_factory=list)  # every other step dict
    events: list[str] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)  # buttons sent with a message
    removed_actions: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0  # client_message sent -> task_end received

    @property
    def router(self) -> dict[str, Any] | None:
        """The Router step as last sent (its output is the route markdown)."""
        found = [s for s in self.steps if s.get("name") == ROUTE_STEP_NAME]
        return found[-1] if found else None

    @property
    def text(self) -> str:
        """The streamed tokens joined."""
        return "".join(self.tokens)

    @property
    def replies(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == "assistant_message"]

    @property
    def reply(self) -> str:
        """The last assistant message's final content (answer, notice, Sources, meta line)."""
        replies = self.replies
        return str(replies[-1].get("output", "")) if replies else ""

    @property
    def thread_id(self) -> str:
        """The thread (conversation) the messages of this turn were stored in."""
        ids = {str(m.get("threadId")) for m in self.messages + self.steps if m.get("threadId")}
        assert len(ids) == 1, ids
        return ids.pop()

    @property
    def errors(self) -> list[str]:
        """Chainlit's own error messages (an exception escaped the app's handler)."""
        return [str(m.get("output")) for m in self.messages if m.get("isError")]


async def sign_in(url: str, username: str, password: str) -> dict[str, str]:
    """Password sign-in as the UI does (POST /login); the headers that carry the session."""
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        resp = await http.post("/login", data={"username": username, "password": password})
    resp.raise_for_status()
    cookies = "; ".join(f"{k}={v}" for k, v in resp.cookies.items())
    return {"Cookie": cookies}


class ChatClient:
    """One Chainlit session over socket.io (the protocol the web UI speaks)."""

    def __init__(
        self,
        url: str,
        client_type: str = "webapp",
        *,
        local_addr: str | None = None,
        headers: dict[str, str] | None = None,
        connect_timeout: float = 10.0,
        thread_id: str = "",
    ) -> None:
        """`local_addr` binds the client's side of the connection to that address (e.g.
        "127.0.0.2": the server sees another client IP); `headers` go with the websocket
        handshake (e.g. X-Forwarded-For, as a proxy would add, or the `Cookie` of
        `sign_in`); `thread_id` resumes that stored thread (as the sidebar does; sign-in on):
        `resumed` then holds the thread the server sent back, or the error it gave."""
        self.url = url
        self.client_type = client_type
        self.thread_id = thread_id
        self.resumed: Any = None
        self._resume_done = asyncio.Event()
        self.session_id = str(uuid.uuid4())
        self.local_addr = local_addr
        self.headers = dict(headers or {})
        self.connect_timeout = connect_timeout
        self._http: Any = None  # an aiohttp session of our own when local_addr is set
        options: dict[str, Any] = {}
        if local_addr is not None:
            options["http_session"] = self._make_http_session
        self._sio_options = options
        self.sio = socketio.AsyncClient(reconnection=False, **options)
        self._turn = Turn()
        self._done = asyncio.Event()
        self._replied = asyncio.Event()  # an assistant message arrived
        self.sio.on("*", self._on_event)

    async def _on_event(self, event: str, data: Any = None) -> None:
        turn = self._turn
        turn.events.append(event)
        if event in ("resume_thread", "resume_thread_error"):
            self.resumed = data
            self._resume_done.set()
        if event in ("new_message", "update_message") and isinstance(data, dict):
            if data.get("type") == "tool":
                turn.steps.append(data)
            else:
                turn.messages.append(data)
                if data.get("type") == "assistant_message":
                    self._replied.set()
        elif event == "stream_start" and isinstance(data, dict):
            turn.tokens.append(str(data.get("output", "")))
        elif event == "stream_token" and isinstance(data, dict):
            turn.tokens.append(str(data.get("token", "")))
        elif event == "action" and isinstance(data, dict):
            turn.actions.append(data)
        elif event == "remove_action" and isinstance(data, dict):
            turn.removed_actions.append(data)
        elif event == "task_end" and "task_start" in turn.events:
            self._done.set()  # (connection_successful sends a bare task_end first)

    async def _wait_task_end(self, wait_s: float, what: str) -> None:
        try:
            await asyncio.wait_for(self._done.wait(), wait_s)
        except TimeoutError:
            raise AssertionError(
                f"no task_end within {wait_s} s after {what}; events so far: {self._turn.events}"
                f"\n--- server log ---\n{server_log(self.url)}"
            ) from None

    def _make_http_session(self) -> Any:
        # python-engineio calls this inside the running loop (it accepts a session factory).
        import aiohttp

        assert self.local_addr is not None
        connector = aiohttp.TCPConnector(local_addr=(self.local_addr, 0))
        self._http = aiohttp.ClientSession(connector=connector)
        return self._http

    async def __aenter__(self) -> ChatClient:
        try:
            await self._connect()
        except BaseException:
            await self._close_http()
            raise
        return self

    async def _close_http(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _connect(self) -> None:
        await self._open()
        self._turn = Turn()
        self._done.clear()
        # The server answers connection_successful with a bare task_end, then runs
        # on_chat_start as a task (task_start, its run step, task_end): wait for that end.
        # A resumed thread runs on_chat_resume instead and sends the thread back.
        await self.sio.emit("connection_successful")
        if self.thread_id:
            try:
                await asyncio.wait_for(self._resume_done.wait(), self.connect_timeout)
            except TimeoutError:
                raise AssertionError(f"thread not resumed: {self._turn.events}") from None
            return
        await self._wait_task_end(self.connect_timeout, "connection_successful (on_chat_start)")

    async def reconnect(self) -> None:
        """Drop the socket and at once open a new one for the same session, as the UI's
        socket.io client does after a network blip: Chainlit restores the session (no new
        on_chat_start) and a turn in progress goes on sending to the new socket, into `turn`.
        (The server's bare task_end for the new connection may end `wait_turn` early: wait
        for the reply itself instead.)"""
        await self.sio.disconnect()
        self.sio = socketio.AsyncClient(reconnection=False, **self._sio_options)
        self.sio.on("*", self._on_event)
        await self._open()
        await self.sio.emit("connection_successful")

    async def _open(self) -> None:
        await self.sio.connect(
            self.url,
            headers=self.headers,
            socketio_path="/ws/socket.io",
            transports=["websocket"],
            auth={
                "sessionId": self.session_id,
                "clientType": self.client_type,
                "threadId": self.thread_id,
                "userEnv": "{}",
                "chatProfile": PROFILE,
            },
            wait_timeout=self.connect_timeout,
        )

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.sio.disconnect()
        finally:
            await self._close_http()

    async def click(self, action: dict[str, Any], wait_s: float = 10.0) -> tuple[Any, Turn]:
        """Click an action button as the UI does (POST /project/action); collect the replies.

        Returns the HTTP response's JSON and what the server sent until its first assistant
        message (an action callback runs outside any task: there is no task_end to wait for).
        """
        import httpx

        self._turn = Turn()
        self._replied.clear()
        body = {"sessionId": self.session_id, "action": action}
        async with httpx.AsyncClient(base_url=self.url, timeout=wait_s) as http:
            resp = await http.post("/project/action", json=body)
        try:
            await asyncio.wait_for(self._replied.wait(), wait_s)
        except TimeoutError:
            raise AssertionError(f"no reply to the action; events: {self._turn.events}") from None
        await asyncio.sleep(0.2)  # let the events sent just before/after the reply arrive
        resp.raise_for_status()
        return resp.json(), self._turn

    async def ask(self, question: str, wait_s: float = 20.0) -> Turn:
        """Send one user message; collect everything until the server's task_end."""
        started = await self.send(question)
        return await self.wait_turn(wait_s, f"asking {question[:60]!r}", started)

    async def send(self, question: str) -> float:
        """Send one user message without waiting (see `turn`, `wait_turn`); returns when."""
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
        started = time.monotonic()
        await self.sio.emit("client_message", {"message": message, "fileReferences": []})
        return started

    @property
    def turn(self) -> Turn:
        """What the server has sent so far for the message in progress."""
        return self._turn

    async def wait_turn(self, wait_s: float, what: str, started: float) -> Turn:
        """Wait for the turn's task_end; its `elapsed_s` counts from `started`."""
        await self._wait_task_end(wait_s, what)
        self._turn.elapsed_s = time.monotonic() - started
        return self._turn

    async def stop(self) -> None:
        """Press the UI's Stop button (the `stop` event: Chainlit cancels the running turn)."""
        await self.sio.emit("stop")
