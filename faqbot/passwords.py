"""Password hashes for AUTH_USERS: PBKDF2-HMAC-SHA256 from the standard library.

Why PBKDF2 and no extra package: it is in `hashlib`, NIST-approved, and with OWASP's 600,000
iterations slow enough for a handful of staff accounts; the encoded form names the algorithm and
its cost, so old hashes keep verifying if the default cost rises. Format (Django's, so existing
tools read it): `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`.

A settings file therefore holds only hashes, never a password (`python -m faqbot hash-password`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 600_000  # OWASP 2023 for PBKDF2-HMAC-SHA256
MIN_ITERATIONS = 100_000
# A hash to verify unknown user names against, so their sign-in takes as long as a known one's
_DUMMY = f"{ALGORITHM}${ITERATIONS}$dummysalt${base64.b64encode(bytes(32)).decode()}"


def _derive(password: str, salt: str, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode(), iterations)


def hash_password(password: str, *, iterations: int = ITERATIONS) -> str:
    """The encoded hash of `password` with a fresh random salt."""
    if not password:
        raise ValueError("the password is empty")
    salt = secrets.token_urlsafe(16)
    digest = base64.b64encode(_derive(password, salt, iterations)).decode("ascii")
    return f"{ALGORITHM}${iterations}${salt}${digest}"


def is_password_hash(encoded: str) -> bool:
    """Whether `encoded` has the form hash_password writes (and a cost not below the floor)."""
    parts = encoded.split("$")
    if len(parts) != 4 or parts[0] != ALGORITHM or not parts[1].isdigit():
        return False
    try:
        digest = base64.b64decode(parts[3], validate=True)
    except ValueError:
        return False
    return int(parts[1]) >= MIN_ITERATIONS and bool(parts[2]) and len(digest) == 32


def verify_password(password: str, encoded: str | None) -> bool:
    """Does `password` match `encoded`? Constant time; `encoded=None` (no such user) is False
    after the same amount of work, so timing does not tell which user names exist."""
    target = encoded if encoded and is_password_hash(encoded) else _DUMMY
    _, iterations, salt, digest = target.split("$")
    candidate = base64.b64encode(_derive(password, salt, int(iterations))).decode("ascii")
    return hmac.compare_digest(candidate, digest) and target is encoded
