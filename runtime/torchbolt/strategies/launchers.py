"""Starting the other ranks of a run on this machine, and taking them down together.

`SubprocessLauncher` (strategy 'ddp') re-executes the user's command once per extra local rank, with
MASTER_ADDR, MASTER_PORT, RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE and NODE_RANK set; the launching
process itself becomes local rank 0. It does better than Lightning on failure:

* every child writes its traceback to a per-rank file when it dies of an exception (text, and the
  frames as JSON, so the editor can put the error at the raising line of that rank);
* a watcher thread in the launching process notices a child that exits non-zero, stops the other
  children and, if the launching process does not stop by itself within a grace period (it may be
  blocked in a collective that will never complete), ends it with exit code 1 after printing which rank
  failed and its traceback;
* children die with their parent (Linux parent-death signal, plus a watchdog thread elsewhere), and a
  signal (SIGINT/SIGTERM) the launcher receives is forwarded to them.

`SpawnLauncher` (strategies 'ddp_spawn', 'ddp_fork', 'ddp_notebook') runs the Trainer's run in new processes
through torch.multiprocessing, as Lightning does; the launching process waits, then takes rank 0's results
back (weights, metrics, checkpoint bookkeeping, return value). Failures end every process as quickly as with
'ddp', and the error names the rank and carries its traceback.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr

#: Children find the folder for their traceback files here.
ERROR_DIR_VAR = "TORCHBOLT_RANK_ERROR_DIR"
#: How long the launching process may take to stop by itself after a child failed, before it is ended.
FAILURE_GRACE_S = 10.0
#: How long children get to exit after SIGTERM before SIGKILL.
TERMINATE_GRACE_S = 5.0


class RankFailedError(RuntimeError):
    """Another rank of the run raised; the message names the rank and carries its traceback.

    `failure` is what that rank recorded about its exception (error_type, message, frames as in the event
    stream's ``failed`` event), or None when it left nothing (killed, or crashed outside Python).
    """

    def __init__(self, rank: int, returncode: int | None, details: str,
                 failure: dict[str, Any] | None = None) -> None:
        self.rank = rank
        self.returncode = returncode
        self.details = details
        self.failure = failure
        super().__init__(f"rank {rank} failed (exit code {returncode}):\n{details}".rstrip())


def rank_command() -> list[str]:
    """The command that started this process, to run again for the other ranks."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        name = spec.name[: -len(".__main__")] if spec.name.endswith(".__main__") else spec.name
        if name == "torchbolt.worker":
            name = "torchbolt"  # an editor's warm worker runs `torchbolt <argv>`: the ranks run that directly
        return [sys.executable, "-m", name, *sys.argv[1:]]
    script = sys.argv[0] if sys.argv else ""
    if not script or script == "-c" or not os.path.exists(script):
        raise RuntimeError(
            "strategy='ddp' starts the other ranks by running your command again, but this process was not started "
            "from a script file (python -c or an interactive session). Run a script, use strategy='ddp_spawn' or "
            "'ddp_notebook', or start the ranks yourself with torchrun."
        )
    return [sys.executable, os.path.abspath(script), *sys.argv[1:]]


def _without_event_stream(command: list[str], env: dict[str, str]) -> list[str]:
    """The other ranks must not write the editor's event stream (rank 0 reports the run): their
    `--events TARGET` becomes the null device and TORCHBOLT_EVENTS is dropped. The editor's lifeline
    descriptor is not inherited either (its number could name another file there): a child ends with
    this process instead."""
    env.pop("TORCHBOLT_EVENTS", None)
    env.pop("TORCHBOLT_LIFELINE", None)
    out: list[str] = []
    skip = False
    for token in command:
        if skip:
            out.append(os.devnull)
            skip = False
        elif token == "--events":
            out.append(token)
            skip = True
        elif token.startswith("--events="):
            out.append(f"--events={os.devnull}")
        else:
            out.append(token)
    return out


def _set_parent_death_signal() -> None:
    """Runs in the child before exec (Linux): SIGKILL it when the launching process dies."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the child's watchdog thread covers it
        pass


class SubprocessLauncher:
    """Re-executes the user's command for local ranks 1..N-1; this process continues as local rank 0."""

    is_interactive_compatible = False

    def __init__(self, num_processes: int, num_nodes: int = 1, node_rank: int = 0) -> None:
        self.num_processes = num_processes
        self.num_nodes = num_nodes
        self.node_rank = node_rank
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.failure: RankFailedError | None = None
        self.error_dir: Path | None = None
        self._watcher: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._crashed = False
        self._terminated: set[int] = set()  # children this process stopped (their exit is not their failure)
        # Set once the process group formed (every rank joined): before that, a child that exits at all, even
        # with status 0, leaves this process waiting for it in the rendezvous.
        self.joined = threading.Event()

    @property
    def launched(self) -> bool:
        return bool(self.children)

    def launch(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Start the other local ranks (once per process), then run `function` here as local rank 0."""
        if not self.children and "LOCAL_RANK" not in os.environ:
            self.start_children()
        return function(*args, **kwargs)

    def start_children(self) -> None:
        from torchbolt.plugins.environments import find_free_port

        command = rank_command()
        world = self.num_processes * self.num_nodes
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        if "MASTER_PORT" not in os.environ:
            if self.num_nodes > 1:
                raise RuntimeError(
                    f"num_nodes={self.num_nodes}: set MASTER_ADDR and MASTER_PORT (the same on every node) and "
                    "NODE_RANK (0..num_nodes-1) before starting the command on each node."
                )
            os.environ["MASTER_PORT"] = str(find_free_port())
        self.error_dir = Path(tempfile.mkdtemp(prefix="torchbolt-ranks-"))
        base = dict(os.environ)
        base.update(WORLD_SIZE=str(world), NODE_RANK=str(self.node_rank), LOCAL_WORLD_SIZE=str(self.num_processes),
                    **{ERROR_DIR_VAR: str(self.error_dir)})
        # This process is local rank 0: later Trainers in the same script see the layout and launch nothing.
        os.environ.update(base, LOCAL_RANK="0", RANK=str(self.node_rank * self.num_processes))
        for local in range(1, self.num_processes):
            env = dict(base, LOCAL_RANK=str(local), RANK=str(self.node_rank * self.num_processes + local))
            self.children[local] = subprocess.Popen(
                _without_event_stream(command, env), env=env, cwd=os.getcwd(),
                preexec_fn=_set_parent_death_signal if sys.platform.startswith("linux") else None,
            )
        atexit.register(self._at_exit)
        self._install_process_hooks()
        self._watcher = threading.Thread(target=self._watch, name="torchbolt-rank-watcher", daemon=True)
        self._watcher.start()

    def _install_process_hooks(self) -> None:
        """An uncaught exception here, or a SIGTERM while nobody handles it, takes the children down too."""
        previous_hook = sys.excepthook

        def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
            self._crashed = True
            previous_hook(exc_type, exc, tb)

        sys.excepthook = hook
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            def on_term(signum: int, frame: Any) -> None:
                self._stopping.set()
                self.terminate_children()
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)

            signal.signal(signal.SIGTERM, on_term)

    def global_rank_of(self, local: int) -> int:
        return self.node_rank * self.num_processes + local

    def read_error(self, local: int) -> str:
        """The traceback child `local` wrote, or a line saying it left none."""
        if self.error_dir is not None:
            path = self.error_dir / f"rank{self.global_rank_of(local)}.txt"
            if path.exists():
                return path.read_text(encoding="utf-8", errors="replace")
        return "(no traceback recorded: the process was killed or crashed outside Python; see its output above)\n"

    def read_failure(self, local: int) -> dict[str, Any] | None:
        """What child `local` recorded about its exception (error_type, message, frames), if anything."""
        if self.error_dir is None:
            return None
        path = self.error_dir / f"rank{self.global_rank_of(local)}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _failure_of(self, local: int, rc: int | None) -> RankFailedError:
        if rc == 0:
            return RankFailedError(self.global_rank_of(local), rc, (
                "it ended before joining the run's process group, so the other ranks would wait for it for good. "
                "Every rank must reach the same Trainer call: code that returns or exits early on some ranks (a "
                "check of RANK/LOCAL_RANK, a __main__ guard that differs) stops the run.\n"))
        return RankFailedError(self.global_rank_of(local), rc, self.read_error(local), self.read_failure(local))

    def _watch(self) -> None:
        while not self._stopping.is_set():
            for local, proc in list(self.children.items()):
                rc = proc.poll()
                if (rc is not None and (rc != 0 or not self.joined.is_set()) and self.failure is None
                        and not self._stopping.is_set() and local not in self._terminated):
                    self._on_child_failure(local, rc)
                    return
            time.sleep(0.1)

    def _on_child_failure(self, local: int, rc: int) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = self._failure_of(local, rc)
            failure = self.failure
        sys.stderr.write(f"[torchbolt] {failure}\n[torchbolt] stopping the other ranks.\n")
        sys.stderr.flush()
        self.terminate_children()
        # This process may be blocked in a collective with the dead rank; give it a moment to fail by itself
        # (gloo reports the closed connection), then end it so that nothing hangs.
        deadline = time.monotonic() + FAILURE_GRACE_S
        while time.monotonic() < deadline:
            if self._stopping.is_set():
                return
            time.sleep(0.1)
        sys.stderr.write(f"[torchbolt] rank {failure.rank} failed and this process did not stop; exiting.\n")
        sys.stderr.flush()
        # os._exit skips atexit: the editor's event stream gets its terminal event now.
        from torchbolt.callbacks.event_stream import report_to_live_streams

        report_to_live_streams(failure)
        self._remove_error_dir()
        os._exit(1)

    def forward_signal(self, signum: int) -> None:
        """Pass a signal the launching process received on to every child."""
        for local, proc in self.children.items():
            if proc.poll() is None:
                self._terminated.add(local)  # stopping on request is not a failure of that rank
                try:
                    proc.send_signal(signum)
                except ProcessLookupError:
                    pass

    def terminate_children(self, grace: float = TERMINATE_GRACE_S) -> None:
        """SIGTERM every live child, SIGKILL those still alive after `grace` seconds."""
        live = [p for p in self.children.values() if p.poll() is None]
        self._terminated.update(local for local, p in self.children.items() if p.poll() is None)
        for proc in live:
            try:
                proc.terminate()
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for proc in live:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def wait_children(self) -> None:
        """Wait for every child to finish (end of the script); raise if one failed."""
        for local, proc in self.children.items():
            rc = proc.wait()
            if rc != 0 and self.failure is None and local not in self._terminated:
                self.failure = self._failure_of(local, rc)
        self._stopping.set()
        if self.failure is not None:
            raise self.failure

    def peer_failure(self, wait: float = 0.0) -> RankFailedError | None:
        """In the launching process, after its run failed: the failure of a rank it started that failed first
        (waiting up to `wait` seconds for one), or None."""
        if not self.launched:
            return None
        return self.failure if self.failure is not None else self._collect_failure(wait)

    def _collect_failure(self, wait: float = 0.0) -> RankFailedError | None:
        """The first child that exited non-zero (waiting up to `wait` seconds for one), recorded once."""
        deadline = time.monotonic() + wait
        while self.failure is None:
            for local, proc in self.children.items():
                rc = proc.poll()
                if rc is not None and rc != 0 and local not in self._terminated:
                    with self._lock:
                        if self.failure is None:
                            self.failure = self._failure_of(local, rc)
                    break
            else:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
        return self.failure

    def _at_exit(self) -> None:
        if not self.children:
            return
        try:
            if self._crashed or self.failure is not None:
                # This process failed; when a child failed first (and this one only lost its connection),
                # that child's traceback is the one that matters.
                failure = self._collect_failure(wait=2.0)
                self._stopping.set()
                self.terminate_children()
                if failure is not None:
                    raise failure
            else:
                self.wait_children()
        except RankFailedError as err:
            sys.stderr.write(f"[torchbolt] {err}\n")
            sys.stderr.flush()
            self._remove_error_dir()
            os._exit(1)
        finally:
            self._stopping.set()
            self._remove_error_dir()

    def _remove_error_dir(self) -> None:
        """Delete the folder the children record their errors in, once every child has ended (each run
        made one under the system's temporary folder, and nothing else removes it)."""
        folder = self.error_dir
        if folder is None or any(proc.poll() is None for proc in self.children.values()):
            return
        self.error_dir = None
        shutil.rmtree(folder, ignore_errors=True)

    def shutdown(self, failed: bool) -> None:
        """The run in this process ended; on failure take the children down now."""
        if failed and self.children:
            self._stopping.set()
            self.terminate_children()


def install_child_guards() -> None:
    """In a rank started by SubprocessLauncher: record an uncaught exception's traceback for the launcher,
    and exit if the launcher disappears (where the parent-death signal is not available)."""
    folder = os.environ.get(ERROR_DIR_VAR)
    if not folder or getattr(install_child_guards, "_done", False):
        return
    install_child_guards._done = True  # type: ignore[attr-defined]
    rank = os.environ.get("RANK", "?")
    previous_hook = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if not Path(folder, f"rank{rank}.txt").exists():  # the Trainer may have recorded the first error already
            _write_rank_error(folder, rank, exc)
        previous_hook(exc_type, exc, tb)

    sys.excepthook = hook
    parent = os.getppid()
    _set_parent_death_signal()
    if os.getppid() != parent:  # the launcher died before the signal was armed
        os._exit(1)

    def watchdog() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watchdog, name="torchbolt-parent-watchdog", daemon=True).start()


def record_rank_error(exc: BaseException) -> None:
    """Write `exc`'s traceback for the launcher now (used when the Trainer catches and re-raises)."""
    folder = os.environ.get(ERROR_DIR_VAR)
    if folder:
        _write_rank_error(folder, os.environ.get("RANK", "?"), exc)


def _write_rank_error(folder: str, rank: str, exc: BaseException) -> None:
    """rank{R}.txt (the formatted traceback) and rank{R}.json (error type, message and frames). The JSON is
    written first: the launcher may read as soon as the text file exists."""
    from torchbolt.events import failed_from_exception

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        failed = failed_from_exception(exc, run_id="", phase="run")
        record = failed.model_dump(mode="json", include={"error_type", "message", "frames"})
        Path(folder, f"rank{rank}.json").write_text(json.dumps(record), encoding="utf-8")
    except Exception:  # noqa: BLE001 - the text traceback below still tells what happened
        pass
    try:
        Path(folder, f"rank{rank}.txt").write_text(text, encoding="utf-8")
    except OSError:
        pass


#: Local rank 0 of a spawned run leaves what it sends back to the launching process in this file of the run's folder.
RESULT_FILE = "rank0-result.pt"
#: Exit status of a spawned rank that was interrupted (SIGINT): not 0, so that the others do not wait for it.
_INTERRUPTED_EXIT = 130


def looks_like_lost_peer(text: str) -> bool:
    """Whether an error (type name and message) reads like a collective that failed because another rank went
    away: gloo and NCCL report a closed connection or a timeout with these words."""
    text = text.lower()
    return any(word in text for word in ("connection", "gloo", "nccl", "peer", "closed", "broken pipe", "timeout",
                                         "disterror", "distbackenderror"))


def _spawn_entry(local: int, launcher: SpawnLauncher, function: Callable[..., Any], args: tuple[Any, ...],
                 collect: Callable[[Any], Any] | None, env: dict[str, str], folder: str,
                 stream_writers: dict[str, Any]) -> None:
    """Body of each started process: take its place in the run, run `function`, and on global rank 0 leave
    `collect(result)` for the launching process (and write the run's event streams into `stream_writers`)."""
    global_rank = launcher.node_rank * launcher.num_processes + local
    os.environ.update(env, LOCAL_RANK=str(local), RANK=str(global_rank))
    install_child_guards()  # traceback files for the launcher; end with it if it disappears
    if stream_writers:
        from torchbolt.callbacks.event_stream import adopt_spawned_streams

        adopt_spawned_streams(stream_writers, rank_zero=global_rank == 0, forked=launcher.start_method == "fork")
    launcher.spawned = True  # this copy runs the function here and starts nothing
    if launcher.start_method != "fork":
        _unshare_modules(args)
    if launcher.strategy is not None:
        launcher.strategy.set_ranks(global_rank, local, launcher.node_rank, launcher.world_size)
    try:
        result = function(*args)
        payload = collect(result) if collect is not None else result
    except KeyboardInterrupt:
        # torch.multiprocessing lets a KeyboardInterrupt end the process with status 0, which the other ranks
        # would wait for in their next collective: leave with a failure status instead.
        sys.exit(_INTERRUPTED_EXIT)
    if local == 0:  # every node's launching process gets its local rank 0's results (as in Lightning)
        import torch

        partial = Path(folder, RESULT_FILE + ".partial")
        torch.save(payload, partial)
        partial.replace(Path(folder, RESULT_FILE))  # the launcher reads a whole file or none
    from torchbolt.strategies.parallel import _destroy_process_group

    # A forked process ends through os._exit (no atexit handlers): leave the process group explicitly.
    _destroy_process_group()


def _unshare_modules(values: Any) -> None:
    """Give every nn.Module in `values` tensors of its own.

    torch.multiprocessing sends tensors to the processes it starts as shared memory, so every rank would
    update the very same parameters (and the launching process would see it). Each rank needs its copy.
    """
    import torch
    from torch import nn

    if isinstance(values, nn.Module):
        with torch.no_grad():
            for tensor in (*values.parameters(), *values.buffers()):
                tensor.data = tensor.data.clone()
    elif isinstance(values, (list, tuple)):
        for value in values:
            _unshare_modules(value)
    elif isinstance(values, dict):
        for value in values.values():
            _unshare_modules(value)


class SpawnLauncher:
    """Runs a function in N new processes through torch.multiprocessing ('spawn', 'fork' or 'forkserver') and
    returns what its local rank 0 sends back (strategies 'ddp_spawn', 'ddp_fork' and 'ddp_notebook').

    The launching process only waits. When a process fails, the others are stopped within seconds and the
    error raised here (`RankFailedError`) names the rank and carries its traceback; Ctrl-C or SIGTERM here
    stops every started process before the launching process ends.
    """

    is_interactive_compatible = True

    def __init__(self, num_processes: int, start_method: str = "spawn", num_nodes: int = 1, node_rank: int = 0,
                 strategy: Any = None) -> None:
        self.num_processes = num_processes
        self.start_method = start_method
        self.num_nodes = num_nodes
        self.node_rank = node_rank
        #: The strategy whose ranks each started process sets (None: the function needs no ranks).
        self.strategy = strategy
        #: True in a started process (its copy of the launcher): the run happens here.
        self.spawned = False
        self.failure: RankFailedError | None = None

    @property
    def world_size(self) -> int:
        return self.num_processes * self.num_nodes

    @property
    def launched(self) -> bool:
        """Always False: no process started by this launcher outlives `launch`."""
        return False

    def shutdown(self, failed: bool) -> None:
        """Nothing to stop: `launch` has already waited for (or stopped) every process it started."""

    def check_can_start(self) -> None:
        """Raise when processes cannot be started from here with this start method."""
        import torch
        import torch.multiprocessing as mp

        name = {"spawn": "ddp_spawn", "fork": "ddp_fork", "forkserver": "ddp_spawn"}[self.start_method]
        if self.start_method != "fork" and getattr(mp.current_process(), "_inheriting", False):
            raise RuntimeError(
                f"Trainer(strategy={name!r}) started a process that imported your script again and reached the "
                "Trainer call at the top level. A script that starts processes with 'spawn' must guard its entry "
                "point:\n\n    if __name__ == \"__main__\":\n        main()\n\nor use strategy='ddp', which runs "
                "the script once per rank."
            )
        if self.start_method == "fork" and torch.cuda.is_initialized():
            raise RuntimeError(
                f"Trainer(strategy={name!r}) starts its processes with fork, but CUDA is already initialized in this "
                "process (a torch.cuda call, or a tensor or module moved to the GPU, before the Trainer call), and a "
                "forked process cannot use it. Remove those CUDA calls (in a notebook: restart the kernel first), or "
                "use strategy='ddp_spawn' or 'ddp'."
            )
        if self.num_nodes > 1 and "MASTER_PORT" not in os.environ:
            raise RuntimeError(
                f"num_nodes={self.num_nodes}: set MASTER_ADDR and MASTER_PORT (the same on every node) and NODE_RANK "
                "(0..num_nodes-1) before starting the command on each node."
            )

    def launch(self, function: Callable[..., Any], *args: Any, collect: Callable[[Any], Any] | None = None,
               parts: list[tuple[str, Any]] | None = None, event_streams: list[Any] | None = None) -> Any:
        """Run `function(*args)` on every rank of this node; return `collect(result)` of this node's local rank 0
        (or its result when `collect` is None).

        `parts` names what is sent to the processes (e.g. [("the LightningModule", model)]): when pickling
        fails, the error names the part (and the attribute inside it) that cannot be pickled. `event_streams`:
        the run's EventStreamCallbacks: global rank 0 writes their events into pipes that this process copies into
        them (see `SpawnedStreams`).
        """
        import shutil

        import torch
        import torch.multiprocessing as mp

        from torchbolt.plugins.environments import find_free_port

        self.check_can_start()
        folder = Path(tempfile.mkdtemp(prefix="torchbolt-spawn-"))
        env = {"MASTER_ADDR": os.environ.get("MASTER_ADDR", "127.0.0.1"),
               "MASTER_PORT": os.environ.get("MASTER_PORT") or str(find_free_port()),
               "WORLD_SIZE": str(self.world_size), "NODE_RANK": str(self.node_rank),
               "LOCAL_WORLD_SIZE": str(self.num_processes), ERROR_DIR_VAR: str(folder)}
        self.failure = None
        streams = None
        if event_streams and self.node_rank == 0:
            from torchbolt.callbacks.event_stream import SpawnedStreams

            streams = SpawnedStreams(event_streams)
        writers = streams.writers if streams is not None else {}
        try:
            try:
                context = mp.start_processes(
                    _spawn_entry, args=(self, function, args, collect, env, str(folder), writers),
                    nprocs=self.num_processes, join=False, start_method=self.start_method)
            except (pickle.PicklingError, TypeError, AttributeError) as err:
                if streams is not None:
                    streams.close(None)  # nothing ran: the caller reports the error as a setup failure
                    streams = None
                if self.start_method == "fork":
                    raise
                raise _unpicklable_error(err, self.start_method, parts or [("the function", function)]) from err
            if streams is not None:
                streams.start()
            try:
                self._wait(context, folder)
            except BaseException as err:
                if streams is not None:
                    streams.close(err)
                    streams = None
                raise
            if streams is not None:
                streams.close(None)
                streams = None
            result = folder / RESULT_FILE
            if not result.exists():
                raise RuntimeError("Every process ended without error, but local rank 0 sent no result back: it may "
                                   "have been stopped from outside.")
            return torch.load(result, map_location="cpu", weights_only=False)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _wait(self, context: Any, folder: Path) -> None:
        """Wait for every process; on a failure (or a signal here) make sure none is left behind."""
        from torch.multiprocessing.spawn import ProcessException

        try:
            restore = _raise_on_sigterm()
        except BaseException:
            _stop_processes(context.processes)
            raise
        try:
            # join() returns False while processes run; on the first failure it stops the others (SIGTERM
            # after `grace_period`, SIGKILL after another) and raises.
            while not context.join(timeout=0.2, grace_period=TERMINATE_GRACE_S / 2):
                pass
        except ProcessException as err:
            self.failure = self._failure_of(err, folder)
            raise self.failure from None
        except BaseException:
            _stop_processes(context.processes)
            raise
        finally:
            restore()

    def peer_failure(self, wait: float = 0.0) -> RankFailedError | None:
        """In a started process whose run failed: the failure another rank recorded for a reason of its own
        (waiting up to `wait` seconds for one), or None. The hooks (the editor's event stream on rank 0) then
        report that rank's error rather than this rank's lost connection."""
        folder = os.environ.get(ERROR_DIR_VAR)
        if not self.spawned or not folder:
            return None
        me = int(os.environ.get("RANK", "-1"))
        # The launching process stops this process TERMINATE_GRACE_S / 2 after the other one ended: answer before.
        deadline = time.monotonic() + min(wait, TERMINATE_GRACE_S / 2 - 0.5)
        while True:
            own = [r for r in _ranks_failed_on_their_own(Path(folder)) if r != me]
            if own and Path(folder, f"rank{own[0]}.txt").exists():  # the text is written last
                rank = own[0]
                details = Path(folder, f"rank{rank}.txt").read_text(encoding="utf-8", errors="replace")
                return RankFailedError(rank, 1, details, _recorded_failures(Path(folder)).get(rank))
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def _failure_of(self, err: Any, folder: Path) -> RankFailedError:
        """The error to show: the rank that failed first for a reason of its own (a rank whose error only
        says that its peer went away is the second to fail), with its traceback."""
        recorded = _recorded_failures(folder)
        first = self.node_rank * self.num_processes + int(err.error_index)
        own = _ranks_failed_on_their_own(folder)
        rank = first if first in own or not own else own[0]
        text_path = folder / f"rank{rank}.txt"
        if text_path.exists():
            details = text_path.read_text(encoding="utf-8", errors="replace")
        elif rank == first and "terminated with the following error" in err.msg:
            details = err.msg.split("terminated with the following error:\n", 1)[1]
        else:
            details = "(no traceback recorded: the process was killed or crashed outside Python; see its output above)\n"
        code = getattr(err, "exit_code", 1) if rank == first else 1
        if code == _INTERRUPTED_EXIT:
            details = "it was interrupted (SIGINT).\n" + details
        return RankFailedError(rank, code, details, recorded.get(rank))


def _recorded_failures(folder: Path) -> dict[int, dict[str, Any]]:
    """What each failed rank recorded in `folder` (rank{R}.json: error type, message, frames), by rank."""
    recorded: dict[int, dict[str, Any]] = {}
    for path in folder.glob("rank*.json"):
        try:
            recorded[int(path.stem[4:])] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return recorded


def _ranks_failed_on_their_own(folder: Path) -> list[int]:
    """Ranks whose recorded error is not only the loss of a peer, in rank order."""
    return [rank for rank, rec in sorted(_recorded_failures(folder).items())
            if not looks_like_lost_peer(f"{rec.get('error_type', '')} {rec.get('message', '')}")]


def _stop_processes(processes: list[Any], grace: float = TERMINATE_GRACE_S) -> None:
    """SIGTERM every live process (a run in fit stops after its current step), SIGKILL those still alive after
    `grace` seconds, and reap them all."""
    live = [p for p in processes if p.is_alive()]
    for proc in live:
        proc.terminate()
    deadline = time.monotonic() + grace
    for proc in live:
        proc.join(max(deadline - time.monotonic(), 0.01))
    for proc in live:
        if proc.is_alive():
            proc.kill()
        proc.join()


def _raise_on_sigterm() -> Callable[[], None]:
    """While the launching process waits, SIGTERM raises SystemExit there (so that the started processes are
    stopped on the way out) instead of ending it at once. Returns the function that restores the handler."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        return lambda: None  # someone handles SIGTERM already (the editor's worker, the user): keep theirs

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _unpicklable_error(err: BaseException, start_method: str, parts: list[tuple[str, Any]]) -> RuntimeError:
    """A clear error naming what of the run could not be pickled (and where inside it), with the ways out."""
    name = "ddp_spawn" if start_method == "spawn" else f"DDPStrategy(start_method={start_method!r})"
    where, reason = "the run", f"{type(err).__name__}: {err}"
    for label, obj in parts:
        found = find_unpicklable(obj)
        if found is not None:
            path, reason = found
            where = f"{label} (at `{path.lstrip('.')}`)" if path else label
            break
    return RuntimeError(
        f"strategy={name!r} sends the run to each new process by pickling it, and {where} cannot be pickled "
        f"({reason}). Use strategy='ddp' (it runs your script again for each rank and pickles nothing), or make it "
        "picklable: define classes and functions at the top level of a module (not inside a function), and keep "
        "no lambdas, open files, locks or generators in attributes."
    )


def find_unpicklable(obj: Any, path: str = "", depth: int = 6) -> tuple[str, str] | None:
    """(path, reason) of the innermost part of `obj` that cannot be pickled, e.g. (".loss_fn", "AttributeError:
    Can't pickle local object ..."), with path "" for `obj` itself; None when `obj` pickles."""
    from multiprocessing.reduction import ForkingPickler

    try:
        ForkingPickler.dumps(obj)
        return None
    except Exception as err:  # noqa: BLE001 - any failure to pickle is what is being looked for
        reason = f"{type(err).__name__}: {err}"
    if depth > 0:
        for name, child in _pickled_parts(obj):
            found = find_unpicklable(child, f"{path}{name}", depth - 1)
            if found is not None:
                return found
    return path, reason


def _pickled_parts(obj: Any) -> list[tuple[str, Any]]:
    """The named values pickling `obj` would pickle (one level down), for `find_unpicklable`."""
    if isinstance(obj, dict):
        return [(f"[{key!r}]", value) for key, value in obj.items()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [(f"[{i}]", value) for i, value in enumerate(obj)]
    if isinstance(obj, (functools.partial,)):
        return [(".func", obj.func), (".args", obj.args), (".keywords", obj.keywords)]
    if getattr(obj, "__self__", None) is not None and callable(obj):  # a bound method pickles its object
        return [(".__self__", obj.__self__)]
    try:
        state = obj.__getstate__()
    except Exception:  # noqa: BLE001
        state = getattr(obj, "__dict__", None)
    if not isinstance(state, dict):
        return []
    parts: list[tuple[str, Any]] = []
    for key, value in state.items():
        if key in ("_modules", "_parameters", "_buffers") and isinstance(value, dict):
            parts.extend((f".{name}", child) for name, child in value.items())  # nn.Module's children by name
        else:
            parts.append((f".{key}", value))
    return parts


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
