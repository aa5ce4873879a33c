"""A real loopback server speaking the OpenAI Chat Completions and Embeddings protocols.

Used by every LLM test and benchmark instead of mocks: openai 3.x sends requests through
`httpx2`, which respx cannot intercept, so the SDK talks to this server over real TCP on
127.0.0.1. Streams SSE like the real API (`data: {json}\\n\\n` per chunk): a first chunk with
`role: assistant`, content pieces (one word each) or tool-call argument fragments, a chunk with
`finish_reason`, a usage chunk (`"choices": []`) when `stream_options.include_usage` is set,
then `data: [DONE]`. Non-streaming requests get a plain `chat.completion` object.

    with running() as fake:
        fake.script(tool("faq_sales", question="annual discount?"), text("Yes, 20%."))
        client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        ...  # fake.requests / fake.headers record what the SDK sent, in order

Scripted replies are served FIFO; when the queue is empty the `responder` (by default
`auto_responder`, a deterministic "plausible model") decides.

Faults, as the openai 3.x SDK sees them (checked in tests/test_fake_openai.py):

- `error(...)`, `rate_limited()`, `server_error()`: the status code, an OpenAI-shaped JSON error
  body and the given headers. 429 -> `openai.RateLimitError`, 500 -> `openai.InternalServerError`
  (`exc.response.headers["retry-after"]` is visible). `x-should-retry` is never sent.
- `hang(seconds)`: nothing is sent for `seconds` (then a 504); a shorter client timeout raises
  `openai.APITimeoutError`. The server keeps serving other requests meanwhile and stops waiting
  as soon as the client disconnects.
- `torn(text, after)`: the role chunk and `after` content chunks are sent, then the connection is
  dropped (the body generator raises, so uvicorn closes the socket without the terminating
  HTTP chunk; no `finish_reason`, no `[DONE]`). The SDK first yields the chunks it got, then
  raises `openai.APIConnectionError("Connection error.")` whose `__cause__` is
  `httpx2.RemoteProtocolError("peer closed connection without sending complete message body
  (incomplete chunked read)")`. A non-streaming torn reply sends half a JSON body and is cut
  the same way: `openai.APIConnectionError` from `create()`.
- `empty_choices()`: a 200 whose chunks (or completion) carry `"choices": []`.
- `stall(text, after, seconds)`: a stream that stops mid-answer: the role chunk and `after`
  content chunks, then silence for `seconds` (the connection stays open), then the rest. The SDK
  yields the first chunks and then waits; its read timeout is the only limit. A non-streaming
  stall reply arrives `seconds` late.

Embeddings (`POST /v1/embeddings`): the real response shape `{"object": "list", "data": [{"object":
"embedding", "index": i, "embedding": [...]}], "model", "usage"}`; `input` is a string, a list of
strings or token arrays; `encoding_format` "float" (the API's default when absent) or "base64"
(little-endian float32, as the real API; the openai SDK sends "base64" whenever the caller does not
choose a format, and decodes it itself); `dimensions` overrides `embedding_dim`. Vectors come from
`fake_embedding` (a hashed bag of words, unit length: texts sharing words are similar). Invalid
requests get the real API's 400s (empty string input, empty list, more than 2048 inputs, no
model). Embedding calls have their own script (`script_embeddings`, FIFO, then normal vectors)
and records (`embedding_requests`, `embedding_headers`), so they never consume chat replies.
`error(...)`, `rate_limited()`, `server_error()`, `hang(...)` and `torn(...)` (half a JSON body,
then the connection is cut) work there too, plus `bad_embeddings(fault)` for malformed 200s.

Latency profile (`LatencyProfile`, one model for streamed AND non-streamed replies): the first
token after `first_token_ms`, then `tokens_per_second`; `answer_tokens` makes every text answer
exactly that many tokens (the reply's words, repeated as needed, then cut) and `tool_call_tokens`
sends every tool call's arguments as that many fragments (padded with JSON whitespace when
shorter). A streamed text reply's first content chunk arrives after the first-token delay and its
last one `(answer_tokens - 1) / tokens_per_second` later; a tool call's name arrives after the
delay and each argument fragment one token-time later. A NON-streamed reply waits exactly as long
as the same reply streamed would take to finish, then returns the whole body. `completion_tokens`
in `usage` counts those tokens. Presets in `PROFILES` ("zero", "realistic": 300 ms, 100 tokens/s,
150-token answers, 20-token tool calls). Set it with `FakeOpenAI(profile=...)`, `fake.profile =
...`, the CLI (`--profile realistic`, or the separate flags), or over HTTP (below). `reset()`
restores the profile given at construction.

Billing (`billed`, `billed_tokens()`): what a provider would charge, recorded as it happens, one
record per served call (`kind` "chat" or "embeddings"). The prompt is billed as soon as the request
is read (a reply the server refuses, `error(...)` or `hang(...)`, bills nothing); a streamed
reply's completion tokens are billed as they are sent (one per content chunk or argument
fragment, at most the reply's `usage`), so a client that disconnects mid-stream is billed the
prompt and what it was sent; a stream that ends normally bills its whole `usage`. `usages` is
different: the usage each reply reports (what a finished call would have cost).

Server modes (`FakeOpenAI(mode=...)`, the CLI's `--mode`), for the router's portability: "openai"
(default) honours every `tool_choice`; "llama-cpp" behaves as llama-cpp-python 0.3.36's server
(`chatml-function-calling`): a `tool_choice` other than "auto", "none" or a named function
raises inside its event stream, so the client gets a 200 whose stream breaks before any chunk
(no scripted reply is consumed); "ollama" ignores `tool_choice` as Ollama's OpenAI-compatible
API does: a request with tools gets a plain-text answer (scripted replies still come first).
A named `tool_choice` (`{"type": "function", "function": {"name": ...}}`) makes the
auto-responder call that tool; an argument with an `enum` gets the value whose line in the
tool's description (`- value: ...`) shares the most words with the question.

Control endpoints (for benchmarks driving a CLI fake from another process):
`GET /_fake/stats` -> `{"chat_calls", "embedding_calls", "usage": [usage of each chat call],
"billed": [billing records], "billed_tokens", "profile", "stall_seconds"}`;
`POST /_fake/reset` clears records and scripts (not the profile); `POST /_fake/profile` with
any of the `LatencyProfile` fields (or `{"preset": "realistic"}`) and `stall_seconds` (a
number: every chat call not scripted hangs that long, as `hang()`; null: off).

CLI for manual runs and benchmarks (auto-responder, loopback only, one log line per request):
    python -m tests.fake_openai --port 8011 --first-token-ms 300 --tokens-per-second 40
    python -m tests.fake_openai --port 0 --profile realistic --quiet
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import ipaddress
import json
import logging
import re
import socket
import threading
import time
import unicodedata
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = [
    "MODES",
    "PROFILES",
    "REFUSAL",
    "Bill",
    "FakeOpenAI",
    "LatencyProfile",
    "Reply",
    "auto_responder",
    "bad_args",
    "bad_embeddings",
    "embeddings",
    "empty_choices",
    "error",
    "fake_embedding",
    "hang",
    "rate_limited",
    "running",
    "server_error",
    "stall",
    "text",
    "tool",
    "tools",
    "torn",
    "unknown_tool",
]

REFUSAL = (
    "I don't have that information in my FAQ database. Please contact support for more details."
)
Kind = Literal[
    "text",
    "tool_calls",
    "error",
    "hang",
    "torn",
    "stall",
    "empty_choices",
    "embeddings",
    "broken",
]
Mode = Literal["openai", "llama-cpp", "ollama"]
MODES: tuple[Mode, ...] = ("openai", "llama-cpp", "ollama")
EmbeddingFault = Literal[
    "reversed",
    "count",
    "missing_data",
    "empty_data",
    "ragged",
    "nan",
    "not_json",
    "html",
    "bad_index",
]


@dataclass
class Reply:
    """One scripted response.

    `text` is the content for `text` and `torn` replies; `tool_calls` holds
    `(function name, raw arguments string)` pairs (the string is sent verbatim, so it may be
    invalid JSON). `status`, `headers` and `error_body` shape `error` replies (`headers` are
    also sent on every other reply). `first_token_delay` (seconds) and `tokens_per_second`
    override the server's pacing; `usage` overrides the `(prompt, completion)` token counts;
    `torn_after` is the number of content chunks sent before a torn stream is cut (or a
    `stall` stream pauses); `hang_seconds` is how long a `hang` or `stall` reply stays silent.
    `embedding_fault` bends an `embeddings` reply (see `bad_embeddings`).
    """

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
    embedding_fault: EmbeddingFault | None = None
    tool_call_fragments: int | None = None  # set by a profile's tool_call_tokens


@dataclass
class Bill:
    """What a provider charges for one call, kept up to date while the reply streams.

    `prompt_tokens` are billed when the request is read; `completion_tokens` grow by one per
    chunk of output sent, up to `planned` (the reply's usage), which a finished reply bills whole.
    """

    kind: Literal["chat", "embeddings"]
    prompt_tokens: int
    planned: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def sent(self, tokens: int = 1) -> None:
        """`tokens` more of the completion went out (never past the planned completion)."""
        self.completion_tokens = min(self.planned, self.completion_tokens + tokens)

    def finished(self) -> None:
        self.completion_tokens = self.planned

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class LatencyProfile:
    """One latency model for every chat reply, streamed or not (see the module docstring).

    `tokens_per_second` None or 0 sends every token at once; `answer_tokens` /
    `tool_call_tokens` None keep each reply's own length.
    """

    first_token_ms: float = 0.0
    tokens_per_second: float | None = None
    answer_tokens: int | None = None
    tool_call_tokens: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "first_token_ms": self.first_token_ms,
            "tokens_per_second": self.tokens_per_second,
            "answer_tokens": self.answer_tokens,
            "tool_call_tokens": self.tool_call_tokens,
        }


PROFILES: dict[str, LatencyProfile] = {
    "zero": LatencyProfile(),
    "realistic": LatencyProfile(
        first_token_ms=300, tokens_per_second=100, answer_tokens=150, tool_call_tokens=20
    ),
}


def text(content: str, **kw: Any) -> Reply:
    """A text answer, streamed one word per chunk. `kw` sets other `Reply` fields."""
    return Reply("text", text=content, **kw)


def tool(name: str, usage: tuple[int, int] | None = None, **arguments: Any) -> Reply:
    """One tool call to `name` with `arguments` JSON-encoded (streamed in ~4 fragments)."""
    return Reply("tool_calls", tool_calls=[(name, json.dumps(arguments))], usage=usage)


def tools(calls: list[tuple[str, dict[str, Any] | str]], **kw: Any) -> Reply:
    """Several tool calls (index 0, 1, ...); a `str` argument is sent verbatim."""
    raw = [(n, a if isinstance(a, str) else json.dumps(a)) for n, a in calls]
    return Reply("tool_calls", tool_calls=raw, **kw)


def bad_args(name: str = "faq_sales", raw: str = "{not json", **kw: Any) -> Reply:
    """A tool call whose arguments are not valid JSON (sent verbatim)."""
    return Reply("tool_calls", tool_calls=[(name, raw)], **kw)


def unknown_tool(name: str = "faq_nope", **kw: Any) -> Reply:
    """A tool call to a function the request did not offer."""
    return Reply("tool_calls", tool_calls=[(name, json.dumps({"question": "x"}))], **kw)


_ERROR_TYPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_denied", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def error(
    status: int,
    retry_after: float | None = None,
    message: str = "error",
    headers: dict[str, str] | None = None,
) -> Reply:
    """An HTTP error with an OpenAI-shaped body `{"error": {"message", "type", "code"}}`."""
    kind, code = _ERROR_TYPES.get(status, ("server_error", None))
    all_headers = dict(headers or {})
    if retry_after is not None:
        whole = float(retry_after).is_integer()
        all_headers["retry-after"] = str(int(retry_after)) if whole else str(retry_after)
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return Reply("error", status=status, headers=all_headers, error_body=body)


def rate_limited(retry_after: float = 1) -> Reply:
    """A 429 with a `Retry-After` header (-> `openai.RateLimitError`)."""
    return error(429, retry_after=retry_after, message="Rate limit reached for requests")


def server_error() -> Reply:
    """A 500 (-> `openai.InternalServerError`)."""
    return error(500, message="The server had an error while processing your request.")


def hang(seconds: float = 30.0) -> Reply:
    """Send nothing for `seconds` (then a 504), so the client's timeout fires."""
    return Reply("hang", hang_seconds=seconds)


def torn(content: str, after: int = 3) -> Reply:
    """Stream the role chunk and `after` words of `content`, then drop the connection."""
    return Reply("torn", text=content, torn_after=after)


def stall(content: str, after: int = 3, seconds: float = 30.0) -> Reply:
    """Stream the role chunk and `after` words of `content`, go silent `seconds`, then the rest."""
    return Reply("stall", text=content, torn_after=after, hang_seconds=seconds)


def empty_choices() -> Reply:
    """A 200 whose chunks (or completion) have `"choices": []`."""
    return Reply("empty_choices")


def embeddings(**kw: Any) -> Reply:
    """Normal vectors for an embeddings call (`kw` sets e.g. `headers`, `first_token_delay`)."""
    return Reply("embeddings", **kw)


def bad_embeddings(fault: EmbeddingFault, **kw: Any) -> Reply:
    """A 200 embeddings response that a careful client must reject (or, for "reversed", sort).

    reversed: items in reverse order (indexes intact, a legal response); count: one vector too
    few (one too many for a single input); missing_data: no `data` key; empty_data: `data: []`;
    ragged: the last vector is one component short; nan: the first component of the first vector
    is NaN; not_json: an `application/json` body that is not JSON (the SDK raises a bare
    `json.JSONDecodeError`); html: a `text/html` page, as from a proxy (the SDK returns it as a
    plain `str`, no exception); bad_index: the last item's index is out of range.
    """
    return Reply("embeddings", embedding_fault=fault, **kw)


_EMBED_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def fake_embedding(text: str, dim: int) -> list[float]:
    """The fake's deterministic unit vector for `text`: each word adds +-1 at 4 hashed positions.

    A small constant component keeps word-less texts non-zero. Values are float32-exact, so the
    "float" and "base64" encodings decode to identical vectors.
    """
    v = np.zeros(dim, dtype=np.float64)
    v[0] = 0.05
    for word in _EMBED_WORD.findall(unicodedata.normalize("NFKC", text).lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=16).digest()
        for i in range(0, 16, 4):
            position = int.from_bytes(digest[i : i + 3], "little") % dim
            v[position] += 1.0 if digest[i + 3] & 1 else -1.0
    unit: list[float] = (v / np.linalg.norm(v)).astype(np.float32).tolist()
    return unit


def _embedding_inputs(body: dict[str, Any]) -> list[str] | str:
    """The texts of an embeddings request (token arrays become "t<id>" words), or a 400 reason."""
    raw = body.get("input")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    if isinstance(raw, str):
        raw = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw):
        raw = [raw]  # one token array
    if not isinstance(raw, list) or not raw:
        return "'$.input' is invalid. Please check the API reference."
    if len(raw) > 2048:
        return "'$.input' is invalid: at most 2048 inputs per request."
    texts: list[str] = []
    for item in raw:
        if isinstance(item, list) and item and all(isinstance(t, int) for t in item):
            texts.append(" ".join(f"t{t}" for t in item))
        elif isinstance(item, str) and item:
            texts.append(item)
        else:
            return "'$.input' is invalid. Please check the API reference."
    fmt = body.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        return f"Invalid value for 'encoding_format': {fmt!r}."
    dims = body.get("dimensions")
    if dims is not None and (not isinstance(dims, int) or isinstance(dims, bool) or dims < 1):
        return "Invalid value for 'dimensions'."
    return texts


