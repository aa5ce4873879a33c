"""Request bodies are capped before parsing, and every API POST counts (issue 14, body defect).

Found by a fault probe: FastAPI read a JSON body whole before validating it (a 200 MB body took
the process from 164 to 687 MB RSS), and the rate limit counted a request only once its body had
passed validation, so invalid requests were free. These tests run the API under a real uvicorn
process on a loopback port (the same `create_api` + `PrefixDispatcher` wiring as chainlit_app.py)
and read that process's peak RSS (VmHWM) from /proc.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from faqbot.answering.factory import build_bot
from faqbot.state.conversations import ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.web.app import create_api
from faqbot.web.limits import MAX_BODY_BYTES
from tests.e2e_support import ROOT, free_port

MB = 1024 * 1024
ERROR_KEYS = {"error", "detail", "error_code"}
SERVER = """
import sys, uvicorn
from faqbot.config import load_settings
from faqbot.state.conversations import ConversationStore
from faqbot.answering.factory import build_bot
from faqbot.state.ratelimit import RateLimiter
from faqbot.web.app import create_api
from faqbot.web.dispatch import PrefixDispatcher

settings = load_settings()
bot = build_bot(settings)
limiter = RateLimiter(settings.rate_limit_requests, settings.rate_limit_window)
api = create_api(lambda: bot, limiter, settings, ConversationStore())

async def other(scope, receive, send):  # stands in for Chainlit's app
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})

app = PrefixDispatcher(other, api=api, prefix="/api")
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", lifespan="off")
"""


class Server:
    """A uvicorn process serving the API; `url`, `pid` and its memory figures."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def memory_kb(self, field: str) -> int:
        """VmRSS (now) or VmHWM (peak so far) of the server process, in KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"{field} not in /proc/{self.proc.pid}/status")


def _start(faq_dir: Path, tmp: Path, limit: int) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(
        PYTHONPATH=str(ROOT),
        FAQ_DIR=str(faq_dir),
        EMBEDDINGS="off",
        DATA_DIR=str(tmp / "data"),
        RATE_LIMIT_REQUESTS=str(limit),
        RATE_LIMIT_WINDOW="60",
    )
    log = (tmp / f"server-{port}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)], env=env, stdout=log, stderr=log, cwd=tmp
    )
    server = Server(proc, port)
    deadline = time.monotonic() + 120  # a start-up bound, not a measurement: a loaded machine
    while True:
        if proc.poll() is not None:
            raise RuntimeError((tmp / f"server-{port}.log").read_text())
        try:
            with urllib.request.urlopen(f"{server.url}/api/health", timeout=1) as resp:
                if resp.status == 200:
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("API server did not start in 120 s")
        time.sleep(0.1)


def _stop(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(5)


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One API process for the body tests, with a rate limit they never reach."""
    from tests.conftest import SMALL_FAQ

    tmp = tmp_path_factory.mktemp("body_limit")
    faq_dir = tmp / "faqs"
    faq_dir.mkdir()
    for name, text in SMALL_FAQ.items():
        (faq_dir / name).write_text(text, encoding="utf-8")
    server = _start(faq_dir, tmp, limit=100_000)
    yield server
    _stop(server)


