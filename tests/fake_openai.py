"""A real loopback server speaking the OpenAI Chat Completions protocol, scriptable per test.

Used by every LLM test and benchmark instead of mocks (openai 3.x sends requests through httpx2,
which respx cannot intercept). Streams SSE like the real API: role chunk, content or tool-call
argument fragments, a finish chunk, an optional usage chunk (`"choices": []`), then `[DONE]`.

    with running() as fake:
        fake.script(tool("faq_sales", question="annual discount?"), text("Yes, 20%."))
        ...  # point AsyncOpenAI(base_url=fake.base_url) at it; fake.requests holds the bodies

A `torn` reply sends a few chunks and then drops the connection without `[DONE]` (the response
body raises mid-stream, so uvicorn closes the socket); the SDK then raises `openai.APIError`
/ a transport error while iterating, or ends the stream early without a finish reason.

CLI for manual runs and benchmarks (auto-responder):
    python -m tests.fake_openai --port 8011 --first-token-ms 300 --tokens-per-second 40
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

REFUSAL = (
    "I don't have that information in my FAQ database. Please contact support for more details."
)
Kind = Literal["text", "tool_calls", "error", "hang", "torn", "empty_choices"]


@dataclass
class Reply:
    """One scripted response."""

    kind: Kind
    text: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error_body: dict[str, Any] = field(default_factory=dict)
    first_token_delay: float | None = None
    tokens_per_second: float | None = None
    usage: tuple[int, int] | None = None
    torn_after: int = 3
    hang_seconds: float = 30.0


def text(content: str, **kw: Any) -> Reply:
    return Reply("text", text=content, **kw)


def tool(name: str, usage: tuple[int, int] | None = None, **arguments: Any) -> Reply:
    return Reply("tool_calls", tool_calls=[(name, json.dumps(arguments))], usage=usage)


def tools(calls: list[tuple[str, dict[str, Any] | str]], **kw: Any) -> Reply:
    raw = [(n, a if isinstance(a, str) else json.dumps(a)) for n, a in calls]
    return Reply("tool_calls", tool_calls=raw, **kw)


def bad_args(name: str = "faq_sales", raw: str = '{"question": "unterminated') -> Reply:
    return Reply("tool_calls", tool_calls=[(name, raw)])


def unknown_tool(name: str = "faq_nope") -> Reply:
    return Reply("tool_calls", tool_calls=[(name, json.dumps({"question": "x"}))])


def error(status: int, message: str = "error", retry_after: float | None = None) -> Reply:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
    kind = {401: "invalid_request_error", 429: "rate_limit_exceeded"}.get(status, "server_error")
    body = {"error": {"message": message, "type": kind, "code": kind, "param": None}}
    return Reply("error", status=status, headers=headers, error_body=body)


def rate_limited(retry_after: float = 1) -> Reply:
    return error(429, "Rate limit reached", retry_after=retry_after)


def server_error() -> Reply:
    return error(500, "The server had an error while processing your request.")


def hang(seconds: float = 30.0) -> Reply:
    return Reply("hang", hang_seconds=seconds)


def torn(content: str, after: int = 3) -> Reply:
    return Reply("torn", text=content, torn_after=after)


def empty_choices() -> Reply:
    return Reply("empty_choices")


_WORD = re.compile(r"[a-z0-9]{3,}")
_ANSWER = re.compile(r"^A: (.*?)(?:\n\s*\n|\Z)", re.S | re.M)


_STOP = set(
    "the and for you your are can what how does with that this from have our any not which who "
    "when where why will there about into was were has its their them they use used questions "
    "answers such".split()
)


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower())) - _STOP


def auto_responder(body: dict[str, Any]) -> Reply:
    """A deterministic 'plausible model' for manual runs and benchmarks."""
    messages = body.get("messages", [])
    if body.get("tools"):
        users = [m.get("content") or "" for m in messages if m.get("role") == "user"]
        last = users[-1] if users else ""
        words = _words(" ".join(users[-2:]))
        best, best_score = None, 0
        for t in body["tools"]:
            fn = t.get("function", {})
            score = len(words & _words(fn.get("description", "") + " " + fn.get("name", "")))
            if score > best_score:
                best, best_score = fn.get("name"), score
        if best is None:
            return text("NONE")
        return Reply("tool_calls", tool_calls=[(best, json.dumps({"question": last}))])
    for m in messages:
        found = _ANSWER.search(m.get("content") or "")
        if found:
            return text(" ".join(found.group(1).split()))
    return text(REFUSAL)


def _pieces(content: str) -> list[str]:
    return re.findall(r"\s*\S+", content) or [content]


def _fragments(raw: str, n: int = 4) -> list[str]:
    size = max(1, -(-len(raw) // n))
    return [raw[i : i + size] for i in range(0, len(raw), size)] or [""]


def _estimate_prompt_tokens(body: dict[str, Any]) -> int:
    words = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
    return round(words * 1.3) + 8 * len(body.get("tools", []))


class _Torn(Exception):
    """Raised inside the SSE body to make uvicorn drop the connection."""


class FakeOpenAI:
    """Scriptable fake; a thread-backed uvicorn server on 127.0.0.1 (ephemeral port by default)."""

    def __init__(
        self,
        *,
        model: str = "fake-model",
        first_token_delay: float = 0.0,
        tokens_per_second: float | None = None,
        responder: Callable[[dict[str, Any]], Reply] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.model = model
        self.first_token_delay = first_token_delay
        self.tokens_per_second = tokens_per_second
        self.responder = responder or auto_responder
        self.host = host
        self.port = port
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.on_request: Callable[[dict[str, Any]], None] | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.headers.clear()

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self.responder(body)

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in request.headers.items()})
        if self.on_request is not None:
            self.on_request(body)
        reply = self._next(body)
        if reply.kind == "hang":
            await asyncio.sleep(reply.hang_seconds)
            return JSONResponse({"error": {"message": "hung"}}, status_code=504)
        if reply.kind == "error":
            return JSONResponse(reply.error_body, status_code=reply.status, headers=reply.headers)
        usage = self._usage(body, reply)
        if not body.get("stream"):
            return JSONResponse(self._completion(body, reply, usage))
        return StreamingResponse(
            self._sse(body, reply, usage),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
        )

    def _usage(self, body: dict[str, Any], reply: Reply) -> dict[str, int]:
        if reply.usage is not None:
            prompt, completion = reply.usage
        else:
            prompt = _estimate_prompt_tokens(body)
            completion = len(_pieces(reply.text)) + sum(len(a) // 4 for _, a in reply.tool_calls)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _chunk(self, cid: str, choices: list[dict[str, Any]], **extra: Any) -> str:
        data = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "choices": choices,
            **extra,
        }
        return f"data: {json.dumps(data)}\n\n"

    async def _sse(
        self, body: dict[str, Any], reply: Reply, usage: dict[str, int]
    ) -> AsyncIterator[str]:
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        delay = reply.first_token_delay
        delay = self.first_token_delay if delay is None else delay
        tps = reply.tokens_per_second or self.tokens_per_second
        gap = 1.0 / tps if tps else 0.0
        if delay:
            await asyncio.sleep(delay)
        if reply.kind == "empty_choices":
            yield self._chunk(cid, [])
            yield "data: [DONE]\n\n"
            return
        yield self._chunk(
            cid, [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]
        )
        if reply.kind == "tool_calls":
            for i, (name, raw) in enumerate(reply.tool_calls):
                head = {
                    "index": i,
                    "id": f"call_{i + 1}",
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }
                delta: dict[str, Any] = {"tool_calls": [head]}
                yield self._chunk(cid, [{"index": 0, "delta": delta, "finish_reason": None}])
                for frag in _fragments(raw):
                    delta = {"tool_calls": [{"index": i, "function": {"arguments": frag}}]}
                    yield self._chunk(cid, [{"index": 0, "delta": delta, "finish_reason": None}])
                    if gap:
                        await asyncio.sleep(gap)
            finish = "tool_calls"
        else:
            pieces = _pieces(reply.text)
            for n, piece in enumerate(pieces):
                if reply.kind == "torn" and n >= reply.torn_after:
                    raise _Torn("stream cut on purpose")
                delta = {"content": piece}
                yield self._chunk(cid, [{"index": 0, "delta": delta, "finish_reason": None}])
                if gap:
                    await asyncio.sleep(gap)
            if reply.kind == "torn":
                raise _Torn("stream cut on purpose")
            finish = "stop"
        yield self._chunk(cid, [{"index": 0, "delta": {}, "finish_reason": finish}])
        if (body.get("stream_options") or {}).get("include_usage"):
            yield self._chunk(cid, [], usage=usage)
        yield "data: [DONE]\n\n"

    def _completion(
        self, body: dict[str, Any], reply: Reply, usage: dict[str, int]
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None}
        finish = "stop"
        if reply.kind == "tool_calls":
            message["tool_calls"] = [
                {"id": f"call_{i + 1}", "type": "function", "function": {"name": n, "arguments": a}}
                for i, (n, a) in enumerate(reply.tool_calls)
            ]
            finish = "tool_calls"
        else:
            message["content"] = reply.text
        choices = (
            []
            if reply.kind == "empty_choices"
            else [{"index": 0, "message": message, "finish_reason": finish}]
        )
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": choices,
            "usage": usage,
        }

    def start(self) -> FakeOpenAI:
        if self.port == 0:
            with socket.socket() as s:
                s.bind((self.host, 0))
                self.port = s.getsockname()[1]
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(**kw: Any) -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(**kw).start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Loopback fake OpenAI server (auto-responder)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--first-token-ms", type=float, default=0.0)
    parser.add_argument("--tokens-per-second", type=float, default=None)
    args = parser.parse_args(argv)
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback:
        parser.error("--host must be a loopback address")
    fake = FakeOpenAI(
        model=args.model,
        first_token_delay=args.first_token_ms / 1000,
        tokens_per_second=args.tokens_per_second,
        host=args.host,
        port=args.port,
    )
    fake.on_request = lambda body: print(
        f"request: {len(body.get('messages', []))} messages, tools={len(body.get('tools', []))}",
        flush=True,
    )
    fake.start()
    print(f"fake OpenAI server at {fake.base_url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
