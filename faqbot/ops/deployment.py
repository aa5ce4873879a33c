"""`python -m faqbot check --deployment`: settings that are unsafe on a public deployment.

Each rule is a small function of the settings returning one `DeploymentWarning` (the variable,
why it matters, the fix) or None. The defaults suit a developer's machine, not the internet, so
a fresh clone gets warnings: the check is the list of what an operator must decide.

"Behind a reverse proxy" is inferred, since faqbot cannot see its proxy: faqbot serves plain
HTTP, so an `https://` origin in CORS_ORIGINS (a widget on an HTTPS page can only reach an HTTPS
server) means a proxy terminates TLS in front of it; FORWARDED_ALLOW_IPS being set says so too.
With HOST on loopback the proxy runs on the same machine, which uvicorn trusts by default.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from faqbot.config import Settings

MAX_REQUESTS_PER_MINUTE = 120.0  # per client; a person asks a few questions a minute
MAX_SAFE_QUESTION_CHARS = 4000  # longer questions cost tokens and carry longer injections


@dataclass(frozen=True, slots=True)
class DeploymentWarning:
    """One unsafe setting: which variable, why it matters, how to fix it."""

    variable: str
    why: str
    fix: str

    def line(self) -> str:
        return f"{self.variable}: {self.why}. Fix: {self.fix}."


Rule = Callable[[Settings], DeploymentWarning | None]


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (brackets allowed); a name other than localhost is not."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _origin_host(origin: str) -> str:
    return urlsplit(origin.strip()).hostname or ""


def behind_tls_proxy(settings: Settings) -> bool:
    """Does a reverse proxy stand in front? (See the module docstring for why this inference.)"""
    https = any(o.strip().lower().startswith("https://") for o in settings.cors_origins)
    return https or settings.forwarded_allow_ips is not None


def open_cors(settings: Settings) -> DeploymentWarning | None:
    if "*" not in (o.strip() for o in settings.cors_origins):
        return None
    return DeploymentWarning(
        "CORS_ORIGINS",
        'contains "*": any web site can embed the widget, open its websocket and call /api '
        "with its visitors' browsers, spending your LLM budget",
        "list only the origins of the sites that embed the widget, e.g. CORS_ORIGINS="
        '["https://www.example.com"]',
    )


def development_origins(settings: Settings) -> DeploymentWarning | None:
    origins = [o for o in settings.cors_origins if o.strip() and o.strip() != "*"]
    if not origins or not all(is_loopback_host(_origin_host(o)) for o in origins):
        return None
    return DeploymentWarning(
        "CORS_ORIGINS",
        f"allows only local development origins ({', '.join(origins)}): no allowlist for a "
        "public site, and pages on a visitor's own localhost may call the bot",
        "list the https origins of the sites that embed the widget, or CORS_ORIGINS=[] when "
        "none does",
    )


def weak_rate_limit(settings: Settings) -> DeploymentWarning | None:
    per_minute = settings.rate_limit_requests * 60 / settings.rate_limit_window
    if per_minute <= MAX_REQUESTS_PER_MINUTE:
        return None
    return DeploymentWarning(
        "RATE_LIMIT_REQUESTS",
        f"{settings.rate_limit_requests} per {settings.rate_limit_window} s "
        f"({per_minute:.0f}/min per client) is hardly a limit: one client can flood the bot "
        "and its LLM",
        f"keep it at or under {MAX_REQUESTS_PER_MINUTE:.0f} per minute, e.g. "
        "RATE_LIMIT_REQUESTS=60 with RATE_LIMIT_WINDOW=60 (the default)",
    )


def open_analytics(settings: Settings) -> DeploymentWarning | None:
    if not settings.analytics_enabled or settings.auth_enabled or settings.admin_token:
        return None
    return DeploymentWarning(
        "ANALYTICS_ENABLED",
        "is on with sign-in off and no ADMIN_TOKEN: /admin and /api/analytics (visitors' "
        "questions, unanswered ones included) are open to anyone who reaches the server",
        "turn on sign-in (AUTH_USERS, AUTH_HEADER or a Chainlit OAuth provider) and name the "
        "admins in ADMIN_USERS, or set ADMIN_TOKEN (16+ random characters), or "
        "ANALYTICS_ENABLED=false",
    )


def exposed_auth_header(settings: Settings) -> DeploymentWarning | None:
    """Always said when AUTH_HEADER is set: only the proxy's overwriting makes it safe, and
    faqbot cannot see whether it does (a proxy on loopback that passes the client's header
    through lets anyone sign in as anyone, as the seed's nginx config did)."""
    if settings.auth_header is None:
        return None
    exposed = (
        ""
        if is_loopback_host(settings.host)
        else f"; with HOST={settings.host}, whoever reaches the port without the proxy can "
        "send it too"
    )
    return DeploymentWarning(
        "AUTH_HEADER",
        f"trusts the {settings.auth_header} request header as the signed-in user: unless the "
        "proxy overwrites it on every request, a client that sends it can sign in as anyone, "
        f"an admin included{exposed}",
        f"have the proxy set {settings.auth_header} from its own authentication on every "
        f'request, or clear it (nginx: proxy_set_header {settings.auth_header} "";, as '
        "deploy/nginx/faqbot.conf ships), and make the port reachable from the proxy only "
        "(HOST=127.0.0.1 with a local proxy, or a private network)",
    )


def missing_auth_secret(settings: Settings) -> DeploymentWarning | None:
    """(A weak CHAINLIT_AUTH_SECRET never gets here: the settings refuse it.)"""
    if not settings.auth_enabled or settings.chainlit_auth_secret is not None:
        return None
    return DeploymentWarning(
        "CHAINLIT_AUTH_SECRET",
        "is unset while sign-in is on: the secret kept in DATA_DIR/chainlit-auth.secret "
        "serves one instance only",
        "set the same 32+ random characters on every replica (`chainlit create-secret`)",
    )


def debug_mode(settings: Settings) -> DeploymentWarning | None:
    if not settings.debug:
        return None
    return DeploymentWarning(
        "DEBUG",
        "is on: Chainlit logs every socket event (visitors' messages included) at debug level",
        "DEBUG=false",
    )


def debug_logs(settings: Settings) -> DeploymentWarning | None:
    if settings.log_level != "DEBUG":
        return None
    return DeploymentWarning(
        "LOG_LEVEL",
        "is DEBUG: the logs carry request details and visitors' text, and grow fast",
        "LOG_LEVEL=INFO",
    )


def code_reload(settings: Settings) -> DeploymentWarning | None:
    if not settings.reload:
        return None
    return DeploymentWarning(
        "RELOAD",
        "is on: a development mode that watches the code and restarts on changes",
        "RELOAD=false",
    )


def any_forwarder(settings: Settings) -> DeploymentWarning | None:
    allowed = [p.strip() for p in (settings.forwarded_allow_ips or "").split(",")]
    if "*" not in allowed or is_loopback_host(settings.host):
        return None
    return DeploymentWarning(
        "FORWARDED_ALLOW_IPS",
        f'is "*" with HOST={settings.host}: whoever reaches the port directly sets their own '
        "X-Forwarded-For address and escapes per-client rate limits and budgets",
        "set it to the proxy's address or network (e.g. FORWARDED_ALLOW_IPS=10.0.0.5), or make "
        "the port reachable from the proxy only",
    )


def untrusted_proxy(settings: Settings) -> DeploymentWarning | None:
    if settings.forwarded_allow_ips is not None or is_loopback_host(settings.host):
        return None
    if not behind_tls_proxy(settings):
        return None
    return DeploymentWarning(
        "FORWARDED_ALLOW_IPS",
        f"is unset while an https:// origin in CORS_ORIGINS means a TLS proxy in front and "
        f"HOST={settings.host} means it is on another host: uvicorn trusts X-Forwarded-For "
        "from loopback only, so every visitor gets the proxy's address (one shared rate-limit "
        "bucket and budget for all)",
        "set FORWARDED_ALLOW_IPS to the proxy's address or network (e.g. 10.0.0.5 or "
        "10.0.0.0/24), or run the proxy on this machine with HOST=127.0.0.1",
    )


def shared_secret(settings: Settings) -> DeploymentWarning | None:
    if not settings.redis_url or settings.conversation_secret is not None:
        return None
    return DeploymentWarning(
        "CONVERSATION_SECRET",
        "is unset while REDIS_URL says several replicas: each replica signs conversation "
        "tokens with its own random secret, so follow-ups fail on the others and after every "
        "restart",
        "set the same random value (16+ characters) on every replica, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(32))'",
    )


def _cleartext_url(url: str | None) -> bool:
    if not url:
        return False
    parts = urlsplit(url.strip())
    return parts.scheme.lower() == "http" and not is_loopback_host(parts.hostname or "")


def cleartext_llm(settings: Settings) -> DeploymentWarning | None:
    if not settings.llm_enabled or not _cleartext_url(settings.openai_base_url):
        return None
    return DeploymentWarning(
        "OPENAI_BASE_URL",
        f"is plain http to another host ({urlsplit(str(settings.openai_base_url)).hostname}): "
        "the API key, the FAQ and every question cross the network unencrypted",
        "use an https:// endpoint, or a loopback address / private tunnel to the model server",
    )


def cleartext_embeddings(settings: Settings) -> DeploymentWarning | None:
    if settings.embeddings != "openai" or not _cleartext_url(settings.embeddings_base_url):
        return None
    return DeploymentWarning(
        "EMBEDDINGS_BASE_URL",
        f"is plain http to another host ({urlsplit(str(settings.embeddings_base_url)).hostname})"
        ": questions (and any key) cross the network unencrypted",
        "use an https:// endpoint, or a loopback address / private tunnel",
    )


def no_deployment_budget(settings: Settings) -> DeploymentWarning | None:
    if not settings.llm_enabled or settings.spend_deployment_daily_tokens > 0:
        return None
    return DeploymentWarning(
        "SPEND_DEPLOYMENT_DAILY_TOKENS",
        "is 0 (no limit) with an LLM key set: nothing caps what all visitors together spend "
        "per day (many clients, or one with many addresses)",
        "set the most tokens a day you accept paying for (e.g. 2000000, about USD 0.40 with "
        "gpt-4o-mini), and a hard limit in your provider's dashboard",
    )


def no_client_budget(settings: Settings) -> DeploymentWarning | None:
    if not settings.llm_enabled or settings.spend_client_daily_tokens > 0:
        return None
    return DeploymentWarning(
        "SPEND_CLIENT_DAILY_TOKENS",
        "is 0 (no limit) with an LLM key set: one client may spend the whole day's budget",
        "set a per-client daily budget, e.g. SPEND_CLIENT_DAILY_TOKENS=100000 (the default)",
    )


def no_conversation_budget(settings: Settings) -> DeploymentWarning | None:
    if not settings.llm_enabled or settings.spend_conversation_tokens > 0:
        return None
    return DeploymentWarning(
        "SPEND_CONVERSATION_TOKENS",
        "is 0 (no limit) with an LLM key set: one conversation may run up tokens without end",
        "set a per-conversation budget, e.g. SPEND_CONVERSATION_TOKENS=20000 (the default)",
    )


def unbounded_streams(settings: Settings) -> DeploymentWarning | None:
    if settings.max_streams_per_client > 0:
        return None
    return DeploymentWarning(
        "MAX_STREAMS_PER_CLIENT",
        "is 0 (no cap): one client may hold any number of answers in progress at once",
        "MAX_STREAMS_PER_CLIENT=3 (the default)",
    )


def long_questions(settings: Settings) -> DeploymentWarning | None:
    if settings.max_question_chars <= MAX_SAFE_QUESTION_CHARS:
        return None
    return DeploymentWarning(
        "MAX_QUESTION_CHARS",
        f"is {settings.max_question_chars}: every question may cost that much prompt and "
        "carry that long an injection attempt",
        f"keep it at or under {MAX_SAFE_QUESTION_CHARS} (default 1000)",
    )


RULES: tuple[Rule, ...] = (
    open_cors,
    development_origins,
    weak_rate_limit,
    no_deployment_budget,
    no_client_budget,
    no_conversation_budget,
    unbounded_streams,
    open_analytics,
    exposed_auth_header,
    missing_auth_secret,
    debug_mode,
    debug_logs,
    code_reload,
    any_forwarder,
    untrusted_proxy,
    shared_secret,
    cleartext_llm,
    cleartext_embeddings,
    long_questions,
)


def check_deployment(settings: Settings) -> list[DeploymentWarning]:
    """Every rule's warning, in rule order; empty when nothing unsafe stands."""
    return [w for rule in RULES if (w := rule(settings)) is not None]
