"""AUTH_HEADER behind the shipped nginx config (issue 20, item 7).

The app trusts AUTH_HEADER as the signed-in user, so only a proxy that overwrites it is safe. The
shipped deploy/nginx/faqbot.conf clears the client's header on every route: a forged
`X-Forwarded-User: admin` signs nobody in through it, on `/auth/header` as on a websocket. Its
commented example (set the header from the proxy's own authentication) signs in the user the
proxy authenticated, and never the name the client sent.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e_support import chainlit_server, server_logs_on_failure
from tests.nginx_support import NGINX, nginx_in_front

pytestmark = [
    pytest.mark.chainlit,
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)"),
]
CLEARED = 'proxy_set_header X-Forwarded-User "";'
ENV = {
    "AUTH_HEADER": "X-Forwarded-User",
    "CHAINLIT_AUTH_SECRET": "proxy-header-test-secret-" + "p" * 40,
    "HOST": "127.0.0.1",
}


@pytest.fixture(autouse=True)
def _server_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield from server_logs_on_failure(request)


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    with chainlit_server(ENV) as url:
        yield url


def _replica(url: str) -> list[str]:
    return [url.removeprefix("http://")]


def test_a_forged_identity_header_signs_nobody_in_through_the_shipped_config(
    app_url: str,
) -> None:
    shipped = (Path(__file__).parent.parent / "deploy/nginx/faqbot.conf").read_text()
    assert shipped.count(CLEARED) == 2  # both locations: / (Chainlit) and /api
    # Straight to the app, the header is trusted (that is what AUTH_HEADER means)...
    direct = httpx.post(f"{app_url}/auth/header", headers={"X-Forwarded-User": "admin"})
    assert direct.status_code == 200
    with (
        nginx_in_front(_replica(app_url)) as front,
        httpx.Client(base_url=front.url, timeout=30) as client,
    ):
        forged = client.post("/auth/header", headers={"X-Forwarded-User": "admin"})
        assert forged.status_code == 401, forged.text
        assert not any(name.startswith("access_token") for name in client.cookies)
        me = client.get("/user", headers={"X-Forwarded-User": "admin"})
        assert me.status_code == 401


@pytest.fixture
def htpasswd() -> Iterator[Path]:
    """nginx's workers run as another user: a file they can read (not under pytest's 0700)."""
    fd, name = tempfile.mkstemp(prefix="faqbot-htpasswd-")
    os.write(fd, b"carol:{PLAIN}carol-password\n")
    os.close(fd)
    os.chmod(name, 0o644)
    yield Path(name)
    os.unlink(name)


def test_the_documented_example_signs_in_the_proxy_authenticated_user(
    app_url: str, htpasswd: Path
) -> None:
    users = htpasswd

    def from_basic_auth(config: str) -> str:
        """The commented example, turned on in `location /` (with nginx's basic auth)."""
        head, sep, tail = config.partition("location / {")
        tail = tail.replace(
            CLEARED,
            "proxy_set_header X-Forwarded-User $remote_user;\n"
            f'        auth_basic "faqbot";\n        auth_basic_user_file {users};',
            1,
        )
        return head + sep + tail

    with (
        nginx_in_front(_replica(app_url), edit=from_basic_auth) as front,
        httpx.Client(base_url=front.url, timeout=30) as client,
    ):
        assert client.post("/auth/header").status_code == 401  # nginx: no credentials
        signed = client.post(
            "/auth/header",
            auth=("carol", "carol-password"),
            headers={"X-Forwarded-User": "admin"},  # overwritten by the proxy
        )
        assert signed.status_code == 200, signed.text
        me = client.get("/user", auth=("carol", "carol-password"))
        assert me.status_code == 200
        assert me.json()["identifier"] == "carol"
