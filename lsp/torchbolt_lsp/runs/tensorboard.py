"""One TensorBoard per workspace folder, bound to 127.0.0.1 on a free port, stopped with the server (also
when the server is killed: a parent-death signal on Linux)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .launcher import parent_death_signal, signal_group

#: Seconds TensorBoard gets to start answering HTTP.
START_TIMEOUT_S = 60.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (bound once, released, handed to TensorBoard)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def logdir_for(log_dirs: Iterable[str | None], workspace: str) -> str:
    """The folder TensorBoard watches: the common parent of the runs' experiment folders
    (`.../lightning_logs` for `.../lightning_logs/version_3`), else `<workspace>/lightning_logs` when it
    exists, else the workspace folder."""
    parents = [os.path.dirname(os.path.abspath(d)) for d in log_dirs if d]
    if parents:
        try:
            return os.path.commonpath(parents)
        except ValueError:  # different drives
            return parents[-1]
    default = os.path.join(workspace, "lightning_logs")
    return default if os.path.isdir(default) else workspace


@dataclass
class TensorBoardProcess:
    """A running TensorBoard."""

    proc: asyncio.subprocess.Process
    url: str
    logdir: str

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None


async def _answers(host: str, port: int) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        writer.write(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.read(12), 5.0)
        return head.startswith(b"HTTP/")
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        writer.close()


class TensorBoards:
    """Starts and remembers one TensorBoard per workspace folder."""

    def __init__(self) -> None:
        self.running: dict[str, TensorBoardProcess] = {}
        self._starting: dict[str, asyncio.Future[TensorBoardProcess]] = {}

    async def ensure(self, workspace: str, interpreter: str, logdir: str, env: Mapping[str, str],
                     timeout_s: float = START_TIMEOUT_S) -> TensorBoardProcess:
        """The workspace's TensorBoard, started if needed; raises RuntimeError with its output when it
        cannot start."""
        current = self.running.get(workspace)
        if current is not None and current.alive:
            return current
        pending = self._starting.get(workspace)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[TensorBoardProcess] = asyncio.get_running_loop().create_future()
        self._starting[workspace] = future
        try:
            tb = await self._start(workspace, interpreter, logdir, env, timeout_s)
            self.running[workspace] = tb
            future.set_result(tb)
            return tb
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._starting[workspace]

    async def _start(self, workspace: str, interpreter: str, logdir: str, env: Mapping[str, str],
                     timeout_s: float) -> TensorBoardProcess:
        host, port = "127.0.0.1", free_port()
        os.makedirs(logdir, exist_ok=True)
        proc = await asyncio.create_subprocess_exec(
            interpreter, "-m", "tensorboard.main", "--logdir", logdir, "--host", host, "--port", str(port),
            cwd=workspace, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True, preexec_fn=parent_death_signal())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if proc.returncode is not None:
                err = (await proc.stderr.read()).decode("utf-8", "replace") if proc.stderr else ""
                raise RuntimeError(f"TensorBoard exited with status {proc.returncode}: {err.strip()[-800:]}. "
                                   f"Install it into the run interpreter ({interpreter} -m pip install tensorboard)")
            if await _answers(host, port):
                asyncio.ensure_future(_drain(proc))
                return TensorBoardProcess(proc, f"http://{host}:{port}/", logdir)
            await asyncio.sleep(0.25)
        proc.kill()
        raise RuntimeError(f"TensorBoard did not answer on {host}:{port} within {timeout_s:.0f} s")

    def stop_all(self) -> None:
        """Terminate every TensorBoard (called when the server shuts down)."""
        for tb in self.running.values():
            if tb.alive:
                signal_group(tb.proc.pid, signal.SIGTERM)
        self.running.clear()


async def _drain(proc: asyncio.subprocess.Process) -> None:
    # TensorBoard logs every request to stderr; an unread pipe would eventually block it.
    if proc.stderr is None:
        return
    while await proc.stderr.read(1 << 16):
        pass
