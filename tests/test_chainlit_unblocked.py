"""Creating Chainlit steps and messages does not block the event loop (chainlit_app.py).

Chainlit 2.12 sleeps 1 ms (blocking) in `Step.__init__` and `Message.__init__`: four times per
question, every session stopped (bench/RESULTS.md "Load"). The app replaces that sleep by a wait
for the clock's next microsecond. Measured in a child process, first with plain Chainlit (the
control: at least 1 ms per object, as the sleep never returns early), then after importing the
app; the stamps must stay distinct and in order, the reason Chainlit sleeps at all
(a step's are set at creation; a message's when it is sent).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e_support import ROOT

N = 200
PROBE = f"""
import asyncio, json, time
import chainlit as cl
from chainlit.context import init_http_context

async def make():
    init_http_context()
    t = time.perf_counter()
    objs = [cl.Step(name="s", thread_id="t") if i % 2 else cl.Message(content="m")
            for i in range({N})]
    took = time.perf_counter() - t
    stamps = [o.created_at for o in objs if isinstance(o, cl.Step)]  # a message: at send
    return took, all(a < b for a, b in zip(stamps, stamps[1:]))

before = asyncio.run(make())
import chainlit_app  # noqa: F401  (installs the app's Chainlit patches)
after = asyncio.run(make())
print(json.dumps({{"before": before, "after": after}}))
"""


def test_steps_and_messages_are_created_without_blocking_and_keep_ordered_stamps(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env |= {"EMBEDDINGS": "off", "DATA_DIR": str(tmp_path), "LOG_LEVEL": "WARNING"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    (before_s, before_ordered), (after_s, after_ordered) = got["before"], got["after"]
    assert before_s >= N * 0.001  # the control: plain Chainlit blocks 1 ms per object
    assert after_s < N * 0.001 / 2, got  # the app's stand-in: microseconds per object
    assert before_ordered
    assert after_ordered
