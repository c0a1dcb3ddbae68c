"""Running the hardware test scripts (tests/runtime/hw_scripts) in fresh processes, with a hard timeout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "hw_scripts"
#: Every distributed test process gets at most this long; nothing may hang CI.
TIMEOUT_S = 240


def script_env(**extra: str) -> dict[str, str]:
    """The environment for a script: this checkout's runtime first, one thread, no inherited rank variables."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "MASTER_ADDR",
                        "MASTER_PORT", "TORCHELASTIC_RUN_ID", "GROUP_RANK")}
    paths = [str(ROOT / "runtime"), str(ROOT / "lsp"), env.get("PYTHONPATH", "")]
    env.update(PYTHONPATH=os.pathsep.join(p for p in paths if p), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               **extra)
    return env


def run_script(name: str, *args: str, cwd: Path, timeout: float = TIMEOUT_S,
               **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPTS / name), *args], cwd=cwd, env=script_env(**env),
                          capture_output=True, text=True, timeout=timeout)
