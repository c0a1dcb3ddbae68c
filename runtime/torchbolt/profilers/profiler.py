"""The Profiler base class: named actions started and stopped around the work they time, a report at
the end of each entry point (printed, or appended to `dirpath/filename`), and an optional JSON summary
for the editor."""

from __future__ import annotations

import json
import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger(__name__)

#: Environment variable naming a JSON file that receives a short summary (top actions) after each entry
#: point; the editor reads it to show a run's profile. See `Profiler.summary_data`.
SUMMARY_ENV = "TORCHBOLT_PROFILER_SUMMARY"


class Profiler(ABC):
    """Base class: implement `start(action)` / `stop(action)` and `summary()`.

    The Trainer calls `setup(stage, local_rank, log_dir)` when an entry point starts and `describe()`
    when it ends. With both `dirpath` and `filename` the report is appended to
    `<dirpath>/<stage>-<filename>.txt`; otherwise it is logged (INFO, and printed by the Trainer).
    """

    def __init__(self, dirpath: str | Path | None = None, filename: str | None = None) -> None:
        self.dirpath = dirpath
        self.filename = filename
        self._output_file: TextIO | None = None
        self._write_stream: Callable[[str], Any] | None = None
        self._local_rank: int | None = None
        self._stage: str | None = None
        self.report_path: str | None = None

    @abstractmethod
    def start(self, action_name: str) -> None:
        """Start timing `action_name`."""

    @abstractmethod
    def stop(self, action_name: str) -> None:
        """Stop timing `action_name`."""

    def summary(self) -> str:
        """The report text."""
        return ""

    def summary_data(self) -> dict[str, Any]:
        """The report as data for tools: {"actions": [{"name", "mean_s", "count", "total_s", "percent"}]}."""
        return {"actions": []}

    def timer(self, action_name: str) -> Callable[..., Any]:
        """A function `run(fn, *args)` that calls `fn(*args)` timed as `action_name` (start/stop around it).

        The Trainer makes one per action when an entry point starts and calls it on every step; a profiler
        whose recording is cheap to inline (SimpleProfiler) returns one that skips the two method calls.
        """
        start, stop = self.start, self.stop

        def run(fn: Callable[..., Any], *args: Any) -> Any:
            start(action_name)
            try:
                return fn(*args)
            finally:
                stop(action_name)

        return run

    @contextmanager
    def profile(self, action_name: str) -> Generator[str, None, None]:
        """Time the body of a `with` block as `action_name`."""
        try:
            self.start(action_name)
            yield action_name
        finally:
            self.stop(action_name)

    def _rank_zero_info(self, *args: Any, **kwargs: Any) -> None:
        if self._local_rank in (None, 0):
            log.info(*args, **kwargs)

    def _prepare_filename(self, action_name: str | None = None, extension: str = ".txt") -> str:
        """`<stage>-<filename>[-<rank>][-<action>]<extension>`, with characters unsafe in file names replaced."""
        parts = [p for p in (self._stage, self.filename) if p]
        if self._local_rank is not None:
            parts.append(str(self._local_rank))
        if action_name is not None:
            parts.append(action_name)
        base = re.sub(r'[\\/:*?"<>|\n\r\t]', "_", "-".join(parts))
        base = re.sub(r"_+", "_", base).strip() or "profile"
        return base + extension

    def _prepare_streams(self) -> None:
        if self._write_stream is not None:
            return
        if self.filename and self.dirpath:
            os.makedirs(self.dirpath, exist_ok=True)
            path = os.path.join(self.dirpath, self._prepare_filename())
            self.report_path = path
            self._output_file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in teardown
            self._write_stream = self._output_file.write
        else:
            self._write_stream = self._print_report

    def _print_report(self, text: str) -> None:
        # Lightning logs the report at INFO, which its own logging setup shows; print it the same way
        if self._local_rank in (None, 0):
            print(text, flush=True)

    def describe(self) -> None:
        """Write the report (and the JSON summary when asked for), then tear down."""
        self._prepare_streams()
        text = self.summary()
        if text and self._write_stream is not None:
            self._write_stream(text)
        if self._output_file is not None:
            self._output_file.flush()
        self._write_summary_json()
        self.teardown(stage=self._stage)

    def _write_summary_json(self) -> None:
        target = os.environ.get(SUMMARY_ENV)
        if not target or self._local_rank not in (None, 0):
            return
        data = {"profiler": type(self).__name__, "stage": self._stage, "report_file": self.report_path,
                **self.summary_data()}
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(json.dumps(data, indent=1), encoding="utf-8")

    def _stats_to_str(self, stats: dict[str, str]) -> str:
        stage = f"{self._stage.upper()} " if self._stage is not None else ""
        out = [stage + "Profiler Report"]
        for action, value in stats.items():
            header = f"Profile stats for: {action}"
            if self._local_rank is not None:
                header += f" rank: {self._local_rank}"
            out += [header, value]
        return os.linesep.join(out)

    def setup(self, stage: str, local_rank: int | None = None, log_dir: str | None = None) -> None:
        """Called by the Trainer when an entry point starts: reports go under `log_dir` unless `dirpath` is set."""
        self._stage = stage
        self._local_rank = local_rank
        self.dirpath = self.dirpath or log_dir

    def teardown(self, stage: str | None) -> None:
        """Close the report file."""
        self._write_stream = None
        if self._output_file is not None:
            self._output_file.close()
            self._output_file = None

    def __del__(self) -> None:
        try:
            self.teardown(stage=self._stage)
        except Exception:  # noqa: BLE001, S110 - interpreter shutdown
            pass

    @property
    def local_rank(self) -> int:
        return 0 if self._local_rank is None else self._local_rank


class PassThroughProfiler(Profiler):
    """A profiler that records nothing (what `profiler=None` amounts to)."""

    def start(self, action_name: str) -> None:
        return None

    def stop(self, action_name: str) -> None:
        return None