def _huge_json(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """A body that starts as a valid ChatRequest and goes on for `total` bytes (sent chunked)."""
    yield b'{"question": "'
    sent = 0
    while sent < total:
        yield b"a" * chunk
        sent += chunk
    yield b'"}'


def _raw_request(port: int, head: bytes, body: bytes = b"", wait_s: float = 5.0) -> bytes:
    """Send `head`, then `body` from a thread; return what the server sent until it closed.

    The server may answer and close while the body is still going out (that is the point):
    the sender then stops on the reset, and the answer already received is kept.
    """

    def send_body(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            for i in range(0, len(body), 65536):
                sock.sendall(body[i : i + 65536])

    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        sock.sendall(head)
        sender = threading.Thread(target=send_body, args=(sock,), daemon=True)
        sender.start()
        received = b""
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while chunk := sock.recv(65536):
                received += chunk
        sender.join(wait_s)
    return received


def _status_and_json(raw: bytes) -> tuple[int, Any]:
    """The first response in `raw`: its status and JSON body (None when it has none)."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = dict(line.lower().split(b": ", 1) for line in lines[1:])
    body = rest[: int(headers.get(b"content-length", len(rest)))]
    return int(lines[0].split(b" ", 2)[1]), json.loads(body) if body else None


def test_a_streamed_50_mb_body_gets_413_quickly_and_costs_no_memory(api_server: Server) -> None:
    peak_before = api_server.memory_kb("VmHWM")
    started = time.monotonic()
    with httpx.Client(timeout=10) as client:
        resp = client.post(
            f"{api_server.url}/api/chat",
            content=_huge_json(50 * MB),
            headers={"Content-Type": "application/json"},
        )
    elapsed = time.monotonic() - started
    growth_kb = api_server.memory_kb("VmHWM") - peak_before
    print(f"50 MB chunked body: {resp.status_code} in {elapsed:.2f} s, peak RSS +{growth_kb} KiB")
    assert resp.status_code == 413
    assert set(resp.json()) == ERROR_KEYS
    assert resp.json()["error_code"] == "PAYLOAD_TOO_LARGE"
    assert elapsed < 2.0
    assert growth_kb < 5 * 1024


def test_the_sse_route_is_capped_too(api_server: Server) -> None:
    with httpx.Client(timeout=10) as client:
        resp = client.post(f"{api_server.url}/api/chat/stream", content=_huge_json(2 * MB))
    assert resp.status_code == 413
    assert resp.json()["error_code"] == "PAYLOAD_TOO_LARGE"


def test_a_declared_oversize_body_is_refused_before_it_is_sent(api_server: Server) -> None:
    """Content-Length says 50 MB and nothing follows: the answer must not wait for the body."""
    head = (
        b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 52428800\r\n\r\n"
    )
    started = time.monotonic()
    raw = _raw_request(api_server.port, head, wait_s=10.0)
    elapsed = time.monotonic() - started
    # The body never comes: any answer at all was sent without waiting for it.
    assert raw, "the server sent nothing before the client gave up"
    status, body = _status_and_json(raw)
    assert status == 413
    assert body["error_code"] == "PAYLOAD_TOO_LARGE"
    assert elapsed < 10.0  # answered, then closed: the client did not wait out its timeout


def test_a_lying_small_content_length_followed_by_a_huge_body(api_server: Server) -> None:
    """Content-Length: 20, then 20 MB: only the declared bytes are read, no memory grows."""
    peak_before = api_server.memory_kb("VmHWM")
    head = (
        b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 20\r\n\r\n"
    )
    raw = _raw_request(api_server.port, head, b'{"question": "' + b"a" * (20 * MB), wait_s=5.0)
    status, _ = _status_and_json(raw)
    assert status in (400, 422)  # the 20 declared bytes are not a valid request
    assert api_server.memory_kb("VmHWM") - peak_before < 5 * 1024
    with httpx.Client(timeout=5) as client:  # and the server still answers
        assert client.get(f"{api_server.url}/api/health").status_code == 200


def test_the_largest_valid_request_fits_under_the_cap(api_server: Server) -> None:
    """1,000 astral characters, JSON-escaped as surrogate pairs (12 bytes each), still pass."""
    body = json.dumps({"question": "\U0001f600" * 1000, "conversation_id": "c" * 64})
    assert len(body) < MAX_BODY_BYTES
    with httpx.Client(timeout=10) as client:
        resp = client.post(
            f"{api_server.url}/api/chat",
            content=body,
            headers={"Content-Type": "application/json"},
        )
    assert resp.status_code == 200, resp.text


def test_invalid_and_oversize_requests_count_toward_the_rate_limit(
    small_faq_dir: Path, tmp_path: Path
) -> None:
    """RATE_LIMIT_REQUESTS=4: three invalid bodies and one oversize body use the budget up."""
    server = _start(small_faq_dir, tmp_path, limit=4)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            bad = [
                client.post("/api/chat", content=b"{not json", headers={"Content-Type": "x"}),
                client.post("/api/chat", json={"question": ""}),
                client.post("/api/chat/stream", json={"nope": 1}),
                client.post("/api/chat", content=b"x" * (MAX_BODY_BYTES + 1)),
            ]
            valid = client.post("/api/chat", json={"question": "refund?"})
    finally:
        _stop(server)
    assert valid.status_code == 429
    assert valid.json()["error_code"] == "RATE_LIMITED"
    assert int(valid.headers["retry-after"]) >= 1
    assert [r.status_code for r in bad] == [422, 422, 422, 413]


async def test_bytes_are_counted_as_they_arrive_whatever_content_length_says(
    make_settings: Any,
) -> None:
    """An ASGI server that delivers more than the declared length still cannot pass the cap."""
    settings = make_settings()
    api = create_api(
        lambda: build_bot(settings), RateLimiter(1000, 60), settings, ConversationStore()
    )
    chunks = [b'{"question": "' + b"a" * 8192] + [b"a" * 8192] * 100
    delivered = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered == len(chunks):
            return {"type": "http.disconnect"}
        delivered += 1
        more = delivered < len(chunks)
        return {"type": "http.request", "body": chunks[delivered - 1], "more_body": more}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/chat", "raw_path": b"/chat", "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"10")],
    }  # fmt: skip
    await api(scope, receive, send)
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error_code"] == "PAYLOAD_TOO_LARGE"
    assert delivered * 8192 <= MAX_BODY_BYTES + 8192  # it stopped reading at the cap
