"""Run history on disk: `<workspace>/.torchbolt/runs/<run_id>/events.jsonl` and `summary.json`.

The event log is the raw stream exactly as the runtime wrote it (appended in batches, never re-encoded);
the summary is rewritten atomically when a run ends (and periodically while it runs). `prune` keeps the
folder bounded: the last N runs, the best runs of each target, and a size cap.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable
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

    def size_of(self, run_id: str) -> int:
        """Bytes stored for one run (its folder's files)."""
        total = 0
        try:
            with os.scandir(self.run_dir(run_id)) as entries:
                for entry in entries:
                    if entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            pass
        return total

    def remove(self, run_id: str) -> bool:
        """Delete one run's folder; only a direct child of the runs folder (a summary's run_id is data)."""
        folder = self.run_dir(run_id)
        if os.sep in run_id or run_id in ("", ".", "..") or (os.altsep and os.altsep in run_id):
            return False
        if not folder.is_dir() or folder.is_symlink():
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return not folder.exists()

    def prune(self, records: Iterable[RunRecord], keep_last: int, keep_best: int, max_bytes: int,
              keep: set[str], score: Callable[[RunRecord], float | None]) -> list[str]:
        """Delete stored runs outside the policy and return their ids (oldest first).

        Kept: runs in `keep` (active ones), the newest `keep_last`, and per target the `keep_best` runs
        with the best `score` (lower is better: callers negate "max" metrics). Then, while the folder is
        over `max_bytes`, the oldest remaining runs go too, except `keep` and the newest run.
        """
        ordered = sorted(records, key=lambda r: (r.started_at, r.run_id))
        protected = set(keep) | {r.run_id for r in ordered[-keep_last:]} if keep_last > 0 else set(keep)
        by_target: dict[str, list[tuple[float, RunRecord]]] = {}
        for rec in ordered:
            value = score(rec) if rec.status in ("success", "interrupted") else None
            if value is not None:
                by_target.setdefault(rec.key, []).append((value, rec))
        for scored in by_target.values():
            scored.sort(key=lambda pair: pair[0])
            protected |= {rec.run_id for _, rec in scored[:keep_best]}
        removed = [r.run_id for r in ordered if r.run_id not in protected and self.remove(r.run_id)]
        remaining = [r for r in ordered if r.run_id not in removed]
        sizes = {r.run_id: self.size_of(r.run_id) for r in remaining}
        total = sum(sizes.values())
        newest = remaining[-1].run_id if remaining else None
        for rec in remaining:
            if total <= max_bytes:
                break
            if rec.run_id in keep or rec.run_id == newest:
                continue
            if self.remove(rec.run_id):
                removed.append(rec.run_id)
                total -= sizes[rec.run_id]
        return removed
