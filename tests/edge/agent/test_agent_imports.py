"""The agent must run on a Pi that installed only ``.[edge]``: no platform imports, ever."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = ("tuanbox", "fastapi", "sqlalchemy", "celery", "web3", "firmware_sim")

PROBE = f"""
import importlib, pkgutil, sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {FORBIDDEN!r}:
            raise ImportError("the agent must not import " + name)
        return None

sys.meta_path.insert(0, Refuse())
import edge.agent
for info in pkgutil.iter_modules(edge.agent.__path__, "edge.agent."):
    if info.name in ("edge.agent.__main__",):
        continue
    importlib.import_module(info.name)
print("ok")
"""


def test_agent_modules_import_without_the_platform() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
