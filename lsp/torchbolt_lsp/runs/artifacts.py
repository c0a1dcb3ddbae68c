"""Files a run leaves beside its record in `.torchbolt/runs/<id>/`: the LR-find summary and the profiler
summary the runtime writes when `TORCHBOLT_LR_FIND_SUMMARY` / `TORCHBOLT_PROFILER_SUMMARY` name a file
(see docs/profiling-and-tuning.md), and the profiler's text report when it wrote one.

Pure: reading and condensing those files into what a RunRecord keeps, and their hover / hint text.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Environment variables the runtime reads (torchbolt.tuner.lr_finder / torchbolt.profilers.profiler).
LR_FIND_ENV = "TORCHBOLT_LR_FIND_SUMMARY"
PROFILER_ENV = "TORCHBOLT_PROFILER_SUMMARY"
#: File names inside the run's folder.
LR_FIND_FILE = "lr_find.json"
PROFILER_FILE = "profiler.json"
#: The printed report's file in the run's folder (a profiler without `filename` prints its report).
PRINTED_REPORT_FILE = "profiler-report.txt"
#: The first line of every profiler report (`FIT Profiler Report`), and the command line's closing lines that
#: follow a printed report (the report is everything between them).
REPORT_START = re.compile(r"^(?:[A-Z]+ )?Profiler Report\s*$")
REPORT_END = re.compile(r"^(?:Finished fit: |Suggested learning rate: |No learning rate suggested|"
                        r"Learning rate finder skipped|Predicted \d+ batches)")
REPORT_LINE_LIMIT = 5000
#: Actions a record keeps (the runtime writes the top 20) and a hover shows.
KEPT_ACTIONS = 20
SHOWN_ACTIONS = 5


def summary_env(run_dir: str | os.PathLike[str]) -> dict[str, str]:
    """The environment that makes the child write its summaries into the run's folder."""
    return {LR_FIND_ENV: os.path.join(run_dir, LR_FIND_FILE), PROFILER_ENV: os.path.join(run_dir, PROFILER_FILE)}


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("unreadable run artifact %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def read_lr_find(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """`{"suggested_lr", "points", "mode", "file"}` from the run's LR-find summary, or None when absent."""
    path = Path(run_dir) / LR_FIND_FILE
    data = _read_json(path)
    if data is None:
        return None
    lrs = data.get("lr") if isinstance(data.get("lr"), list) else []
    return {"suggested_lr": _number(data.get("suggested_lr")), "points": len(lrs),
            "mode": data.get("mode") if isinstance(data.get("mode"), str) else None, "file": str(path)}


def read_profiler(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The run's profiler summary condensed (actions sorted by total time, at most KEPT_ACTIONS), with
    the text report copied into the run's folder when the profiler wrote one; None when absent."""
    folder = Path(run_dir)
    path = folder / PROFILER_FILE
    data = _read_json(path)
    if data is None:
        return None
    actions = []
    for item in data.get("actions") or ():
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        actions.append({"name": item["name"], "mean_s": _number(item.get("mean_s")),
                        "total_s": _number(item.get("total_s")),
                        "count": item.get("count") if isinstance(item.get("count"), int) else None})
    actions.sort(key=lambda a: -(a["total_s"] or 0.0))
    report = data.get("report_file")
    kept_report = None
    if isinstance(report, str) and os.path.isfile(report):
        # the profiler appends to <dirpath>/<stage>-<filename>.txt: keep this run's copy beside the run
        kept = folder / f"profiler-{os.path.basename(report)}"
        try:
            shutil.copyfile(report, kept)
            kept_report = str(kept)
        except OSError as exc:
            log.warning("cannot copy the profiler report %s: %s", report, exc)
    return {"profiler": data.get("profiler") if isinstance(data.get("profiler"), str) else None,
            "stage": data.get("stage") if isinstance(data.get("stage"), str) else None,
            "total_s": _number(data.get("total_s")), "actions": actions[:KEPT_ACTIONS],
            "report_file": kept_report, "source_report_file": report if isinstance(report, str) else None,
            "file": str(path)}


class PrintedReport:
    """Collects a profiler report the child prints to stdout, line by line as the output arrives."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.open = False

    def feed(self, lines: list[str]) -> None:
        for line in lines:
            if REPORT_START.match(line):  # a new entry point's report replaces the previous one
                self.lines, self.open = [line], True
            elif self.open and REPORT_END.match(line):
                self.open = False
            elif self.open and len(self.lines) < REPORT_LINE_LIMIT:
                self.lines.append(line)

    def keep(self, profiler: dict[str, Any], run_dir: str | os.PathLike[str]) -> None:
        """Write the printed report beside the run when the profiler wrote no report file of its own."""
        if profiler.get("report_file") or not self.lines:
            return
        path = Path(run_dir) / PRINTED_REPORT_FILE
        try:
            path.write_text("\n".join(self.lines).rstrip() + "\n", encoding="utf-8")
        except OSError as exc:
            log.warning("cannot keep the profiler report in %s: %s", path, exc)
            return
        profiler["report_file"] = str(path)


def top_actions(profiler: dict[str, Any], n: int = SHOWN_ACTIONS) -> list[dict[str, Any]]:
    """The `n` actions with the largest total time."""
    return sorted(profiler.get("actions") or (), key=lambda a: -(a.get("total_s") or 0.0))[:n]


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def profiler_section(profiler: dict[str, Any], run_id: str, folder: str, markdown: bool = True) -> str:
    """The hover section of a profiled run: its top actions by total time (name, mean, total, count)."""
    name = profiler.get("profiler") or "profiler"
    total = profiler.get("total_s")
    head = f"{name} of run `{run_id}`" if markdown else f"{name} of run {run_id}"
    head += f" ({profiler.get('stage') or 'run'}" + (f", {total:.3g} s profiled)" if total is not None else ")")
    lines = [f"**{head}**" if markdown else head]
    actions = top_actions(profiler)
    if not actions:
        lines.append("no actions were recorded")
    elif markdown:
        lines += ["", "| action | mean (s) | total (s) | count |", "|---|---:|---:|---:|"]
        lines += [f"| `{a['name']}` | {_seconds(a.get('mean_s'))} | {_seconds(a.get('total_s'))} | "
                  f"{a.get('count') if a.get('count') is not None else '–'} |" for a in actions]
    else:
        lines += [f"  {a['name']}: mean {_seconds(a.get('mean_s'))} s, total {_seconds(a.get('total_s'))} s, "
                  f"count {a.get('count') if a.get('count') is not None else '–'}" for a in actions]
    report = profiler.get("report_file") or profiler.get("file")
    if report:
        shown = os.path.relpath(report, folder) if folder else report
        lines += ["", f"report: `{shown}`" if markdown else f"report: {shown}"]
    return "\n".join(lines)


def lr_literal(value: float) -> str:
    """A learning rate as Python source: 3 significant digits, always a float (`0.00123`, `1e-05`, `1.0`)."""
    text = f"{value:.3g}"
    return text if any(c in text for c in ".eEn") else text + ".0"


def lr_find_text(lr_find: dict[str, Any]) -> str:
    """`suggested lr 0.00123 (100 points)`, or why there is no suggestion."""
    points = lr_find.get("points") or 0
    lr = lr_find.get("suggested_lr")
    if lr is None:
        return f"no lr suggested ({points} points are too few: raise num_training or add training batches)"
    return f"suggested lr {lr_literal(lr)} ({points} points)"