def _encode_vector(vector: list[float], fmt: str) -> list[float] | str:
    if fmt == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector


# --- the auto-responder -------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]{3,}")
_ANSWER = re.compile(r"^A: (.*?)(?:\n[ \t]*\n|\Z)", re.S | re.M)
_STOP = set(
    "the and for you your are can what how does with that this from have our any not which who "
    "when where why will there about into was were has its their them they use used questions "
    "answers such".split()
)


async def _json_body(request: Request) -> dict[str, Any] | None:
    """The request's JSON object, or None when the body is not one."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _words(content: str) -> set[str]:
    return set(_WORD.findall(content.lower())) - _STOP


def _content(message: dict[str, Any]) -> str:
    """A message's text, also for the list-of-parts content form."""
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def _no_args(tool: dict[str, Any]) -> bool:
    """Does this tool's schema take no arguments at all?"""
    params = tool.get("function", {}).get("parameters") or {}
    return not params.get("properties")


def _forced_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    """The tool a named `tool_choice` forces, if it is among the request's tools."""
    choice = body.get("tool_choice")
    if not isinstance(choice, dict):
        return None
    name = (choice.get("function") or {}).get("name")
    return next((t for t in body["tools"] if t.get("function", {}).get("name") == name), None)


def _forced_call(tool: dict[str, Any], words: set[str], last: str) -> tuple[str, str]:
    """A call to a forced tool: enums by word overlap with their description lines, strings
    the last user message (as a grammar-constrained model always produces valid arguments)."""
    fn = tool["function"]
    lines = str(fn.get("description", "")).splitlines()
    args: dict[str, Any] = {}
    for prop, schema in ((fn.get("parameters") or {}).get("properties") or {}).items():
        if "enum" in schema:
            values = list(schema["enum"])

            def score(value: str) -> int:
                line = next((x for x in lines if x.lstrip("- ").startswith(f"{value}:")), value)
                return len(words & _words(f"{line} {value.replace('_', ' ')}"))

            best = max(values, key=score)
            args[prop] = best if score(best) else values[-1]
        else:
            args[prop] = last
    return str(fn["name"]), json.dumps(args)


