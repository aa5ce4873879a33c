"""A stable CHAINLIT_AUTH_SECRET when sign-in is on and none is set.

Chainlit refuses to start with sign-in on and no secret, and a secret made anew at every start
(the old README example) signs everyone out at each restart. Like the conversation key, one is
made once, kept in DATA_DIR (owner-only, written whole or not at all) and exported into the
environment, where Chainlit reads it (`chainlit.auth.jwt.get_jwt_secret`) after loading the app.
Replicas must still share one: set CHAINLIT_AUTH_SECRET on each.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from faqbot.config import Settings
from faqbot.logs import get_logger

log = get_logger("faqbot.ops")

ENV_NAME = "CHAINLIT_AUTH_SECRET"
SECRET_FILE = "chainlit-auth.secret"  # noqa: S105 - a file name, not a secret
MIN_CHARS = 32  # as the settings ask of a configured one


def sign_in_configured(settings: Settings) -> bool:
    """Password or header sign-in, or a Chainlit OAuth provider (OAUTH_<NAME>_CLIENT_ID)."""
    oauth = any(k.startswith("OAUTH_") and k.endswith("_CLIENT_ID") for k in os.environ)
    return settings.auth_enabled or oauth


def ensure_auth_secret(settings: Settings) -> Path | None:
    """Export the secret kept in DATA_DIR when sign-in is on and none is set; returns its file.

    Must run before Chainlit checks for it (its `run` does, right after loading the app module).
    A DATA_DIR that cannot hold it (read-only, full) leaves a secret in memory, with an error:
    sessions then end at a restart.
    """
    if os.environ.get(ENV_NAME) or not sign_in_configured(settings):
        return None
    path = Path(settings.data_dir) / SECRET_FILE
    try:
        secret = _load_or_save(path)
    except OSError as exc:
        log.error("auth.secret_not_saved", path=str(path), error=type(exc).__name__)
        os.environ[ENV_NAME] = secrets.token_urlsafe(48)
        return None
    os.environ[ENV_NAME] = secret
    log.info("auth.secret_from_data_dir", path=str(path))  # the path only, never the secret
    return path


def _load_or_save(path: Path) -> str:
    """The secret in `path`, else a new one saved there (a concurrent process's wins)."""
    with contextlib.suppress(FileNotFoundError):
        existing = path.read_text(encoding="ascii").strip()
        if len(existing) >= MIN_CHARS:
            return existing
        log.warning("auth.secret_damaged", path=str(path))
    secret = secrets.token_urlsafe(48)  # 64 characters
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".auth-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:  # mkstemp: owner-only (0600)
            out.write(secret)
            out.flush()
            os.fsync(out.fileno())
        if path.exists():
            os.replace(tmp, path)  # a damaged file
        else:
            try:
                os.link(tmp, path)  # never replaces a secret another process saved meanwhile
            except FileExistsError:
                return _load_or_save(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return secret
