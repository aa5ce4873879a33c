"""The API's request and response models, the ERRORS table, the question and body limits."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from faqbot.answering.events import Outcome
from faqbot.validation import EMPTY_QUESTION

# A question must contain at least one visible character: blanks, control, zero-width and bidi
# characters alone are rejected (faqbot.validation strips them). Same meaning in Python's `re`,
# pydantic's Rust regex and ECMA-262, checked over every code point in tests/test_api.py.
VISIBLE_CHAR = r"[^\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
MAX_QUESTION_CHARS = 1000  # the API's hard cap; the MAX_QUESTION_CHARS setting may only lower it
# Request bodies are cut off here before parsing (faqbot.web.limits). The largest valid
# ChatRequest is about 12 KB: 1,000 characters a client JSON-escapes as surrogate pairs
# ("\ud83d\ude00", 12 bytes each), a 64-character conversation id, a 128-character
# conversation token and the keys (tests/test_body_limit.py sends it).
MAX_BODY_BYTES = 16 * 1024


# A failed field check, said in words: pydantic's own messages quote the regular expressions
# ("String should match pattern '[^\s\x00-...'"). (field, pydantic error type) -> message.
FIELD_MESSAGES: dict[tuple[str, str], str] = {
    ("question", "string_too_short"): EMPTY_QUESTION,
    ("question", "string_pattern_mismatch"): EMPTY_QUESTION,
    ("question", "string_type"): "Please send your question as text.",
    ("question", "string_unicode"): "Your message has broken characters (half of an emoji or "
    "a bad escape in the JSON); please type it again.",
    ("question", "missing"): "Please send a question (the `question` field is missing).",
    ("conversation_id", "string_pattern_mismatch"): "conversation_id may contain only letters, "
    "digits, '-' and '_': send back the one an earlier answer gave you.",
    ("conversation_token", "string_pattern_mismatch"): "conversation_token may contain only "
    "letters, digits, '.', '-' and '_': send back the one an earlier answer gave you.",
}
PATTERN_MISMATCH = "contains characters that are not allowed"  # any other field


class ChatRequest(BaseModel):
    question: str = Field(
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        pattern=VISIBLE_CHAR,
        description="The user's question (at least one visible character)",
    )
    conversation_id: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Continue a conversation (follow-ups): the `conversation_id` of an earlier "
        "answer, with its `conversation_token`; omit to start a new one",
    )
    conversation_token: str | None = Field(
        default=None,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The `conversation_token` handed out with the conversation's answers. "
        "Without it (or with a wrong one) the question starts a new conversation",
    )


class SourceOut(BaseModel):
    id: str
    category: str
    question: str
    score: float
    url: str


class ChatResponse(BaseModel):
    answer: str
    category: str | None
    confidence: float = Field(ge=0, le=1)
    conversation_id: str = Field(
        description="Send it back, with `conversation_token`, to ask a follow-up; a new id "
        "means a new conversation was started"
    )
    conversation_token: str = Field(
        description="Proves the conversation is yours: send it with `conversation_id` on "
        "follow-ups; keep it private (anyone holding both continues the conversation)"
    )
    processing_time: float
    sources: list[SourceOut]
    fallback: bool
    fallback_reason: str | None = Field(
        default=None,
        description="Why the answer is offline although an LLM is configured: an LLM error code "
        "(LLM_TIMEOUT, LLM_UNAVAILABLE, ...), circuit_open, or a spent token budget "
        "(budget_conversation, budget_client, budget_deployment); null when not a fallback",
    )
    fallback_notice: str | None = Field(
        default=None, description="With a fallback: the sentence to show the user about it"
    )
    refused: bool = Field(description="Same as outcome == 'refused' (kept for compatibility)")
    outcome: Outcome = Field(
        description="answered: `answer` answers the question; suggested: retrieval was unsure, "
        "`suggestions` lists the entries the user may have meant (fetch one at its `url`); "
        "refused: the FAQ does not cover the question"
    )
    suggestions: list[SourceOut] = Field(
        default_factory=list, description="With outcome 'suggested': 2-3 entries, best first"
    )
    related: list[SourceOut] = Field(
        default_factory=list,
        description="With an answer: up to 3 related questions to offer next (the entry's "
        "`related:` list, else the nearest entries); ask one as a follow-up in this conversation",
    )
    support_contact: str | None = Field(
        default=None, description="With outcome 'refused': who to ask instead (if configured)"
    )
    mode: Literal["llm", "offline"]
    answer_id: str | None = Field(
        default=None,
        description="This answer's id, for POST /api/feedback (null when persistence is off "
        "or the turn could not be stored)",
    )


class FeedbackRequest(BaseModel):
    answer_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The `answer_id` of an answer (API), or the answer message's id (chat UI)",
    )
    value: Literal[1, -1] = Field(description="1 = thumbs up, -1 = thumbs down")
    # 1,000 characters: the body stays under MAX_BODY_BYTES even fully JSON-escaped
    comment: str | None = Field(default=None, max_length=1000, description="Optional comment")


class FeedbackResponse(BaseModel):
    feedback_id: str
    answer_id: str
    value: Literal[1, -1]


class ErrorResponse(BaseModel):
    error: str
    detail: str | None = None
    error_code: str


class CategoryOut(BaseModel):
    name: str
    entries: int


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    mode: Literal["llm", "offline"]
    model: str | None
    ready: bool = Field(
        description="ready for traffic (as /health/ready): FAQ loaded, configured stores reachable"
    )
    not_ready: list[str] = Field(default_factory=list, description="why not ready, if not")
    knowledge_version: str
    knowledge: dict[str, Any] = Field(
        default_factory=dict,
        description="the FAQ on disk: state (ok | settling | rejected), problems (file:line), "
        "serving_version (the last good version still serving), categories settling",
    )
    categories: list[CategoryOut]
    circuit_breaker: dict[str, Any]
    cache: dict[str, Any] = Field(
        description="hits, shared_hits (served from Redis), misses, size; backend (memory | "
        "redis), whether the shared store answers now, and why not",
    )
    llm: dict[str, Any] | None = None
    llm_capabilities: dict[str, Any] | None = Field(
        default=None,
        description="LLM mode: what this process found the endpoint accepts: tool_choice (the "
        "form the router uses: required | named | auto, null before the first router call or "
        "when every form was refused), refused (forms refused, re-checked hourly), "
        "replies_without_tool_call (a server that ignores tool_choice; retrieval routed those)",
    )
    retrieval: dict[str, Any] = Field(
        default_factory=dict,
        description="ranking now serving (hybrid | lexical) and the embedder's state/progress",
    )
    rate_limit: dict[str, Any] = Field(
        default_factory=dict,
        description="backend (memory | redis), whether the shared store counts now, and why not",
    )
    spend: dict[str, Any] = Field(
        default_factory=dict,
        description="token budgets: today's (UTC) deployment tokens, whether the deployment "
        "budget is reached, the limits (0 = none), where they are counted and why not shared",
    )
    persistence: dict[str, Any] | None = Field(
        default=None,
        description="null when off; else backend (sqlite | postgresql), state (ok | failing: "
        "writes do not commit now), failed_writes (since start, every writer), writes (committed, "
        "failed, failing_since_last_success, last_error, last_error_age_s), conversation_key "
        "(where conversation tokens are signed from: setting, file in DATA_DIR, or memory: not "
        "saved, tokens end at a restart), "
        "failed_statements and last_error (Chainlit's data layer)",
    )
    uptime_s: float
    timestamp: str


class FaqEntryOut(BaseModel):
    id: str
    category: str
    question: str
    answer: str
    alternate_questions: list[str]
    keywords: list[str]


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed request body"},
    413: {"model": ErrorResponse, "description": f"Request body over {MAX_BODY_BYTES} bytes"},
    422: {"model": ErrorResponse, "description": "Invalid request"},
    429: {"model": ErrorResponse, "description": "Rate limited; see Retry-After"},
    500: {"model": ErrorResponse, "description": "Internal error (no details leaked)"},
    503: {"model": ErrorResponse, "description": "No knowledge base can answer right now"},
}