def _ollama_text(body: dict[str, Any]) -> Reply:
    """What Ollama sends for a request with tools whatever its tool_choice: plain text."""
    users = [_content(m) for m in body.get("messages", []) if m.get("role") == "user"]
    return text(f"Here is what I can tell you about: {users[-1] if users else 'that'}")


def auto_responder(body: dict[str, Any]) -> Reply:
    """A deterministic "plausible model" for manual runs and benchmarks.

    With `tools`: the tool whose name + description shares the most words (lowercase, 3+
    letters, minus function words) with the last two user messages is called with
    `{"question": <last user message>}` (`{}` when its schema has no `question`); no overlap at
    all -> the text "NONE", or, when `tool_choice` is "required", a call to the first tool that
    takes no arguments (a "none of these" tool), if there is one.
    Without tools: the first `A: ...` block in any message (up to a blank line, whitespace
    normalised) is the answer; none -> the standard `REFUSAL`.
    """
    messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
    if body.get("tools"):
        users = [_content(m) for m in messages if m.get("role") == "user"]
        last = users[-1] if users else ""
        words = _words(" ".join(users[-2:]))
        forced = _forced_tool(body)
        if forced is not None:
            return Reply("tool_calls", tool_calls=[_forced_call(forced, words, last)])
        best, best_score = None, 0
        for t in body["tools"]:
            fn = t.get("function", {})
            name = str(fn.get("name", ""))
            score = len(words & _words(f"{fn.get('description', '')} {name.replace('_', ' ')}"))
            if score > best_score:
                best, best_score = name, score
        if best is None and body.get("tool_choice") == "required":
            best = next((str(t["function"]["name"]) for t in body["tools"] if _no_args(t)), None)
        if best is None:
            return text("NONE")
        chosen = next(t for t in body["tools"] if t.get("function", {}).get("name") == best)
        args = {} if _no_args(chosen) else {"question": last}
        return Reply("tool_calls", tool_calls=[(best, json.dumps(args))])
    for m in messages:
        found = _ANSWER.search(_content(m))
        if found:
            return text(" ".join(found.group(1).split()))
    return text(REFUSAL)


