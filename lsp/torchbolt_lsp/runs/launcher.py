"""Start the runtime's command line as a child process and read its event stream incrementally.

The child gets the write end of an OS pipe (`--events fd:N`); the server reads the read end on its event
loop. Reading is chunked: each chunk's complete lines are validated in one batch (`parse_events`), so the
per-event cost stays a few microseconds and a flood of events never backs up the loop. stdout/stderr are
read line by line and handed over in batches too.

Nothing outlives the server: every child starts in its own session (process group), Stop and kill signal
that whole group (DataLoader workers included), and each child gets two ways to notice the server's end,
even a SIGKILL: the read end of a lifeline pipe (`TORCHBOLT_LIFELINE=fd:N`; the runtime stops once it
reads EOF, see `torchbolt.callbacks.event_stream.watch_lifeline`) and, on Linux, a parent-death signal.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._lazy import lazy_module

if TYPE_CHECKING:
    from torchbolt import events as ev
    from torchbolt.events import Event, EventError
else:  # pydantic models: imported at the first run, not at server start
    ev = lazy_module("torchbolt.events")

#: Seconds a stopped run gets to finish its step and save before it is killed (env override for tests).
STOP_GRACE_S = float(os.environ.get("TORCHBOLT_STOP_GRACE_S", "10"))

EventsCallback = Callable[[list[bytes], list["Event"], list[tuple[bytes, "EventError"]]], None]
OutputCallback = Callable[[str, list[str]], None]


def trainer_flag_value(value: Any) -> str:
    """A Trainer argument as command-line text the CLI parses back to the same value."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)  # lists / dicts: JSON is valid YAML flow syntax


#: Environment variable naming the lifeline pipe's read end in the child (see the module docstring).
LIFELINE_ENV = "TORCHBOLT_LIFELINE"
_PR_SET_PDEATHSIG = 1


def _prctl() -> Any:
    """libc's prctl on Linux (looked up once, in the parent: the child only calls it), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def parent_death_signal(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` that makes the kernel send `sig` to the child when the server dies (Linux), else None."""
    prctl = _PRCTL
    if prctl is None:
        return None
    parent = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the server died between fork and prctl: nobody would signal us
            os._exit(1)

    return arm


def signal_group(pid: int, sig: int) -> bool:
    """Send `sig` to the process group led by `pid` (a child started with its own session); False when it
    is gone. Falls back to the process alone where groups do not exist."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(pid, sig)
        else:  # pragma: no cover - Windows
            os.kill(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


#: Placeholder for the event pipe's descriptor in a command built before the pipe exists.
EVENTS_PLACEHOLDER = "fd:{fd}"


def build_command(interpreter: str, fn: str, target: str, data: str | None, trainer: Mapping[str, Any],
                  events: str = EVENTS_PLACEHOLDER) -> list[str]:
    """`<python> -m torchbolt <fn> <target> [--data D] [--trainer.K V ...] --events fd:N`."""
    cmd = [interpreter, "-m", "torchbolt", fn, target]
    if data:
        cmd += ["--data", data]
    for name, value in trainer.items():
        cmd += [f"--trainer.{name}", trainer_flag_value(value)]
    cmd += ["--events", events]
    return cmd


class _EventPipe(asyncio.Protocol):
    """Splits the pipe's bytes into lines and hands each chunk's complete lines over at once."""

    def __init__(self, on_events: EventsCallback) -> None:
        self.on_events = on_events
        self.partial = b""
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        data = self.partial + data
        cut = data.rfind(b"\n")
        if cut < 0:
            self.partial = data
            return
        self.partial = data[cut + 1:]
        lines = [ln for ln in data[:cut].split(b"\n") if ln.strip()]
        if lines:
            good, bad = ev.parse_events(lines)
            self.on_events(lines, good, bad)

    def eof_received(self) -> bool | None:
        if self.partial.strip():
            good, bad = ev.parse_events([self.partial])
            self.on_events([self.partial], good, bad)
        self.partial = b""
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class ChildRun:
    """One child process with its event pipe and output streams."""

    def __init__(self, proc: asyncio.subprocess.Process, pipe: _EventPipe, readers: list[asyncio.Task[None]],
                 lifeline: int | None = None) -> None:
        self.proc = proc
        self.pipe = pipe
        self.readers = readers
        self.lifeline = lifeline  # our write end: closing it (or dying) tells the child to stop
        self.stop_requested = False
        self._kill_handle: asyncio.TimerHandle | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def wait(self) -> int:
        """Wait for the process to exit and its streams to drain; returns the exit status."""
        code = await self.proc.wait()
        await asyncio.gather(*self.readers, return_exceptions=True)
        try:
            await asyncio.wait_for(asyncio.shield(self.pipe.closed), timeout=5)
        except asyncio.TimeoutError:
            pass  # a grandchild kept the write end open: stop waiting for it
        if self._kill_handle is not None:
            self._kill_handle.cancel()
        # Leftovers of the group (a DataLoader worker that missed the end) go with the run.
        signal_group(self.proc.pid, signal.SIGKILL)
        self.close_transport()
        self.close_lifeline()
        return code

    def close_lifeline(self) -> None:
        fd, self.lifeline = self.lifeline, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def close_transport(self) -> None:
        """Close the child's asyncio transport now (it kills a child still running), not when it is
        garbage-collected after the event loop is gone (which prints 'Event loop is closed' at exit)."""
        transport = getattr(self.proc, "_transport", None)
        if transport is not None:
            transport.close()

    def stop(self, grace_s: float | None = None) -> None:
        """Ask the run to stop gracefully (SIGINT: finish the step, save, exit); kill it after `grace_s`."""
        if self.proc.returncode is not None:
            return
        if self.stop_requested:  # second request: the user insists
            self.kill()
            return
        self.stop_requested = True
        # The whole group, as Ctrl+C in a terminal would: DataLoader workers get it too and exit quietly.
        if not signal_group(self.proc.pid, signal.SIGINT):
            return
        self._kill_handle = asyncio.get_running_loop().call_later(STOP_GRACE_S if grace_s is None else grace_s,
                                                                  self.kill)

    def kill(self) -> None:
        """SIGKILL the run's whole process group (the child and everything it started)."""
        signal_group(self.proc.pid, signal.SIGKILL)
        if self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass


