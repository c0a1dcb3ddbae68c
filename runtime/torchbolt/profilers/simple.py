"""SimpleProfiler: wall time per action (mean, count, total, share of the run)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torchbolt.profilers.profiler import Profiler

_now = time.perf_counter  # read on every start/stop: a module global is one lookup, `time.perf_counter` two


def _already_started(action_name: str) -> ValueError:
    return ValueError(f"Attempted to start {action_name} which has already started.")


def _never_started(action_name: str) -> ValueError:
    return ValueError(f"Attempting to stop recording an action ({action_name}) which was never started.")


class SimpleProfiler(Profiler):
    """Times every action with `time.perf_counter` and reports, per action, the mean duration and total
    time, and with `extended=True` (the default) also the number of calls and the percentage of the run."""

    def __init__(self, dirpath: str | Path | None = None, filename: str | None = None, extended: bool = True) -> None:
        super().__init__(dirpath=dirpath, filename=filename)
        self.current_actions: dict[str, float] = {}
        self.recorded_durations: dict[str, list[float]] = {}
        self.extended = extended
        self.start_time = time.perf_counter()

    def start(self, action_name: str) -> None:
        if action_name in self.current_actions:
            raise _already_started(action_name)
        self.current_actions[action_name] = _now()

    def stop(self, action_name: str) -> None:
        end = _now()
        started = self.current_actions.pop(action_name, None)
        if started is None:
            raise _never_started(action_name)
        durations = self.recorded_durations.get(action_name)
        if durations is None:
            self.recorded_durations[action_name] = [end - started]
        else:
            durations.append(end - started)

    def timer(self, action_name: str) -> Callable[..., Any]:
        """`run(fn, *args)` timed as `action_name`: `start` and `stop`'s bookkeeping inline.

        The Trainer calls these on every hook and step (about 20 per training batch), where two method
        calls per action were most of the profiler's cost. A subclass that overrides `start` or `stop`
        gets the generic timer, so its overrides still run.
        """
        cls = type(self)
        if cls.start is not SimpleProfiler.start or cls.stop is not SimpleProfiler.stop:
            return super().timer(action_name)
        # The dictionaries are bound once: they live as long as the profiler (nothing replaces them).
        current = self.current_actions
        recorded = self.recorded_durations
        now = _now

        # positional arguments only: accepting **kwargs costs a dictionary on every call
        def run(fn: Callable[..., Any], *args: Any) -> Any:
            if action_name in current:
                raise _already_started(action_name)
            current[action_name] = start = now()
            try:
                return fn(*args)
            finally:
                duration = now() - start
                # try/except and `del` rather than lookups with defaults or `pop`: no method call, and free
                # when nothing is missing (every call but an action's first)
                try:
                    del current[action_name]
                except KeyError:
                    raise _never_started(action_name) from None  # what stop() raises after the same misuse
                try:
                    recorded[action_name].append(duration)
                except KeyError:
                    recorded[action_name] = [duration]

        return run

    def _rows(self) -> tuple[list[tuple[str, float, int, float, float]], float]:
        """(action, mean, count, total, percent) sorted by total time, and the run's duration."""
        run = time.perf_counter() - self.start_time
        rows = []
        for action, durations in self.recorded_durations.items():
            total = math.fsum(durations)
            rows.append((action, total / len(durations), len(durations), total, 100.0 * total / run))
        rows.sort(key=lambda r: r[4], reverse=True)
        return rows, run

    def summary_data(self, top: int = 20) -> dict[str, Any]:
        rows, run = self._rows()
        return {"total_s": run, "actions": [
            {"name": a, "mean_s": m, "count": n, "total_s": t, "percent": p} for a, m, n, t, p in rows[:top]]}

    def summary(self) -> str:
        sep = os.linesep
        out = (f"{self._stage.upper()} " if self._stage is not None else "") + f"Profiler Report{sep}"
        if not self.recorded_durations:
            return out
        width = max(len(k) for k in self.recorded_durations)
        if self.extended:
            def row(action: str, mean: str, calls: str, total: str, share: str) -> str:
                return f"{sep}|  {action:<{width}s}\t|  {mean:<15}\t|  {calls:<15}\t|  {total:<15}\t|  {share:<15}\t|"

            header = row("Action", "Mean duration (s)", "Num calls", "Total time (s)", "Percentage %")
            rule = f"{sep}{'-' * len(header.expandtabs())}"
            rows, run = self._rows()
            out += rule + header + rule
            out += row("Total", "-", f"{sum(r[2] for r in rows)}", f"{run:.5}", "100 %") + rule
            for action, mean, calls, total, share in rows:
                out += row(action, f"{mean:.5}", f"{calls}", f"{total:.5}", f"{share:.5}")
            out += rule
        else:
            def row3(action: str, mean: str, total: str) -> str:
                return f"{sep}|  {action:<{width}s}\t|  {mean:<15}\t|  {total:<15}\t|"

            header = row3("Action", "Mean duration (s)", "Total time (s)")
            rule = f"{sep}{'-' * len(header.expandtabs())}"
            out += rule + header + rule
            plain = sorted(((a, math.fsum(d) / len(d), math.fsum(d)) for a, d in self.recorded_durations.items()),
                           key=lambda r: r[1], reverse=True)
            for action, mean, total in plain:
                out += row3(action, f"{mean:.5}", f"{total:.5}")
            out += rule
        return out + sep
