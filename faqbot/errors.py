"""The faqbot exception tree. Every error carries a user-safe message and a stable code.

FaqBotError                 base; `user_message` is safe to show, `code` is stable
├── ConfigError             invalid settings (names the variable)
├── KnowledgeError          the FAQ folder cannot be used
│   └── FaqFormatError      a FAQ file is malformed (names file and line)
├── InputError              the user's message is empty, too long or unusable
├── RateLimitedError        the client exceeded its quota (carries retry_after)
│   └── TooManyStreamsError the client already has MAX_STREAMS_PER_CLIENT answers in progress
└── LLMError                the language model failed; the bot falls back to retrieval
    ├── LLMTimeoutError     no answer within the time budget
    ├── LLMRateLimitError   the provider said 429 (with its Retry-After as retry_after)
    ├── LLMAuthError        the provider rejected the credentials (operator must act)
    ├── LLMUnavailableError 5xx (any Retry-After as retry_after), connection error (also one
    │                       dropped mid-stream), open circuit
    └── LLMProtocolError    a stream ended without a finish reason, malformed tool call,
                            empty choices
EmbeddingError (a FaqBotError) the embedder failed; retrieval continues lexical-only
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class FaqBotError(Exception):
    """Base of all faqbot errors."""

    code = "FAQBOT_ERROR"
    user_message = "Something went wrong. Please try again."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.user_message)


class ConfigError(FaqBotError):
    """Invalid configuration; the message names the offending variable(s)."""

    code = "CONFIG_ERROR"


class KnowledgeError(FaqBotError):
    """The FAQ folder is missing, empty or inconsistent."""

    code = "KNOWLEDGE_ERROR"


@dataclass(frozen=True, slots=True)
class FaqProblem:
    """One problem found in a FAQ file."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class FaqFormatError(KnowledgeError):
    """One or more FAQ files are malformed; `problems` lists each with file and line."""

    code = "FAQ_FORMAT_ERROR"

    def __init__(self, problems: list[FaqProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class InputError(FaqBotError):
    """The user's message cannot be answered as given."""

    code = "INVALID_INPUT"

    def __init__(self, message: str) -> None:
        self.user_message = message
        super().__init__(message)


class RateLimitedError(FaqBotError):
    """The client sent too many messages; retry after `retry_after` seconds."""

    code = "RATE_LIMITED"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        self.user_message = (
            "You're sending messages too quickly. "
            f"Please slow down and try again in {retry_after} s."
        )
        super().__init__(self.user_message)


class TooManyStreamsError(RateLimitedError):
    """The client already has `limit` answers in progress (API: 429; chat: a polite reply)."""

    code = "TOO_MANY_STREAMS"

    def __init__(self, limit: int, retry_after: int = 2) -> None:
        super().__init__(retry_after)
        answers = "answer" if limit == 1 else "answers"
        self.user_message = (
            f"You already have {limit} {answers} in progress. "
            "Please wait until one has finished, then ask again."
        )
        self.args = (self.user_message,)


class LLMError(FaqBotError):
    """The language model failed; callers fall back to offline retrieval.

    `retry_after` is the provider's Retry-After in seconds when it sent one (429, 503): the bot
    keeps its circuit open that long rather than asking again (or making a user wait) sooner.
    """

    code = "LLM_ERROR"
    user_message = "The AI service is unavailable right now."

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LLMTimeoutError(LLMError):
    code = "LLM_TIMEOUT"


class LLMRateLimitError(LLMError):
    code = "LLM_RATE_LIMITED"


class LLMAuthError(LLMError):
    code = "LLM_AUTH"
    user_message = "The AI service is not configured correctly. An operator has been notified."


class LLMUnavailableError(LLMError):
    code = "LLM_UNAVAILABLE"


class LLMProtocolError(LLMError):
    code = "LLM_PROTOCOL"


class LLMOutputRejected(LLMProtocolError):
    """The provider answered, but the model's tool call broke its schema (an unknown tool,
    smuggled arguments: typically an injected prompt at work). Refused and answered offline,
    yet no verdict on the provider: counting it would let anyone who can steer the model
    switch every visitor to offline answers by opening the circuit breaker."""

    code = "LLM_OUTPUT_REJECTED"


class EmbeddingError(FaqBotError):
    """The embedder failed (endpoint down, bad response, model missing): retrieval goes on
    lexical-only; users never see this. The message (for the log) may quote the provider's
    error body; `summary`, what /api/health may show anyone, never does."""

    code = "EMBEDDING_ERROR"

    def __init__(self, message: str, *, summary: str | None = None) -> None:
        super().__init__(message)
        self.summary = summary or message