async def _read_lines(stream: asyncio.StreamReader, name: str, on_output: OutputCallback) -> None:
    """Hand over complete lines as they arrive (a line split across two reads is joined first)."""
    partial = b""
    while True:
        chunk = await stream.read(1 << 16)
        if not chunk:
            if partial:
                on_output(name, [partial.decode("utf-8", "replace")])
            return
        data = partial + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            partial = data
            if len(partial) > 1 << 20:  # a huge line without newline (a progress bar with \r): flush it
                on_output(name, [partial.decode("utf-8", "replace")])
                partial = b""
            continue
        partial = data[cut + 1:]
        on_output(name, data[:cut].decode("utf-8", "replace").splitlines())


class _Router:
    """Where a child's events and output go; a warm worker's router is pointed at its run when claimed."""

    def __init__(self, on_events: EventsCallback | None, on_output: OutputCallback | None) -> None:
        self.on_events = on_events
        self.on_output = on_output
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.early: list[tuple[str, str]] = []  # a worker's output before it was claimed

    def events(self, raw: list[bytes], good: list[Event], bad: list[tuple[bytes, EventError]]) -> None:
        if self.on_events is not None:
            self.on_events(raw, good, bad)

    def output(self, name: str, lines: list[str]) -> None:
        if self.on_output is not None:
            self.on_output(name, lines)
            return
        if name == "stdout" and WORKER_READY in lines and not self.ready.done():
            self.ready.set_result(None)
            lines = [ln for ln in lines if ln != WORKER_READY]
        self.early.extend((name, ln) for ln in lines)
        del self.early[:-200]


async def _spawn(args: Sequence[str], cwd: str, env: Mapping[str, str], router: _Router, with_stdin: bool,
                 events_fd_placeholder: str = EVENTS_PLACEHOLDER) -> tuple[ChildRun, int]:
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    os.set_inheritable(write_fd, True)
    life_read, life_write = os.pipe()  # the child reads; only we hold the write end (not inheritable)
    os.set_inheritable(life_read, True)
    args = [a.replace(events_fd_placeholder, f"fd:{write_fd}") for a in args]
    env = {k: v.replace(events_fd_placeholder, f"fd:{write_fd}") for k, v in env.items()}
    env = {**env, LIFELINE_ENV: f"fd:{life_read}"}
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, cwd=cwd, env=dict(env),
            stdin=asyncio.subprocess.PIPE if with_stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, pass_fds=(write_fd, life_read),
            # own process group: a Ctrl+C in the editor's terminal does not reach it, our signal does
            start_new_session=True, preexec_fn=parent_death_signal())
    except BaseException:
        os.close(read_fd)
        os.close(life_write)
        raise
    finally:
        os.close(write_fd)  # the child holds its copy; EOF arrives when the child exits
        os.close(life_read)
    pipe = _EventPipe(router.events)
    await loop.connect_read_pipe(lambda: pipe, os.fdopen(read_fd, "rb", buffering=0))
    assert proc.stdout is not None and proc.stderr is not None
    readers = [asyncio.ensure_future(_read_lines(proc.stdout, "stdout", router.output)),
               asyncio.ensure_future(_read_lines(proc.stderr, "stderr", router.output))]
    return ChildRun(proc, pipe, readers, life_write), write_fd


