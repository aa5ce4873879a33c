"""An offline start never imports the openai package.

Importing openai costs ~0.6 s of CPU, an eighth of an app start on 2 cores (most of the rest is
Chainlit's own imports); the bundled default never needs it, so it is imported only where an
LLM or OpenAI embeddings are configured (faqbot/answering/factory.py,
faqbot/retrieval/factory.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import sys
from faqbot.answering.factory import build_bot
from faqbot.config import load_settings
import faqbot.ops.reload, faqbot.answering.render, faqbot.store.turns, faqbot.web.app
build_bot(load_settings(openai_api_key=None, embeddings="off", faq_dir=sys.argv[1]))
print("openai" in sys.modules)
"""


def test_an_offline_bot_is_built_without_importing_openai(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "faqs")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), "HOME": str(tmp_path),
             "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr
