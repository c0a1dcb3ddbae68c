"""Running the hardware test scripts (tests/runtime/hw_scripts) in fresh processes, with a hard timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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


def finish(proc: subprocess.Popen[str], timeout: float = TIMEOUT_S) -> tuple[int, str]:
    """(exit code, stderr) of a started script; -9 when it had to be killed after `timeout` seconds."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return -9, err
    return proc.returncode, err


def assert_no_process_left(folder: Path) -> None:
    """Every process that left a `pid<N>` file in `folder` has ended (within 10 s); kills and fails otherwise."""
    pids = [int(p.name[3:]) for p in folder.glob("pid*")]
    assert pids, "the ranks never started"
    deadline = time.monotonic() + 10
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        time.sleep(0.1)
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert alive == []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
