"""Security headers and CORS on the running app (UI, API, static files, copilot script)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e_support import chainlit_server

pytestmark = pytest.mark.chainlit
ALLOWED = "http://partner.test:3000"


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    with chainlit_server({"CORS_ORIGINS": ALLOWED, "RATE_LIMIT_REQUESTS": "1000"}) as url:
        yield url


@pytest.mark.parametrize(
    "path", ["/", "/api/health", "/public/logo.svg", "/copilot/index.js", "/api/nope", "/health"]
)
def test_every_response_carries_the_security_headers(app_url: str, path: str) -> None:
    resp = httpx.get(app_url + path)
    headers = resp.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "camera=()" in headers["permissions-policy"]
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert "strict-transport-security" not in headers  # plain HTTP


def test_hsts_only_behind_https(app_url: str) -> None:
    resp = httpx.get(app_url + "/api/health", headers={"X-Forwarded-Proto": "https"})
    assert resp.headers["strict-transport-security"].startswith("max-age=31536000")


def test_api_is_served_before_the_spa_catch_all(app_url: str) -> None:
    resp = httpx.get(app_url + "/api/health")
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["status"] == "ok"
    schema = httpx.get(app_url + "/api/openapi.json").json()
    assert "/chat" in schema["paths"]


def test_cors_follows_cors_origins_for_api_and_chainlit(app_url: str) -> None:
    for path in ("/api/chat", "/project/settings"):
        ok = httpx.options(
            app_url + path,
            headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"},
        )
        bad = httpx.options(
            app_url + path,
            headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"},
        )
        assert ok.headers.get("access-control-allow-origin") == ALLOWED, path
        assert "access-control-allow-origin" not in bad.headers, path
