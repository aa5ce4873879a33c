"""Small API edges (issue 14, item 7) and property tests of input validation and the SSE encoder
(item 3): a refused request is told why in words, HEAD /api/health answers, a 10 MB body is
refused unread; any request body gets 200/422 (never a 500, never a regular expression in the
message); any data survives the SSE encoder through a real SSE parser, with no frame injection.
"""

from __future__ import annotations

import itertools
import json
import re
import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from httpx_sse import EventSource
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from faqbot.answering.factory import build_bot
from faqbot.errors import InputError
from faqbot.knowledge.ids import ENTRY_ID_PATTERN, entry_id
from faqbot.state.conversations import ConversationSigner, ConversationStore
from faqbot.state.ratelimit import RateLimiter
from faqbot.validation import EMPTY_QUESTION, clean_question, too_long
from faqbot.web.app import create_api
from faqbot.web.chat import encode_sse
from faqbot.web.schemas import MAX_BODY_BYTES, MAX_QUESTION_CHARS

ERROR_KEYS = {"error", "detail", "error_code"}
FUZZ = settings(
    max_examples=120,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Signs of a pydantic message that quotes a pattern instead of saying what is wrong.
REGEX_SIGNS = re.compile(r"pattern|\[\^|\\x|\\s|\\u|\^\[")
any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=200)
blank = st.text(
    alphabet=st.sampled_from(list(" \t\n\r\x00\x01\x1f\x7f\x85\x9f\u200b\u200e\u202e\u2066\ufeff")),
    max_size=30,
)


def api_for(make_settings: Any, bot: bool = True, **overrides: Any) -> Any:
    settings = make_settings(**overrides)
    faq_bot = build_bot(settings) if bot else None
    return create_api(lambda: faq_bot, RateLimiter(100_000, 60), settings, ConversationStore())


@pytest.fixture
def client(make_settings: Any) -> Iterator[TestClient]:
    with TestClient(api_for(make_settings), raise_server_exceptions=False) as c:
        yield c


def in_words(resp: httpx.Response) -> str:
    """The 422's detail, checked to be in the error shape and free of regular expressions."""
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert set(body) == ERROR_KEYS
    assert body["error_code"] in {"VALIDATION_ERROR", "INVALID_INPUT"}
    detail = str(body["detail"])
    assert not REGEX_SIGNS.search(detail), detail
    return detail


# --- A refused request is told why, in words ------------------------------------------------------


@pytest.mark.parametrize("question", ["   ", "\u200b", "", "\x00\t", "\u202e\u2066 \ufeff"])
@pytest.mark.parametrize("path", ["/chat", "/chat/stream"])
def test_a_blank_question_is_told_so_in_words(client: TestClient, question: str, path: str) -> None:
    assert in_words(client.post(path, json={"question": question})) == EMPTY_QUESTION


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"question": "x" * (MAX_QUESTION_CHARS + 1)}, "Your message is too long (1,001 char"),
        ({"question": 42}, "Please send your question as text."),
        ({}, "Please send a question"),
        ({"question": "hi", "conversation_id": "../etc/passwd"}, "conversation_id may contain"),
        ({"question": "hi", "conversation_token": "a b"}, "conversation_token may contain"),
    ],
)
def test_other_refusals_are_in_words_too(
    client: TestClient, payload: dict[str, Any], words: str
) -> None:
    assert in_words(client.post("/chat", json=payload)).startswith(words)


def test_half_an_emoji_is_refused_in_words(client: TestClient) -> None:
    body = b'{"question": "refund policy \\ud83d please"}'
    resp = client.post("/chat", content=body, headers={"Content-Type": "application/json"})
    assert "broken characters" in in_words(resp)


# --- HEAD /health (load balancers) ----------------------------------------------------------------


def test_head_health_answers_200_without_a_body(client: TestClient) -> None:
    resp = client.head("/health")
    assert resp.status_code == 200
    assert resp.content == b""
    assert client.get("/health").status_code == 200  # and GET is unchanged


def test_head_health_is_503_while_no_faq_is_loaded(make_settings: Any) -> None:
    with TestClient(api_for(make_settings, bot=False)) as c:
        assert c.head("/health").status_code == c.get("/health").status_code == 503


