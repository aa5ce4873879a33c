"""The fork server that starts the suite's apps (tests/app_fork.py) gives an app what a fresh
`python -m chainlit run` gives it: working folder, environment, sys.path, output, exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests import app_fork

PROBE_APP = """
import json, os, sys
print("PROBE " + json.dumps({"cwd": os.getcwd(), "path": sys.path, "env": dict(os.environ),
      "chainlit_imported": "chainlit" in sys.modules, "openai": "openai" in sys.modules}))
sys.stdout.flush()
raise SystemExit(3)
"""


def _probe(output: str) -> dict[str, object]:
    line = next(x for x in output.splitlines() if x.startswith("PROBE "))
    return json.loads(line[len("PROBE ") :])  # type: ignore[no-any-return]


def test_a_forked_app_sees_what_a_fresh_process_sees(tmp_path: Path) -> None:
    (tmp_path / "probe_app.py").write_text(PROBE_APP)
    extra = tmp_path / "extra"
    extra.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(extra),
           "PYTHONUNBUFFERED": "1", "FAQBOT_PROBE": "é ✓"}  # fmt: skip
    args = ["run", "probe_app.py", "--headless", "--port", "1"]
    fresh = subprocess.run([sys.executable, "-m", "chainlit", *args], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    log = tmp_path / "forked.log"
    log.touch()
    app = app_fork.start(args, tmp_path, env, str(log))
    forked_code = app.wait(120)
    want, got = _probe(fresh.stdout + fresh.stderr), _probe(log.read_text())
    assert (forked_code, fresh.returncode) == (3, 3)
    assert got["cwd"] == want["cwd"] == str(tmp_path)
    assert got["path"] == want["path"]
    assert str(extra) in got["path"]  # type: ignore[operator]
    assert got["env"] == want["env"]
    assert got["env"]["FAQBOT_PROBE"] == "é ✓"  # type: ignore[index]
    assert got["chainlit_imported"]
    assert not got["openai"]


def test_a_killed_app_reports_its_signal(tmp_path: Path) -> None:
    (tmp_path / "sleepy.py").write_text("import time\ntime.sleep(60)\n")
    log = tmp_path / "log"
    log.touch()
    app = app_fork.start(["run", "sleepy.py", "--headless"], tmp_path, {"PATH": "/usr/bin"},
                         str(log))  # fmt: skip
    assert app.poll() is None
    app.kill()
    assert app.wait(30) == -9


def test_interpreter_settings_in_the_environment_get_a_fresh_process() -> None:
    assert not app_fork.enabled({"PYTHONTRACEMALLOC": "1", "FAQBOT_TEST_FORK": "1"})
