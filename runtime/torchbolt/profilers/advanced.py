"""AdvancedProfiler: a cProfile report per action (which functions took the time inside each hook)."""

from __future__ import annotations

import cProfile
import io
import os
import pstats
from pathlib import Path
from typing import Any

from torchbolt.profilers.profiler import Profiler


class AdvancedProfiler(Profiler):
    """Runs one `cProfile.Profile` per action and reports each one's functions sorted by cumulative time.

    `line_count_restriction` limits each report (an int is a number of lines, a float a fraction);
    `dump_stats=True` also writes each action's raw `.prof` file to `dirpath` (open it with snakeviz or
    `pstats`).
    """

    def __init__(self, dirpath: str | Path | None = None, filename: str | None = None,
                 line_count_restriction: float = 1.0, dump_stats: bool = False) -> None:
        super().__init__(dirpath=dirpath, filename=filename)
        self.profiled_actions: dict[str, cProfile.Profile] = {}
        self.line_count_restriction = line_count_restriction
        self.dump_stats = dump_stats

    def start(self, action_name: str) -> None:
        # cProfile allows one active profiler per thread: pause the enclosing action's
        for profile in self.profiled_actions.values():
            profile.disable()
        profile = self.profiled_actions.get(action_name)
        if profile is None:
            profile = self.profiled_actions[action_name] = cProfile.Profile()
        profile.enable()

    def stop(self, action_name: str) -> None:
        profile = self.profiled_actions.get(action_name)
        if profile is None:
            raise ValueError(f"Attempting to stop recording an action ({action_name}) which was never started.")
        profile.disable()

    def _dump(self, action_name: str, profile: cProfile.Profile) -> None:
        if not self.dirpath:
            return
        os.makedirs(self.dirpath, exist_ok=True)
        profile.dump_stats(os.path.join(self.dirpath, self._prepare_filename(action_name=action_name,
                                                                            extension=".prof")))

    def _stats(self, profile: cProfile.Profile) -> pstats.Stats:
        return pstats.Stats(profile, stream=io.StringIO()).strip_dirs().sort_stats("cumulative")

    def summary_data(self, top: int = 20) -> dict[str, Any]:
        totals = []
        for name, profile in self.profiled_actions.items():
            try:
                stats = self._stats(profile)
            except TypeError:  # never enabled: no data
                continue
            totals.append({"name": name, "total_s": stats.total_tt, "count": None, "mean_s": None, "percent": None})
        totals.sort(key=lambda r: r["total_s"], reverse=True)
        return {"actions": totals[:top]}

    def summary(self) -> str:
        recorded: dict[str, str] = {}
        for name, profile in self.profiled_actions.items():
            if self.dump_stats:
                self._dump(name, profile)
            stream = io.StringIO()
            try:
                stats = pstats.Stats(profile, stream=stream).strip_dirs().sort_stats("cumulative")
            except TypeError:
                continue
            stats.print_stats(self.line_count_restriction)
            recorded[name] = stream.getvalue()
        return self._stats_to_str(recorded)

    def teardown(self, stage: str | None) -> None:
        super().teardown(stage=stage)
        self.profiled_actions.clear()

    def __reduce__(self) -> tuple[Any, ...]:
        # cProfile objects cannot be pickled: rebuild an empty profiler with the same settings
        return (self.__class__, (), {"dirpath": self.dirpath, "filename": self.filename,
                                     "line_count_restriction": self.line_count_restriction,
                                     "dump_stats": self.dump_stats})