def test_head_health_is_not_in_the_schema(client: TestClient) -> None:
    assert set(client.get("/openapi.json").json()["paths"]["/health"]) == {"get"}


# --- A 10 MB JSON body is refused before it is read -----------------------------------------------


async def test_a_10_mb_json_body_is_refused_unread(make_settings: Any) -> None:
    """Content-Length says 10 MB: 413 before a single body chunk is taken from the server."""
    api = api_for(make_settings)
    body = json.dumps({"question": "x" * (10 * 1024 * 1024)}).encode()
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    taken = 0

    async def receive() -> dict[str, Any]:
        nonlocal taken
        taken += 1
        return {"type": "http.request", "body": chunks[taken - 1], "more_body": taken < len(chunks)}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/chat", "raw_path": b"/chat", "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
        "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())
        ],
    }  # fmt: skip
    await api(scope, receive, send)
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["detail"] == (
        f"The request body must be at most {MAX_BODY_BYTES} bytes."
    )
    assert taken == 0


# --- Properties: input validation -----------------------------------------------------------------


@FUZZ
@given(text=any_text, max_chars=st.integers(1, 300))
@example(text="a\ud800b", max_chars=10)
@example(text="\u0301", max_chars=1)
def test_clean_question_gives_clean_text_or_an_input_error(text: str, max_chars: int) -> None:
    try:
        cleaned = clean_question(text, max_chars)
    except InputError as exc:
        error: InputError | None = exc
    else:
        error = None
    if error is not None:
        assert error.user_message in {EMPTY_QUESTION, too_long(None, max_chars)} or (
            error.user_message.startswith("Your message is too long (")
        )
        return
    assert cleaned
    assert cleaned == cleaned.strip()
    assert len(cleaned) <= max_chars
    assert unicodedata.is_normalized("NFC", cleaned)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\ufeff]", cleaned)
    cleaned.encode("utf-8")  # storable and sendable as UTF-8
    assert clean_question(cleaned, max_chars) == cleaned  # idempotent


@FUZZ
@given(text=blank)
def test_invisible_only_input_is_empty(text: str) -> None:
    with pytest.raises(InputError) as info:
        clean_question(text, 100)
    assert info.value.user_message == EMPTY_QUESTION


@FUZZ
@given(value=st.one_of(st.none(), st.integers(), st.floats(), st.binary(), st.lists(st.text())))
def test_a_non_string_question_is_an_input_error(value: Any) -> None:
    with pytest.raises(InputError):
        clean_question(value, 100)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
ids = st.one_of(st.none(), any_text, st.from_regex(r"[A-Za-z0-9_-]{1,70}", fullmatch=True))
tokens = st.one_of(st.none(), any_text, st.from_regex(r"v1\.[A-Za-z0-9_.-]{0,130}", fullmatch=True))


@FUZZ
@given(
    question=st.one_of(any_text, json_values),
    conversation_id=ids,
    conversation_token=tokens,
    extra=st.dictionaries(st.text(max_size=10), json_values, max_size=2),
    path=st.sampled_from(["/chat", "/chat/stream"]),
)
def test_any_request_body_gets_an_answer_or_a_422_in_words(
    client: TestClient,
    question: Any,
    conversation_id: str | None,
    conversation_token: str | None,
    extra: dict[str, Any],
    path: str,
) -> None:
    body = {
        **extra,
        "question": question,
        "conversation_id": conversation_id,
        "conversation_token": conversation_token,
    }
    raw = json.dumps(body).encode()  # lone surrogates travel as \ud800 escapes
    resp = client.post(path, content=raw, headers={"Content-Type": "application/json"})
    if resp.status_code == 413:
        assert len(raw) > MAX_BODY_BYTES
        return
    if resp.status_code == 422:
        in_words(resp)
        return
    assert resp.status_code == 200, resp.text
    if path == "/chat":
        answer = resp.json()
        # a forged or unknown id never continues a conversation: a new one is started
        assert answer["conversation_id"] != conversation_id
    else:
        names = [sse.event for sse in EventSource(resp).iter_sse()]
        assert names[-1] == "done"