# --- the server ---------------------------------------------------------------------------


def _pieces(content: str) -> list[str]:
    """One chunk per word, each with its leading whitespace."""
    return re.findall(r"\s*\S+\s*$|\s*\S+", content) or [content]


def _fragments(raw: str, n: int = 4) -> list[str]:
    size = max(1, -(-len(raw) // n))
    return [raw[i : i + size] for i in range(0, len(raw), size)] or [""]


def _exact_fragments(raw: str, n: int) -> list[str]:
    """`raw` in exactly `n` non-empty pieces (right-padded with spaces, valid JSON whitespace)."""
    raw = raw.ljust(n)
    size, extra = divmod(len(raw), n)
    out, at = [], 0
    for i in range(n):
        step = size + (1 if i < extra else 0)
        out.append(raw[at : at + step])
        at += step
    return out


def _sized_text(content: str, n: int) -> str:
    """`content` made exactly `n` word-chunks long: its words repeated as needed, then cut."""
    words = content.split() or ["token"]
    return " ".join(words[i % len(words)] for i in range(n))


def _estimate_prompt_tokens(body: dict[str, Any]) -> int:
    words = sum(len(_content(m).split()) for m in body.get("messages", []) if isinstance(m, dict))
    return round(words * 1.3) + 8 * len(body.get("tools") or [])


async def _until(deadline: float) -> None:
    """Sleep until loop time `deadline` (at once if it has passed)."""
    await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))


