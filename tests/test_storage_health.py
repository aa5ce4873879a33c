"""Health tells the truth about storage (issue 20, item 6), on a REAL full / read-only file system.

DATA_DIR lives on a small tmpfs mounted for the test (root only: without it these tests skip
and say why). The disk is filled with a filler file until the kernel answers ENOSPC, so SQLite
and the conversation key meet a genuinely full disk, as in production.

- Full before the first API call: every /chat still answers 200 (it was 500: the key file was
  created empty, then its write failed), no empty key file is left, health says "degraded"
  and /health/ready 503 with the reasons (database writes, key not saved); the conversation
  continues with its token meanwhile; once the disk has room again the replica is ready again
  without any request (the probe), and the key saved is the one that signed the tokens.
- Full while serving, and a read-only DATA_DIR: the same, and turns are stored again after.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from faqbot.answering.factory import build_bot
from faqbot.state.conversations import (
    SECRET_FILE,
    ConversationSigner,
    ConversationStore,
    stored_secret,
    unsaved_secret,
)
from faqbot.state.ratelimit import RateLimiter
from faqbot.store.database import Database
from faqbot.store.turns import Store
from faqbot.store.write_health import WriteHealth
from faqbot.web.app import create_api

QUESTION = "Do you offer discounts for annual subscriptions?"
DISK_MB = 16


@dataclass
class SmallDisk:
    """A tmpfs of DISK_MB megabytes: fill() it to ENOSPC, free() it, make it read-only."""

    path: Path

    @property
    def filler(self) -> Path:
        return self.path / "filler"

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (1 << 20, 4096, 1):  # down to the last byte the kernel gives
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, b"\0" * chunk)
        finally:
            os.close(fd)
        st = os.statvfs(self.path)
        assert st.f_bavail == 0, "the disk should be full"

    def free(self) -> None:
        self.filler.unlink()

    def read_only(self, on: bool) -> None:
        mode = "remount,ro" if on else "remount,rw"
        subprocess.run(["mount", "-o", mode, str(self.path)], check=True, capture_output=True)


def _mount_problem(target: Path) -> str | None:
    if os.geteuid() != 0:
        return "mounting a small tmpfs (a real full disk) needs root"
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m,mode=0700", "tmpfs", str(target)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}"
    return None


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    target = tmp_path / "disk"
    problem = _mount_problem(target)
    if problem:
        pytest.skip(problem)
    try:
        yield SmallDisk(target)
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


@dataclass
class App:
    http: httpx.AsyncClient
    db: Database
    data_dir: Path

    async def ask(self, **body: Any) -> httpx.Response:
        return await self.http.post("/chat", json={"question": QUESTION, **body})

    async def ready(self) -> httpx.Response:
        return await self.http.get("/health/ready")

    async def stored_turns(self) -> int:
        async with self.db.engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM faqbot_turns"))).scalar_one())

    async def ready_again(self, within_s: float = 8.0) -> httpx.Response:
        """Poll /health/ready (no other request) until 200 or `within_s` passed."""
        deadline = asyncio.get_running_loop().time() + within_s
        while True:
            resp = await self.ready()
            if resp.status_code == 200 or asyncio.get_running_loop().time() > deadline:
                return resp
            await asyncio.sleep(0.25)


@pytest.fixture
async def app(small_disk: SmallDisk, make_settings: Any) -> AsyncIterator[App]:
    """The API with persistence on, as chainlit_app.py wires it, DATA_DIR on the small disk."""
    settings = make_settings(data_dir=small_disk.path / "data")
    db = Database.from_settings(settings)
    await db.ensure_schema()  # at start-up, while the disk still has room
    bot = build_bot(settings)
    api = create_api(
        lambda: bot,
        RateLimiter(1000, 60),
        settings,
        ConversationStore(),
        ready_checks=(db.check,),
        store=Store(db),
    )
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as http:
        yield App(http, db, settings.data_dir)
    await db.dispose()


def _reasons(resp: httpx.Response) -> str:
    return " | ".join(resp.json()["reasons"])


async def test_disk_full_before_the_first_call(app: App, small_disk: SmallDisk) -> None:
    small_disk.fill()
    answers = [await app.ask() for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3, answers[-1].text
    key = app.data_dir / SECRET_FILE
    assert not key.exists(), "no empty (or partial) key file is left on a full disk"
    assert [p.name for p in app.data_dir.iterdir() if p.name.startswith(".conversation")] == []

    ready = await app.ready()
    assert ready.status_code == 503
    reasons = _reasons(ready)
    assert "database writes failing: OperationalError: database or disk is full" in reasons
    assert "conversation key not saved" in reasons
    assert "No space left on device" in reasons
    health = (await app.http.get("/health")).json()
    assert health["status"] == "degraded"
    assert health["ready"] is False
    assert health["persistence"]["state"] == "failing"
    assert health["persistence"]["failed_writes"] >= 3
    assert health["persistence"]["conversation_key"] == "memory"

    # the conversation goes on meanwhile: the key in memory signs and checks its tokens
    first = answers[0].json()
    follow = await app.ask(
        conversation_id=first["conversation_id"], conversation_token=first["conversation_token"]
    )
    assert follow.status_code == 200
    assert follow.json()["conversation_id"] == first["conversation_id"]

    small_disk.free()
    ready = await app.ready_again()  # no user request: the probe finds the room
    assert ready.status_code == 200, ready.text
    health = (await app.http.get("/health")).json()
    assert health["status"] == "ok"
    assert health["persistence"]["conversation_key"] == "file"
    saved = key.read_bytes()
    assert len(saved) == 32
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    signer = ConversationSigner(saved)  # what a restarted process would check tokens with
    assert signer.verify(first["conversation_id"], first["conversation_token"])
    assert (await app.ask()).status_code == 200
    assert await app.stored_turns() == 1  # stored again; the turns lost meanwhile are lost


async def test_disk_filling_up_while_serving(app: App, small_disk: SmallDisk) -> None:
    assert (await app.ask()).status_code == 200
    assert (await app.ready()).status_code == 200
    assert await app.stored_turns() == 1

    small_disk.fill()
    during = [await app.ask() for _ in range(3)]
    assert [a.status_code for a in during] == [200] * 3
    ready = await app.ready()
    assert ready.status_code == 503
    assert "database or disk is full" in _reasons(ready)
    assert "conversation key" not in _reasons(ready)  # saved before the disk filled
    assert (await app.http.get("/health")).json()["status"] == "degraded"

    small_disk.free()
    assert (await app.ask()).status_code == 200  # a real write commits: recovered at once
    assert (await app.ready()).status_code == 200
    assert await app.stored_turns() == 2


async def test_read_only_data_dir(
    small_disk: SmallDisk, make_settings: Any, tmp_path: Path
) -> None:
    """DATA_DIR read-only from the start (a volume mounted read-only; Linux refuses to remount
    a file system read-only while the database has it open for writing): answers go on,
    readiness says why, and it recovers when the file system is writable again."""
    settings = make_settings(data_dir=small_disk.path / "data")
    made = Database.from_settings(settings)
    await made.ensure_schema()
    await made.dispose()
    stored_secret(settings.data_dir)
    small_disk.read_only(True)
    db = Database.from_settings(settings)
    bot = build_bot(settings)
    api = create_api(
        lambda: bot, RateLimiter(1000, 60), settings, ConversationStore(),
        ready_checks=(db.check,), store=Store(db),
    )  # fmt: skip
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            app = App(http, db, settings.data_dir)
            assert (await app.ask()).status_code == 200
            ready = await app.ready()
            assert ready.status_code == 503
            assert "database writes failing" in _reasons(ready)
            assert "unable to open database file" in _reasons(ready)  # WAL needs its -shm
            assert (await http.get("/health")).json()["status"] == "degraded"
            small_disk.read_only(False)
            again = await app.ready_again()
            assert again.status_code == 200, again.text
            assert (await app.ask()).status_code == 200
            assert await app.stored_turns() == 1
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            small_disk.read_only(False)
        await db.dispose()


async def test_feedback_on_a_full_disk_is_not_a_500(app: App, small_disk: SmallDisk) -> None:
    answer = (await app.ask()).json()
    small_disk.fill()
    rated = await app.http.post("/feedback", json={"answer_id": answer["answer_id"], "value": 1})
    assert rated.status_code == 503, rated.text


# --- the key file on its own (no mount needed) ---


def test_an_empty_or_damaged_key_file_is_replaced_safely(tmp_path: Path) -> None:
    for damaged in (b"", b"short"):
        key = tmp_path / SECRET_FILE
        key.write_bytes(damaged)
        secret = stored_secret(tmp_path)
        assert len(secret) == 32
        assert key.read_bytes() == secret
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stored_secret(tmp_path) == secret  # read back, not made again
        assert unsaved_secret(tmp_path) is None
        key.unlink()


def test_a_key_that_cannot_be_saved_is_kept_in_memory_and_saved_later(tmp_path: Path) -> None:
    blocked = tmp_path / "data"
    blocked.write_text("a file where DATA_DIR should be")  # mkdir fails: NotADirectoryError
    secret = stored_secret(blocked)
    assert len(secret) == 32
    assert stored_secret(blocked) == secret  # the same key for the process's life
    assert "conversation key not saved" in (unsaved_secret(blocked) or "")
    blocked.unlink()
    assert unsaved_secret(blocked) is None  # retried: saved now
    assert (blocked / SECRET_FILE).read_bytes() == secret


# --- the state machine ---


def test_write_health_recovers_on_success_and_ignores_rows_refused_on_their_own() -> None:
    now = [100.0]
    health = WriteHealth(clock=lambda: now[0])
    assert health.wants_probe()  # nothing written yet: health finds out by writing
    health.succeeded()
    assert not health.wants_probe()
    health.failed_with(IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed")))
    assert health.problem() is None  # one bad row: the storage works
    health.failed_with(OperationalError("INSERT", {}, Exception("database or disk is full")), 3)
    now[0] += 5
    problem = health.problem()
    assert problem is not None
    assert "database or disk is full" in problem
    assert "3 failed since the last successful write, last 5 s ago" in problem
    assert health.wants_probe()
    health.probing()
    assert not health.wants_probe()  # at most one probe every couple of seconds
    health.succeeded()
    assert health.problem() is None
    assert health.snapshot()["failed"] == 4
    now[0] += 61
    assert health.wants_probe()  # idle a minute: look again


async def test_disk_full_before_the_database_was_made(
    small_disk: SmallDisk, make_settings: Any
) -> None:
    """Full before the app's first start: the schema cannot be made (the app starts anyway:
    chainlit_app logs it), answers go on, and once there is room the probe makes the schema,
    so turns are stored without a restart."""
    settings = make_settings(data_dir=small_disk.path / "data")
    settings.data_dir.mkdir()
    small_disk.fill()
    db = Database.from_settings(settings)
    with pytest.raises(OperationalError):
        await db.ensure_schema()  # what chainlit_app's start-up meets (and logs)
    bot = build_bot(settings)
    api = create_api(
        lambda: bot, RateLimiter(1000, 60), settings, ConversationStore(),
        ready_checks=(db.check,), store=Store(db),
    )  # fmt: skip
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            app = App(http, db, settings.data_dir)
            assert (await app.ask()).status_code == 200
            ready = await app.ready()
            assert ready.status_code == 503
            assert "database writes failing" in _reasons(ready)
            small_disk.free()
            again = await app.ready_again()
            assert again.status_code == 200, again.text
            assert (await app.ask()).status_code == 200
            assert await app.stored_turns() == 1
    finally:
        await db.dispose()