async def start_child(cmd: Sequence[str], cwd: str, env: Mapping[str, str], on_events: EventsCallback,
                      on_output: OutputCallback, events_fd_placeholder: str = EVENTS_PLACEHOLDER) -> ChildRun:
    """Start `cmd` (whose events target is `fd:{fd}`, filled in here) in `cwd` with the event pipe."""
    child, _ = await _spawn(cmd, cwd, env, _Router(on_events, on_output), False, events_fd_placeholder)
    return child


#: What `python -m torchbolt.worker` prints once torch is imported (see torchbolt.worker.READY).
WORKER_READY = "torchbolt-worker-ready"


class WarmWorker:
    """A `python -m torchbolt.worker` process started ahead of a run, with the run's pipes and environment.

    `key` says which runs it can serve (interpreter, folder, environment); `claim` hands it one run.
    """

    def __init__(self, key: tuple[Any, ...], child: ChildRun, events_fd: int, router: _Router) -> None:
        self.key = key
        self.child = child
        self.events_fd = events_fd  # the descriptor number the worker inherited for the event pipe
        self.router = router
        self.claimed = False

    @property
    def ready(self) -> bool:
        """Warm and still alive: a run handed to it starts without importing torch."""
        return self.router.ready.done() and self.child.proc.returncode is None and not self.claimed

    def claim(self, argv: Sequence[str], env: Mapping[str, str], on_events: EventsCallback,
              on_output: OutputCallback) -> ChildRun:
        """Start the run `torchbolt <argv>` in this worker (argv's `fd:{fd}` is the worker's event pipe)."""
        self.claimed = True
        self.router.on_events, self.router.on_output = on_events, on_output
        for name, line in self.router.early:
            on_output(name, [line])
        self.router.early.clear()
        args = [a.replace(EVENTS_PLACEHOLDER, f"fd:{self.events_fd}") for a in argv]
        stdin = self.child.proc.stdin
        assert stdin is not None
        stdin.write((json.dumps({"argv": args, "env": dict(env)}) + "\n").encode())
        stdin.close()
        return self.child

    def discard(self) -> None:
        """End an unused worker (its settings changed, or the server stops)."""
        if not self.claimed:
            self.child.kill()
            self.child.close_transport()
            self.child.close_lifeline()


async def start_worker(key: tuple[Any, ...], interpreter: str, cwd: str, env: Mapping[str, str]) -> WarmWorker:
    """Start a warm worker; it becomes `ready` once its imports are done."""
    router = _Router(None, None)
    child, fd = await _spawn([interpreter, "-m", "torchbolt.worker"], cwd, env, router, True)
    return WarmWorker(key, child, fd, router)


def parse_python_traceback(text: str) -> tuple[list[dict[str, Any]], str, str] | None:
    """(frames, error_type, message) of the last Python traceback printed in `text`, or None.

    Used when a child dies without writing a terminal event (e.g. a crash before the CLI could report).
    """
    lines = text.splitlines()
    start = max((i for i, ln in enumerate(lines) if ln.startswith("Traceback (most recent call last):")),
                default=-1)
    if start < 0:
        return None
    frames: list[dict[str, Any]] = []
    i = start + 1
    while i < len(lines):
        ln = lines[i]
        stripped = ln.strip()
        if stripped.startswith('File "'):
            try:
                file_part, rest = stripped[6:].split('", line ', 1)
                line_no, _, func = rest.partition(", in ")
                code = lines[i + 1].strip() if i + 1 < len(lines) and lines[i + 1].startswith("    ") else ""
                frames.append({"file": file_part, "line": int(line_no.split(",")[0]), "function": func or "<module>",
                               "code": code})
            except ValueError:
                pass
            i += 1
            continue
        if ln and not ln.startswith(" "):
            error_type, _, message = ln.partition(":")
            return frames, error_type.strip().rsplit(".", 1)[-1], message.strip()
        i += 1
    return None