class _Torn(Exception):
    """Raised inside a response body to make uvicorn drop the connection."""


class _QuietTorn(logging.Filter):
    """Hide uvicorn's 'Exception in ASGI application' traceback for deliberate cuts."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, _Torn):
                return False
            if isinstance(exc, BaseExceptionGroup) and exc.subgroup(_Torn) is not None:
                return False
            exc = exc.__cause__ or exc.__context__
        return True


_QUIET = _QuietTorn()
RequestHook = Callable[[dict[str, Any], Reply], None]


class FakeOpenAI:
    """Scriptable fake; a thread-backed uvicorn server on 127.0.0.1 (ephemeral port by default).

    `first_token_delay` (seconds before the first chunk) and `tokens_per_second` (pause between
    chunks) are the default pacing, overridable per `Reply` and mutable between runs.
    `requests` and `headers` record, in order, the JSON body and the (lower-cased) headers of
    every `/v1/chat/completions` call. `on_request(body, reply)` is called for each one.
    `/v1/embeddings` calls are recorded apart, in `embedding_requests` and `embedding_headers`
    (hook: `on_embedding_request`); their vectors have `embedding_dim` components by default
    and are sent after `embedding_delay` seconds (a reply's `first_token_delay` overrides it).
    """

    def __init__(
        self,
        *,
        model: str = "fake-model",
        first_token_delay: float = 0.0,
        tokens_per_second: float | None = None,
        responder: Callable[[dict[str, Any]], Reply] | None = None,
        embedding_dim: int = 64,
        embedding_delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        answer_tokens: int | None = None,
        tool_call_tokens: int | None = None,
        profile: LatencyProfile | None = None,
        mode: Mode = "openai",
    ) -> None:
        self.model = model
        self.mode = mode
        self.embedding_dim = embedding_dim
        self.embedding_delay = embedding_delay
        self.first_token_delay = first_token_delay
        self.tokens_per_second = tokens_per_second
        self.answer_tokens = answer_tokens
        self.tool_call_tokens = tool_call_tokens
        if profile is not None:
            self.profile = profile
        self._initial_profile = self.profile
        self.stall_seconds: float | None = None
        self.usages: list[dict[str, int]] = []
        self.billed: list[Bill] = []
        self.responder = responder or auto_responder
        self.host = host
        self.port = port
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.on_request: RequestHook | None = None
        self.embedding_requests: list[dict[str, Any]] = []
        self.embedding_headers: list[dict[str, str]] = []
        self.on_embedding_request: RequestHook | None = None
        self._queue: deque[Reply] = deque()
        self._embedding_queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/_fake/stats", self._stats, methods=["GET"]),
                Route("/_fake/reset", self._reset_route, methods=["POST"]),
                Route("/_fake/profile", self._profile_route, methods=["POST"]),
            ]
        )

    @property
    def profile(self) -> LatencyProfile:
        """The latency model in force (first-token delay, tokens/s, answer and tool-call length)."""
        return LatencyProfile(
            first_token_ms=self.first_token_delay * 1000,
            tokens_per_second=self.tokens_per_second,
            answer_tokens=self.answer_tokens,
            tool_call_tokens=self.tool_call_tokens,
        )

    @profile.setter
    def profile(self, value: LatencyProfile) -> None:
        self.first_token_delay = value.first_token_ms / 1000
        self.tokens_per_second = value.tokens_per_second
        self.answer_tokens = value.answer_tokens
        self.tool_call_tokens = value.tool_call_tokens

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/v1`, for `AsyncOpenAI(base_url=...)`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def pending(self) -> int:
        """Scripted replies not served yet."""
        with self._lock:
            return len(self._queue)

    @property
    def pending_embeddings(self) -> int:
        """Scripted embedding replies not served yet."""
        with self._lock:
            return len(self._embedding_queue)

    def billed_tokens(self, kind: Literal["chat", "embeddings"] | None = None) -> int:
        """Every token billed so far (of one `kind` of call when given)."""
        with self._lock:
            bills = list(self.billed)
        return sum(b.total_tokens for b in bills if kind is None or b.kind == kind)

    def script(self, *replies: Reply) -> None:
        """Queue replies, served FIFO before the responder is consulted again."""
        with self._lock:
            self._queue.extend(replies)

    def script_embeddings(self, *replies: Reply) -> None:
        """Queue replies for `/v1/embeddings` calls, served FIFO before normal vectors again."""
        with self._lock:
            self._embedding_queue.extend(replies)

    def reset(self) -> None:
        """Clear the scripts and the records."""
        with self._lock:
            self._queue.clear()
            self._embedding_queue.clear()
            self.requests.clear()
            self.headers.clear()
            self.embedding_requests.clear()
            self.embedding_headers.clear()
            self.usages.clear()
            self.billed.clear()
        self.profile = self._initial_profile
        self.stall_seconds = None

    def _next(self, body: dict[str, Any]) -> Reply:
        choice = body.get("tool_choice")
        forbidden = isinstance(choice, str) and choice not in ("auto", "none")
        if self.mode == "llama-cpp" and body.get("tools") and forbidden:
            return Reply("broken")  # raised inside llama-cpp-python's event stream
        with self._lock:
            if self._queue:
                return self._shaped(self._queue.popleft())
        if self.stall_seconds is not None:
            return hang(self.stall_seconds)
        if self.mode == "ollama" and body.get("tools"):
            return self._shaped(_ollama_text(body))
        return self._shaped(self.responder(body))

    def _shaped(self, reply: Reply) -> Reply:
        """`reply` with the profile's answer / tool-call length applied (text and tool calls)."""
        if reply.kind in ("text", "stall") and self.answer_tokens:
            return dataclasses.replace(reply, text=_sized_text(reply.text, self.answer_tokens))
        if reply.kind == "tool_calls" and self.tool_call_tokens:
            return dataclasses.replace(reply, tool_call_fragments=self.tool_call_tokens)
        return reply

    # --- control (benchmarks) ---------------------------------------------------------

    async def _stats(self, request: Request) -> Response:
        with self._lock:
            stats = {
                "chat_calls": len(self.requests),
                "embedding_calls": len(self.embedding_requests),
                "usage": list(self.usages),
                "billed": [b.as_dict() for b in self.billed],
                "billed_tokens": sum(b.total_tokens for b in self.billed),
            }
        stats |= {"profile": self.profile.as_dict(), "stall_seconds": self.stall_seconds}
        return JSONResponse(stats)

    async def _reset_route(self, request: Request) -> Response:
        with self._lock:
            self._queue.clear()
            self._embedding_queue.clear()
            self.requests.clear()
            self.headers.clear()
            self.embedding_requests.clear()
            self.embedding_headers.clear()
            self.usages.clear()
            self.billed.clear()
        return JSONResponse({"ok": True})

    async def _profile_route(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise ValueError("a JSON object is expected")
            base = PROFILES[body.pop("preset")] if "preset" in body else self.profile
            stall = body.pop("stall_seconds", self.stall_seconds)
            fields = base.as_dict() | body
            profile = LatencyProfile(**fields)
        except (ValueError, KeyError, TypeError) as exc:
            err = {"message": f"bad profile: {exc}", "type": "invalid_request_error"}
            return JSONResponse({"error": err}, status_code=400)
        self.profile = profile
        self.stall_seconds = None if stall is None else float(stall)
        return JSONResponse({"profile": profile.as_dict(), "stall_seconds": self.stall_seconds})

    # --- handlers ---------------------------------------------------------------------

    async def _models(self, request: Request) -> Response:
        model = {"id": self.model, "object": "model", "created": 0, "owned_by": "faqbot-tests"}
        return JSONResponse({"object": "list", "data": [model]})

    async def _fault(self, request: Request, reply: Reply) -> Response | None:
        """The response of a scripted hang or error, shared by every route; None otherwise."""
        if reply.kind == "hang":
            await self._hang(request, reply.hang_seconds)
            err = {"message": "fake hang ended", "type": "server_error", "code": None}
            return JSONResponse({"error": err}, status_code=504, headers=reply.headers)
        if reply.kind == "error":
            return JSONResponse(reply.error_body, status_code=reply.status, headers=reply.headers)
        return None

    async def _chat(self, request: Request) -> Response:
        body = await _json_body(request)
        if body is None:
            err = {"message": "invalid JSON body", "type": "invalid_request_error", "code": None}
            return JSONResponse({"error": err}, status_code=400)
        reply = self._next(body)
        with self._lock:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in request.headers.items()})
        if self.on_request is not None:
            self.on_request(body, reply)
        fault = await self._fault(request, reply)
        if fault is not None:
            return fault
        if reply.kind == "broken" and not body.get("stream"):  # llama-cpp-python: a bare 500
            err = {"message": "", "type": "internal_server_error", "param": None, "code": None}
            return JSONResponse({"error": err}, status_code=500)
        usage = self._usage(body, reply)
        bill = Bill("chat", usage["prompt_tokens"], planned=usage["completion_tokens"])
        with self._lock:
            self.usages.append(usage)
            self.billed.append(bill)  # the prompt is billed once the request is read
        if body.get("stream"):
            return StreamingResponse(
                self._sse(body, reply, usage, bill),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache", **reply.headers},
            )
        completion = self._completion(reply, usage)
        if reply.kind == "torn":
            return StreamingResponse(
                self._cut_json(completion, self._delay(reply)),
                media_type="application/json",
                headers=reply.headers,
            )
        await asyncio.sleep(self._duration(reply))  # as long as the same reply streamed
        bill.finished()
        return JSONResponse(completion, headers=reply.headers)

    async def _embeddings(self, request: Request) -> Response:
        body = await _json_body(request)
        if body is None:
            err = {"message": "invalid JSON body", "type": "invalid_request_error", "code": None}
            return JSONResponse({"error": err}, status_code=400)
        with self._lock:
            reply = self._embedding_queue.popleft() if self._embedding_queue else embeddings()
            self.embedding_requests.append(body)
            self.embedding_headers.append({k.lower(): v for k, v in request.headers.items()})
        if self.on_embedding_request is not None:
            self.on_embedding_request(body, reply)
        fault = await self._fault(request, reply)
        if fault is not None:
            return fault
        if reply.kind not in ("embeddings", "torn"):
            err = {"message": f"fake: a {reply.kind!r} reply was scripted for /v1/embeddings"}
            return JSONResponse({"error": {**err, "type": "server_error"}}, status_code=500)
        texts = _embedding_inputs(body)
        if isinstance(texts, str):
            err = {"message": texts, "type": "invalid_request_error", "param": None, "code": None}
            return JSONResponse({"error": err}, status_code=400, headers=reply.headers)
        result = self._embedding_result(body, texts, reply.embedding_fault)
        with self._lock:  # billed once read, whatever happens to the reply
            self.billed.append(Bill("embeddings", result["usage"]["prompt_tokens"]))
        delay = self.embedding_delay if reply.first_token_delay is None else reply.first_token_delay
        if reply.kind == "torn":
            return StreamingResponse(
                self._cut_json(result, delay), media_type="application/json", headers=reply.headers
            )
        await asyncio.sleep(delay)
        if reply.embedding_fault in ("not_json", "html"):
            media = "text/html" if reply.embedding_fault == "html" else "application/json"
            return Response("<html>upstream error</html>", media_type=media)
        # json.dumps, not JSONResponse: the "nan" fault needs a NaN literal (allow_nan)
        return Response(json.dumps(result), media_type="application/json", headers=reply.headers)

    def _embedding_result(
        self, body: dict[str, Any], texts: list[str], fault: EmbeddingFault | None
    ) -> dict[str, Any]:
        fmt = body.get("encoding_format") or "float"
        dim = body.get("dimensions") or self.embedding_dim
        vectors = [fake_embedding(t, dim) for t in texts]
        if fault == "ragged":
            vectors[-1] = vectors[-1][:-1]
        elif fault == "nan":
            vectors[0][0] = float("nan")
        items = [
            {"object": "embedding", "index": i, "embedding": _encode_vector(v, fmt)}
            for i, v in enumerate(vectors)
        ]
        if fault == "reversed":
            items.reverse()
        elif fault == "count":
            items = items[:-1] if len(items) > 1 else [*items, {**items[0], "index": 1}]
        elif fault == "empty_data":
            items = []
        elif fault == "bad_index":
            items[-1]["index"] = len(items)
        tokens = sum(max(1, round(len(t.split()) * 1.3)) for t in texts)
        result: dict[str, Any] = {
            "object": "list",
            "data": items,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        if fault == "missing_data":
            del result["data"]
        return result

    @staticmethod
    async def _hang(request: Request, seconds: float) -> None:
        """Sleep, but stop early once the client has gone (keeps stop() fast)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            if await request.is_disconnected():
                return
            await asyncio.sleep(min(0.05, left))

    def _delay(self, reply: Reply) -> float:
        delay = reply.first_token_delay
        return self.first_token_delay if delay is None else delay

    def _gap(self, reply: Reply) -> float:
        tps = reply.tokens_per_second
        tps = self.tokens_per_second if tps is None else tps
        return 1.0 / tps if tps else 0.0

    def _arg_fragments(self, reply: Reply, raw: str) -> list[str]:
        n = reply.tool_call_fragments
        return _exact_fragments(raw, n) if n else _fragments(raw)

    def _duration(self, reply: Reply) -> float:
        """Seconds until the last token of `reply` streamed: the pacing of a non-streamed reply."""
        delay, gap = self._delay(reply), self._gap(reply)
        if reply.kind == "tool_calls":
            steps = sum(len(self._arg_fragments(reply, raw)) for _, raw in reply.tool_calls)
        elif reply.kind in ("text", "stall"):
            steps = len(_pieces(reply.text)) - 1
        else:
            steps = 0
        pause = reply.hang_seconds if reply.kind == "stall" else 0.0
        return delay + gap * max(0, steps) + pause

    def _usage(self, body: dict[str, Any], reply: Reply) -> dict[str, int]:
        if reply.usage is not None:
            prompt, completion = reply.usage
        else:
            prompt = _estimate_prompt_tokens(body)
            completion = len(_pieces(reply.text)) if reply.text else 0
            if reply.tool_call_fragments:
                completion += reply.tool_call_fragments * len(reply.tool_calls)
            else:
                completion += sum(max(1, len(n + a) // 4) for n, a in reply.tool_calls)
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
            "system_fingerprint": "fp_fake",
            "choices": choices,
            **extra,
        }
        return f"data: {json.dumps(data)}\n\n"

    async def _sse(
        self, body: dict[str, Any], reply: Reply, usage: dict[str, int], bill: Bill
    ) -> AsyncIterator[str]:
        if reply.kind == "broken":
            raise _Torn("stream broken before any chunk (as llama-cpp-python)")
        cid = f"chatcmpl-{uuid.uuid4().hex}"
        want_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        extra: dict[str, Any] = {"usage": None} if want_usage else {}
        gap = self._gap(reply)

        def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

        if delay := self._delay(reply):
            await asyncio.sleep(delay)
        # token n is due at start + n * gap (an absolute schedule, as a model generates them):
        # sleeping `gap` after each send would add the event loop's lag once per token, so 50
        # concurrent streams ran ~10% slower than the profile while a non-streamed reply (one
        # sleep) did not
        start, sent = asyncio.get_running_loop().time(), 0
        if reply.kind == "empty_choices":
            yield self._chunk(cid, [], **extra)
        else:
            if reply.kind == "tool_calls":
                finish = "tool_calls"
                for i, (name, raw) in enumerate(reply.tool_calls):
                    head = {
                        "index": i,
                        "id": f"call_{i + 1}",
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }
                    delta: dict[str, Any] = {"tool_calls": [head]}
                    if i == 0:
                        delta = {"role": "assistant", "content": None, **delta}
                    yield self._chunk(cid, choice(delta), **extra)
                    for frag in self._arg_fragments(reply, raw):
                        if gap:
                            sent += 1
                            await _until(start + sent * gap)
                        delta = {"tool_calls": [{"index": i, "function": {"arguments": frag}}]}
                        bill.sent()
                        yield self._chunk(cid, choice(delta), **extra)
            else:
                finish = "stop"
                yield self._chunk(cid, choice({"role": "assistant", "content": ""}), **extra)
                for n, piece in enumerate(_pieces(reply.text)):
                    if reply.kind == "torn" and n >= reply.torn_after:
                        break
                    if reply.kind == "stall" and n == reply.torn_after:
                        await asyncio.sleep(reply.hang_seconds)  # cancelled if the client goes
                    if gap and n:
                        await _until(start + n * gap)
                    bill.sent()
                    yield self._chunk(cid, choice({"content": piece}), **extra)
                if reply.kind == "torn":
                    await asyncio.sleep(0.01)  # let the chunks reach the socket first
                    raise _Torn("stream cut on purpose")
            yield self._chunk(cid, choice({}, finish), **extra)
        bill.finished()
        if want_usage:
            yield self._chunk(cid, [], usage=usage)
        yield "data: [DONE]\n\n"

    @staticmethod
    async def _cut_json(completion: dict[str, Any], delay: float) -> AsyncIterator[str]:
        if delay:
            await asyncio.sleep(delay)
        raw = json.dumps(completion)
        yield raw[: len(raw) // 2]
        await asyncio.sleep(0.01)
        raise _Torn("body cut on purpose")

    def _completion(self, reply: Reply, usage: dict[str, int]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
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
            else [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}]
        )
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": choices,
            "usage": usage,
        }

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        """Bind, serve in a daemon thread, and return once connections are accepted."""
        if self._thread is not None and self._thread.is_alive():
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP, not the default 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only
        # on sockets whose proto says TCP. With proto 0 every reply written in two pieces
        # (headers, then body or SSE chunks) waited for the client's delayed ACK: ~40 ms per call.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,  # leave the process's logging configuration alone
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        logging.getLogger("uvicorn.error").addFilter(_QUIET)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="fake-openai", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                server.should_exit = True
                sock.close()
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for its thread (in-flight requests get ~1 s)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(**kw: Any) -> Iterator[FakeOpenAI]:
    """A started `FakeOpenAI(**kw)`, stopped on exit."""
    server = FakeOpenAI(**kw).start()
    try:
        yield server
    finally:
        server.stop()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _log_request(body: dict[str, Any], reply: Reply) -> None:
    what = (
        "tool_calls " + ",".join(n for n, _ in reply.tool_calls)
        if reply.kind == "tool_calls"
        else f"{reply.kind} {reply.text[:60]!r}"
    )
    print(
        f"{time.strftime('%H:%M:%S')} chat.completions model={body.get('model')} "
        f"stream={bool(body.get('stream'))} messages={len(body.get('messages') or [])} "
        f"tools={len(body.get('tools') or [])} -> {what}",
        flush=True,
    )


def _log_embedding_request(body: dict[str, Any], reply: Reply) -> None:
    raw = body.get("input")
    count = len(raw) if isinstance(raw, list) and not all(isinstance(t, int) for t in raw) else 1
    what = reply.embedding_fault or reply.kind
    print(
        f"{time.strftime('%H:%M:%S')} embeddings model={body.get('model')} inputs={count} "
        f"encoding={body.get('encoding_format') or 'float'} -> {what}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the auto-responder server in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Loopback fake OpenAI server (auto-responder)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address only")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--model", default="fake-model")
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="zero",
        help="latency preset (the flags below override its fields)",
    )
    parser.add_argument("--first-token-ms", type=float, default=None)
    parser.add_argument("--tokens-per-second", type=float, default=None)
    parser.add_argument(
        "--answer-tokens", type=int, default=None, help="every text answer's length"
    )
    parser.add_argument("--tool-call-tokens", type=int, default=None, help="tool-call length")
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--mode", choices=MODES, default="openai", help="server behaviour")
    parser.add_argument("--quiet", action="store_true", help="no log line per request")
    args = parser.parse_args(argv)
    if not _is_loopback(args.host):
        parser.error(f"--host must be a loopback address, not {args.host!r}")
    preset = PROFILES[args.profile]
    overrides = {
        "first_token_ms": args.first_token_ms,
        "tokens_per_second": args.tokens_per_second,
        "answer_tokens": args.answer_tokens,
        "tool_call_tokens": args.tool_call_tokens,
    }
    profile = dataclasses.replace(preset, **{k: v for k, v in overrides.items() if v is not None})
    fake = FakeOpenAI(
        model=args.model,
        profile=profile,
        embedding_dim=args.embedding_dim,
        host=args.host,
        port=args.port,
        mode=args.mode,
    )
    if not args.quiet:
        fake.on_request = _log_request
        fake.on_embedding_request = _log_embedding_request
    fake.start()
    print(f"fake OpenAI server at {fake.base_url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
