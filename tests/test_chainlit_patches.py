"""faqbot's changes to Chainlit (faqbot_chainlit/patches.py) hold for one Chainlit version.

An upgrade must be noticed: this test fails when the installed Chainlit is not PATCHED_FOR, and
the app warns at start-up (`chainlit.unexpected_version`). Each patch carries its note: why,
the upstream issue or behaviour, and when it can go.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import chainlit
import pytest
from structlog.testing import capture_logs

from faqbot_chainlit import patches
from tests.e2e_support import ROOT


def test_the_installed_chainlit_is_the_version_the_patches_were_written_for() -> None:
    """Failing here means Chainlit was upgraded: re-read every note in faqbot_chainlit/patches.py
    against the new Chainlit code (is the patched code still there, still wrong?), adjust or
    drop each patch, then set PATCHED_FOR to the new version."""
    assert chainlit.__version__ == patches.PATCHED_FOR, (
        f"Chainlit {chainlit.__version__} is installed; the patches were written for "
        f"{patches.PATCHED_FOR}: review faqbot_chainlit/patches.py"
    )


def test_the_check_warns_when_another_chainlit_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with capture_logs() as same:
        assert patches.check_version() is True
    assert same == []
    monkeypatch.setattr(chainlit, "__version__", "9.9.9")
    with capture_logs() as other:
        assert patches.check_version() is False
    assert [(e["event"], e["installed"], e["patched_for"]) for e in other] == [
        ("chainlit.unexpected_version", "9.9.9", patches.PATCHED_FOR)
    ]
    assert other[0]["log_level"] == "warning"


PROBE = """
import json, chainlit
chainlit.__version__ = "0.0.1"  # as if another Chainlit were installed
from chainlit.session import WebsocketSession
before = (WebsocketSession.get_config, WebsocketSession.delete)
import chainlit_app  # noqa: F401
after = (WebsocketSession.get_config, WebsocketSession.delete)
print(json.dumps({"patched": [a is not b for a, b in zip(before, after)]}))
"""


def test_the_app_checks_the_version_at_start_up_and_still_applies_its_patches(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env |= {"EMBEDDINGS": "off", "DATA_DIR": str(tmp_path), "LOG_LEVEL": "WARNING"}
    env |= {"LOG_FORMAT": "json", "PERSISTENCE": "false"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    logged = out.stdout + out.stderr
    assert "chainlit.unexpected_version" in logged, logged[-3000:]
    assert '"installed": "0.0.1"' in logged or "installed=0.0.1" in logged, logged[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"patched": [True, True]}


def test_every_patch_says_why_where_upstream_stands_and_when_it_can_go() -> None:
    body = inspect.getsource(patches.apply).split('"""')[-1]
    names = re.findall(r"^\s+(\w+)\(", body, flags=re.MULTILINE)
    assert names == [
        "check_version",
        "strip_page_links",
        "serve_watermark",
        "sync_session_config",
        "forget_chat_context",
        "unblock_step_creation",
    ]
    module_doc = patches.__doc__ or ""
    for name in names[1:]:
        doc = inspect.getdoc(getattr(patches, name)) or ""
        for part in ("Why:", "Upstream:", "Can go:"):
            assert part in doc, (name, part)
        assert f"`{name}`" in module_doc, name  # listed in the module's list of patches
