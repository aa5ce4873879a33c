"""docker-compose.yml: valid for Compose, wired as the README says, with no secret inside.

No Docker engine runs here, so the stack is not started; `docker-compose config` (Debian's
package, which .ci/run installs) validates and interpolates the file as Compose would, and the
wiring is checked on its output. The running equivalent (two replicas, nginx with the same
config, PostgreSQL, Redis) is tests/test_nginx_replicas.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = shutil.which("docker-compose")
SECRETS = {
    "POSTGRES_PASSWORD": "pg-pass-123",
    "CONVERSATION_SECRET": "conv-secret-0123456789abcdef",
}
pytestmark = pytest.mark.skipif(
    COMPOSE is None, reason="docker-compose is not installed (apt-get install docker-compose)"
)


def _config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert COMPOSE is not None
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("OPENAI")}
    return subprocess.run(
        [COMPOSE, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True, text=True, env={**clean, **env}, cwd=ROOT, check=False, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    done = _config(SECRETS)
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = yaml.safe_load(done.stdout)
    return parsed


def test_the_file_is_valid_and_has_the_four_services(stack: dict[str, Any]) -> None:
    assert set(stack["services"]) == {"nginx", "app", "postgres", "redis"}
    assert stack["services"]["app"]["deploy"]["replicas"] == 2


def test_secrets_come_from_the_environment_and_are_required() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for value in SECRETS.values():
        assert value not in text
    missing = _config({})
    assert missing.returncode != 0
    assert "POSTGRES_PASSWORD" in missing.stderr


def test_replicas_share_postgres_and_redis_and_trust_only_nginx(stack: dict[str, Any]) -> None:
    app, nginx = stack["services"]["app"], stack["services"]["nginx"]
    env = app["environment"]
    assert env["DATABASE_URL"].endswith("@postgres:5432/faqbot")
    assert SECRETS["POSTGRES_PASSWORD"] in env["DATABASE_URL"]
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["CONVERSATION_SECRET"] == SECRETS["CONVERSATION_SECRET"]
    assert env["FORWARDED_ALLOW_IPS"] == nginx["networks"]["front"]["ipv4_address"]
    assert {"postgres", "redis"} <= set(app["depends_on"])
    assert all(d["condition"] == "service_healthy" for d in app["depends_on"].values())


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """target -> (source, read only), from Compose v1's short or v2's long syntax."""
    found = {}
    for v in service.get("volumes", []):
        if isinstance(v, str):
            source, target, *mode = v.split(":")
            found[target] = (source, mode == ["ro"])
        else:
            found[v["target"]] = (v["source"], bool(v.get("read_only")))
    return found


def test_the_faq_folder_is_a_read_only_volume_and_nginx_uses_the_shipped_config(
    stack: dict[str, Any],
) -> None:
    app = _mounts(stack["services"]["app"])
    assert app["/app/faqs"] == (str(ROOT / "faqs"), True)
    nginx = _mounts(stack["services"]["nginx"])
    conf = ROOT / "deploy" / "nginx" / "faqbot.conf"
    assert nginx["/etc/nginx/conf.d/default.conf"] == (str(conf), True)
    assert stack["services"]["nginx"]["depends_on"]["app"]["condition"] == "service_healthy"


def test_every_service_is_health_checked(stack: dict[str, Any]) -> None:
    for name in ("nginx", "postgres", "redis"):
        assert stack["services"][name]["healthcheck"]["test"], name
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "HEALTHCHECK" in dockerfile  # the app's own, from its image
    assert "/api/health/ready" in dockerfile
