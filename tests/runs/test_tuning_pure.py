"""Pure parts of Find LR and profiled runs: locating `lr=`, hint labels, the run artifacts, the record."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from torchbolt import events as ev
from torchbolt_lsp.features.inlay_hints import lr_label
from torchbolt_lsp.runs import format as fmt
from torchbolt_lsp.runs.anchors import lr_anchors
from torchbolt_lsp.runs.artifacts import (
    LR_FIND_ENV,
    PROFILER_ENV,
    PrintedReport,
    lr_find_text,
    lr_literal,
    profiler_section,
    read_lr_find,
    read_profiler,
    summary_env,
    top_actions,
)
from torchbolt_lsp.runs.manager import RunCommandError, lr_find_flags
from torchbolt_lsp.runs.record import LR_FIND, RunRecord

SOURCE = '''\
import torch


class A:
    def __init__(self, lr: float = 0.1, *, wd=0.0):
        super().__init__()
        self.save_hyperparameters()
        self.rate = 3e-4

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)
        other = torch.optim.Adam(self.head.parameters(), lr=self.hparams.lr)
        third = torch.optim.Adam(self.tail.parameters(), lr=self.hparams["wd"])
        fourth = torch.optim.Adam(self.x.parameters(), lr=self.rate)
        fifth = torch.optim.Adam(self.y.parameters(), lr=base * 2)
        return [opt, other, third, fourth, fifth]

    def training_step(self, batch, batch_idx):
        torch.optim.SGD([], lr=1)  # not in configure_optimizers: no anchor


class B:
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3)


class C:
    def configure_optimizers(self):
        first = torch.optim.SGD(self.parameters(), 0.02, momentum=0.9)
        second = AdamW(self.head.parameters(), self.hparams.lr)
        third = make(self.parameters(), 0.5)  # not a torch optimizer: its second argument is not a rate
        return [first, second, third, torch.optim.Adam(*groups)]
'''


def test_lr_anchors_find_every_lr_keyword_of_configure_optimizers() -> None:
    tree = ast.parse(SOURCE)
    anchors = lr_anchors(tree, "A", SOURCE)
    assert [(a.source, a.literal, a.attr) for a in anchors] == [
        ("0.05", 0.05, None), ("self.hparams.lr", None, "lr"), ('self.hparams["wd"]', None, "wd"),
        ("self.rate", None, "rate"), ("base * 2", None, None)]
    lines = SOURCE.splitlines()
    first = anchors[0]
    assert lines[first.line - 1][first.col:first.end_col] == "0.05"
    assert anchors[1].where == "the default of lr in __init__ (line 5) or --model.lr"
    assert anchors[2].where == "the default of wd in __init__ (line 5) or --model.wd"  # keyword-only
    assert anchors[3].where == "self.rate = ... (line 8)"
    assert [(a.source, a.literal) for a in lr_anchors(tree, "B", SOURCE)] == [("1e-3", 0.001)]
    assert lr_anchors(tree, "Missing", SOURCE) == [] and lr_anchors(None, "A", SOURCE) == []


def test_lr_anchors_find_a_torch_optimizers_positional_learning_rate() -> None:
    anchors = lr_anchors(ast.parse(SOURCE), "C", SOURCE)
    assert [(a.source, a.literal, a.attr) for a in anchors] == [("0.02", 0.02, None), ("self.hparams.lr", None, "lr")]
    line = SOURCE.splitlines()[anchors[0].line - 1]
    assert line[anchors[0].col:anchors[0].end_col] == "0.02"


def test_lr_find_settings_from_pyproject_under_the_command_options(tmp_path: Path) -> None:
    from torchbolt_lsp.runs.settings import SettingsError, load_pyproject, merge_settings

    (tmp_path / "pyproject.toml").write_text(
        "[tool.torchbolt.run.lr_find]\nnum_training = 40\nmin_lr = 1e-6\n", encoding="utf-8")
    settings = load_pyproject(tmp_path)
    assert settings.lr_find == {"num_training": 40, "min_lr": 1e-6}
    assert lr_find_flags({"num_training": 10}, settings.lr_find) == [
        "--lr_find.num_training", "10", "--lr_find.min_lr", "1e-06"]
    assert merge_settings(settings, {"lr_find": {"mode": "linear"}}, "editor").lr_find == {
        "num_training": 40, "min_lr": 1e-6, "mode": "linear"}
    (tmp_path / "pyproject.toml").write_text("[tool.torchbolt.run.lr_find]\nnum_trainig = 40\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="'num_trainig' is not a Tuner.lr_find argument; did you mean 'num_training'"):
        load_pyproject(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.torchbolt.run]\nlr_find = 3\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="lr_find must be a table"):
        load_pyproject(tmp_path)


def _record(lr_find: dict | None) -> RunRecord:
    return RunRecord(run_id="r1", key="/w/m.py::A", fn=LR_FIND, uri="file:///w/m.py", label="A", lr_find=lr_find)


def test_lr_labels_say_the_suggestion_and_where_to_change_it() -> None:
    anchors = lr_anchors(ast.parse(SOURCE), "A", SOURCE)
    rec = _record({"suggested_lr": 0.00123456, "points": 87})
    assert lr_label(anchors[0], rec) == "Find LR: suggested lr 0.00123 (87 points)"
    assert lr_label(anchors[1], rec) == ("Find LR: suggested lr 0.00123 (87 points) · lr is self.hparams.lr: change "
                                         "the default of lr in __init__ (line 5) or --model.lr")
    assert lr_label(anchors[4], rec).endswith("lr is base * 2: change it where that value is set")
    none = _record({"suggested_lr": None, "points": 4})
    assert lr_label(anchors[1], none) == ("Find LR: no lr suggested (4 points are too few: raise num_training or add "
                                          "training batches)")


@pytest.mark.parametrize(("value", "text"), [(0.00123456, "0.00123"), (1.2e-05, "1.2e-05"), (1.0, "1.0"),
                                              (3.0, "3.0"), (0.1, "0.1"), (2.5e-8, "2.5e-08")])
def test_lr_literal_is_python_float_source(value: float, text: str) -> None:
    assert lr_literal(value) == text
    assert isinstance(ast.literal_eval(text), float)


def test_read_lr_find(tmp_path: Path) -> None:
    assert read_lr_find(tmp_path) is None
    (tmp_path / "lr_find.json").write_text(json.dumps({"suggested_lr": 0.01, "mode": "linear", "lr": [1, 2, 3],
                                                       "loss": [3, 2, 1]}))
    assert read_lr_find(tmp_path) == {"suggested_lr": 0.01, "points": 3, "mode": "linear",
                                      "file": str(tmp_path / "lr_find.json")}
    (tmp_path / "lr_find.json").write_text("{not json")
    assert read_lr_find(tmp_path) is None  # a broken file is skipped, not an error
    assert lr_find_text({"suggested_lr": 0.01, "points": 3}) == "suggested lr 0.01 (3 points)"


def test_read_profiler_sorts_keeps_and_copies_the_report(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    report = tmp_path / "logs" / "fit-perf.txt"
    report.parent.mkdir()
    report.write_text("FIT Profiler Report\n...")
    actions = [{"name": f"a{i}", "mean_s": i / 10, "count": i, "total_s": i * i / 10, "percent": 1.0}
               for i in range(1, 25)]
    actions.append({"name": 7})  # malformed entries are dropped
    (run_dir / "profiler.json").write_text(json.dumps({"profiler": "SimpleProfiler", "stage": "fit",
                                                       "report_file": str(report), "total_s": 3.0,
                                                       "actions": actions}))
    prof = read_profiler(run_dir)
    assert prof is not None
    assert len(prof["actions"]) == 20 and prof["actions"][0]["name"] == "a24"
    assert prof["report_file"] == str(run_dir / "profiler-fit-perf.txt")
    assert (run_dir / "profiler-fit-perf.txt").read_text().startswith("FIT Profiler Report")
    assert [a["name"] for a in top_actions(prof)] == ["a24", "a23", "a22", "a21", "a20"]

    text = profiler_section(prof, "r9", str(tmp_path))
    assert text.splitlines()[0] == "**SimpleProfiler of run `r9` (fit, 3 s profiled)**"
    assert "| `a24` | 2.4 | 57.6 | 24 |" in text and "a19" not in text
    assert text.endswith("report: `run/profiler-fit-perf.txt`")
    plain = profiler_section(prof, "r9", str(tmp_path), markdown=False)
    assert "  a24: mean 2.4 s, total 57.6 s, count 24" in plain and "`" not in plain
    assert read_profiler(tmp_path / "nothing") is None


def test_summary_env_points_into_the_run_folder(tmp_path: Path) -> None:
    env = summary_env(tmp_path)
    assert env == {LR_FIND_ENV: str(tmp_path / "lr_find.json"), PROFILER_ENV: str(tmp_path / "profiler.json")}


def test_record_keeps_lr_find_and_profiler_and_stays_an_lr_find_run() -> None:
    rec = _record(None)
    # the runtime reports the fit lr_find runs in: the record stays a Find LR run
    rec.apply(ev.RunStarted(run_id="r1", fn="fit", target="m.py::A", max_epochs=3, max_steps=-1,
                            num_training_batches=4, log_dir=None, pid=1, torchbolt_version="x"))
    assert rec.fn == LR_FIND and rec.status == "running"
    rec.lr_find = {"suggested_lr": 0.01, "points": 3, "mode": "exponential", "file": "f"}
    rec.profiler = {"profiler": "SimpleProfiler", "actions": [{"name": "x", "mean_s": 1.0, "total_s": 2.0,
                                                               "count": 2}]}
    back = RunRecord.from_summary(json.loads(json.dumps(rec.to_summary())))
    assert back.lr_find == rec.lr_find and back.profiler == rec.profiler and back.fn == LR_FIND
    fit = RunRecord(run_id="r2", key="k", fn="fit", uri="u", label="A")
    fit.apply(ev.RunStarted(run_id="r2", fn="validate", target="m.py::A", max_epochs=3, max_steps=-1,
                            num_training_batches=4, log_dir=None, pid=1, torchbolt_version="x"))
    assert fit.fn == "validate"  # other runs still take the runtime's word


def test_lr_find_flags_and_titles() -> None:
    assert lr_find_flags(None) == []
    assert lr_find_flags({"num_training": 50, "early_stop_threshold": None, "mode": "linear"}) == [
        "--lr_find.num_training", "50", "--lr_find.early_stop_threshold", "null", "--lr_find.mode", "linear"]
    with pytest.raises(RunCommandError, match="'lrFind' has no option 'steps'"):
        lr_find_flags({"steps": 3})
    with pytest.raises(RunCommandError, match="must be an object"):
        lr_find_flags([1])
    assert fmt.fn_title(LR_FIND) == "Find LR" and fmt.fn_title("fit") == "Fit"


def test_printed_report_is_kept_when_the_profiler_wrote_no_file(tmp_path: Path) -> None:
    report = PrintedReport()
    report.feed(["Epoch 0 done", "VALIDATE Profiler Report", "old"])
    report.feed(["FIT Profiler Report", "", "| Action | Mean duration (s) |"])
    report.feed(["| run_training_epoch | 0.1 |", "", "Finished fit: 1 epoch(s), 3 step(s).", "user print"])
    prof: dict = {"report_file": None}
    report.keep(prof, tmp_path)
    assert prof["report_file"] == str(tmp_path / "profiler-report.txt")
    assert (tmp_path / "profiler-report.txt").read_text() == (
        "FIT Profiler Report\n\n| Action | Mean duration (s) |\n| run_training_epoch | 0.1 |\n")
    written: dict = {"report_file": "/elsewhere/fit-perf.txt"}  # the profiler's own file wins
    PrintedReport().keep(written, tmp_path / "none")
    assert written["report_file"] == "/elsewhere/fit-perf.txt"