@FUZZ
@given(entry_id=any_text.filter(lambda s: s not in {"", ".", ".."}))
@example(entry_id="sales-what-is-your-refund-policy")
def test_any_faq_entry_id_is_found_or_404(client: TestClient, entry_id: str) -> None:
    raw = entry_id.encode("utf-8", "surrogatepass")  # any bytes a client may put in a URL
    resp = client.get("/faq/" + quote(raw, safe=""))
    assert resp.status_code in {200, 404, 422}, resp.text
    assert set(resp.json()) >= ({"id"} if resp.status_code == 200 else ERROR_KEYS)


# --- Properties: the SSE encoder ------------------------------------------------------------------

EVENTS = ["route", "fallback", "token", "sources", "suggestions", "done", "error"]
nasty_text = st.lists(
    st.one_of(
        st.characters(exclude_categories=()),
        st.sampled_from(["\n", "\r", "\r\n", "\n\n", "data: ", "event: x", ":", "\u2028", "\x85"]),
    ),
    max_size=40,
).map("".join)
sse_data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | nasty_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4),
    max_leaves=10,
)


def parse_sse(chunks: list[bytes]) -> list[tuple[str, Any]]:
    """The events a real SSE client (httpx-sse) reads from these bytes, however split."""
    response = httpx.Response(
        200, headers={"Content-Type": "text/event-stream"}, content=iter(chunks)
    )
    return [(sse.event, json.loads(sse.data)) for sse in EventSource(response).iter_sse()]


@FUZZ
@given(
    frames=st.lists(st.tuples(st.sampled_from(EVENTS), sse_data), min_size=1, max_size=5),
    cuts=st.lists(st.integers(min_value=0), max_size=8),
)
@example(frames=[("token", {"text": "a\ud83d"}), ("token", {"text": "\ude00b"})], cuts=[])
@example(frames=[("token", {"text": "x\n\nevent: done\ndata: {}\n\n"})], cuts=[3])
def test_any_data_round_trips_through_an_sse_parser(
    frames: list[tuple[str, Any]], cuts: list[int]
) -> None:
    stream = "".join(encode_sse(name, data) for name, data in frames).encode("utf-8")
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(points) if b > a]
    assert parse_sse(chunks) == frames


@FUZZ
@given(name=st.sampled_from(EVENTS), data=sse_data)
def test_one_frame_is_one_event_line_and_one_data_line(name: str, data: Any) -> None:
    frame = encode_sse(name, data)
    assert frame.endswith("\n\n")
    lines = re.split(r"\r\n|\r|\n", frame[:-2])
    assert lines[0] == f"event: {name}"
    assert len(lines) == 2
    assert lines[1].startswith("data: ")


# --- Properties: conversation tokens and entry ids ------------------------------------------------


@FUZZ
@given(conversation_id=any_text, other=any_text, token=st.none() | any_text, secret=st.binary())
@example(conversation_id="c1", other="c2", token="v1.\u00e9\u00e9", secret=b"")
def test_a_token_verifies_for_its_own_id_only(
    conversation_id: str, other: str, token: str | None, secret: bytes
) -> None:
    signer = ConversationSigner(secret or None)
    issued = signer.token(conversation_id)
    assert re.fullmatch(r"v1\.[A-Za-z0-9_-]{43}", issued)
    assert signer.verify(conversation_id, issued) is True
    assert signer.verify(other, issued) is (other == conversation_id)
    assert signer.verify(conversation_id, token) is (token == issued)  # never raises
    tampered = issued[:-1] + ("A" if issued[-1] != "A" else "B")
    assert signer.verify(conversation_id, tampered) is False
    assert ConversationSigner(b"another secret").verify(conversation_id, issued) is False


@FUZZ
@given(
    category=st.from_regex(r"[a-z][a-z0-9_]{0,39}", fullmatch=True),
    question=st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=300),
)
def test_generated_entry_ids_are_valid_ids(category: str, question: str) -> None:
    eid = entry_id(category, question)
    assert re.match(ENTRY_ID_PATTERN, eid), eid
    assert eid.startswith(category + "-")
    assert entry_id(category, question) == eid  # stable
