"""Run history on disk: `<workspace>/.torchbolt/runs/<run_id>/events.jsonl` and `summary.json`.

The event log is the raw stream exactly as the runtime wrote it (appended in batches, never re-encoded);
the summary is rewritten atomically when a run ends (and periodically while it runs).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import BinaryIO

from .record import RunRecord

log = logging.getLogger(__name__)

RUNS_DIR = os.path.join(".torchbolt", "runs")


class RunStore:
    """The runs folder of one workspace folder."""

    def __init__(self, workspace: str | os.PathLike[str]) -> None:
        self.workspace = Path(workspace)
        self.root = self.workspace / RUNS_DIR

    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    def open_events(self, run_id: str) -> BinaryIO:
        """Open the run's events.jsonl for appending (creates the folder)."""
        folder = self.run_dir(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        return open(folder / "events.jsonl", "ab", buffering=1 << 16)

    def write_summary(self, record: RunRecord) -> Path:
        """Write summary.json atomically (write a temp file, then rename)."""
        folder = self.run_dir(record.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "summary.json"
        tmp = folder / "summary.json.tmp"
        tmp.write_text(json.dumps(record.to_summary(), indent=1, allow_nan=False, default=str), encoding="utf-8")
        os.replace(tmp, path)
        return path

    def load_all(self) -> list[RunRecord]:
        """Every readable stored run, oldest first; unreadable summaries are skipped with a log line."""
        if not self.root.is_dir():
            return []
        records: list[RunRecord] = []
        for entry in self.root.iterdir():
            path = entry / "summary.json"
            if not path.is_file():
                continue
            try:
                records.append(RunRecord.from_summary(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("skipping run summary %s: %s", path, exc)
        records.sort(key=lambda r: (r.started_at, r.run_id))
        return records
