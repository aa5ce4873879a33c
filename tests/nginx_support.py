"""Run the shipped nginx configuration (deploy/nginx/faqbot.conf) in front of loopback replicas.

The shipped file is an http-level include naming the replicas `app:8000` and listening on port
80, as in docker-compose.yml. Here the same file is used with only those two things rewritten:
each `server app:8000 ...;` line becomes one line per replica, and nginx listens on a free
loopback port; everything else (stickiness, websocket upgrade, buffering, timeouts, forwarded
headers) is exactly what ships. The access log records which replica served each request.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.e2e_support import ROOT, free_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
SHIPPED = ROOT / "deploy" / "nginx" / "faqbot.conf"
UPSTREAM_LINE = re.compile(r"^(\s*)server app:8000( [^;]*)?;$", re.MULTILINE)
LISTEN_LINE = re.compile(r"^(\s*)listen 80;$", re.MULTILINE)
MAIN = """worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    log_format replicas '$remote_addr "$request" $status $upstream_addr';
    access_log {dir}/access.log replicas;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/faqbot.conf;
}}
"""


@dataclass
class Nginx:
    url: str
    folder: Path

    def access_log(self) -> list[str]:
        path = self.folder / "access.log"
        return path.read_text().splitlines() if path.exists() else []


def site_config(replicas: list[str], port: int) -> str:
    """The shipped include with its replicas and its port replaced (nothing else)."""
    text = SHIPPED.read_text(encoding="utf-8")
    assert len(UPSTREAM_LINE.findall(text)) == 2, "both upstreams name app:8000"
    assert LISTEN_LINE.search(text), "the shipped config listens on port 80"

    def servers(match: re.Match[str]) -> str:
        indent, options = match.group(1), match.group(2) or ""
        return "\n".join(f"{indent}server {r}{options};" for r in replicas)

    text = UPSTREAM_LINE.sub(servers, text)
    return LISTEN_LINE.sub(lambda m: f"{m.group(1)}listen 127.0.0.1:{port};", text)


@contextlib.contextmanager
def nginx_in_front(
    replicas: list[str], port: int | None = None, edit: Callable[[str], str] | None = None
) -> Iterator[Nginx]:
    """nginx with the shipped site config on `port` (default: a free one), proxying to
    `replicas` (host:port); `edit` changes the site config as an operator would (e.g. turns
    on a commented example)."""
    assert NGINX is not None
    folder = Path(tempfile.mkdtemp(prefix="faqbot-nginx-"))
    port = port or free_port()
    text = site_config(replicas, port)
    (folder / "faqbot.conf").write_text(edit(text) if edit else text, encoding="utf-8")
    (folder / "nginx.conf").write_text(MAIN.format(dir=folder), encoding="utf-8")
    cmd = [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"]
    check = subprocess.run([*cmd[:-2], "-t"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, f"nginx -t refused the shipped config:\n{check.stderr}"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/health/live", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None, (
                    f"nginx exited: {proc.stderr.read() if proc.stderr else ''}"
                )
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        yield Nginx(url, folder)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
