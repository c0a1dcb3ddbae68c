"""Pure server-side logic of runs: formatting, settings, traceback mapping, records, anchors, targets."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest
from torchbolt import events as ev
from torchbolt_lsp.analysis.facts import extract_facts
from torchbolt_lsp.runs import format as fmt
from torchbolt_lsp.runs.anchors import metric_anchors
from torchbolt_lsp.runs.launcher import build_command, parse_python_traceback, trainer_flag_value
from torchbolt_lsp.runs.record import RunRecord
from torchbolt_lsp.runs.settings import (
    RunSettings,
    SettingsError,
    load_pyproject,
    merge_settings,
    trainer_arg_line,
)
from torchbolt_lsp.runs.store import RunStore
from torchbolt_lsp.runs.targets import class_targets, missing_data_message, script_calls
from torchbolt_lsp.runs.tracebacks import failure_diagnostics, is_workspace_file
from torchbolt_lsp.workspace_index import WorkspaceIndex


# --------------------------------------------------------------------------------------------- format
@pytest.mark.parametrize("values, spark", [
    ([], ""),
    ([1.0], "▄"),
    ([2.0, 2.0, 2.0], "▄▄▄"),
    ([0.0, 1.0], "▁█"),
    ([5.0, 4.0, 3.0, 2.0, 1.0], "█▆▅▃▁"),
    ([1.0, None, float("nan"), 3.0], "▁█"),
    (list(range(20)), "▁▂▃▄▅▆▇█"),  # the last 8 points only
])
def test_sparkline(values, spark) -> None:
    assert fmt.sparkline(values) == spark


@pytest.mark.parametrize("values, arrow", [
    ([], ""), ([1.0], ""), ([1.0, 0.5], "↓"), ([0.5, 1.0], "↑"), ([0.5, 0.5], "→"), ([0.5, None, 0.2], "↓"),
])
def test_trend(values, arrow) -> None:
    assert fmt.trend(values) == arrow


@pytest.mark.parametrize("name, mode", [
    ("val_loss", "min"), ("train_acc", "max"), ("val_f1", "max"), ("error_rate", "min"), ("lr", "min"),
    ("val_accuracy_loss", "min"),
])
def test_metric_mode_heuristic(name, mode) -> None:
    assert fmt.metric_mode(name) == mode


def test_metric_mode_follows_the_checkpoint_monitor() -> None:
    assert fmt.metric_mode("val_loss", monitor="val_loss", monitor_mode="max") == "max"


def test_hint_label_matches_the_documented_shape() -> None:
    label = fmt.hint_label("val_loss", [0.5, 0.4, 0.3, 0.219, 0.231], "min")
    assert label == "val_loss 0.231 ↑ █▆▃▁▁ best 0.219"
    assert fmt.hint_label("loss", [0.7]) == "loss 0.7"


@pytest.mark.parametrize(("args", "label"), [
    (("cpu", 2, [0, 1], "ddp", "32-true", 1, 2), "cpu ×2 · ddp · 32-true"),
    (("cpu", 1, [0], "single_device", "32-true", 1, 1), "cpu · 32-true"),
    (("cuda", 1, [1], "single_device", "bf16-mixed", 1, 1), "cuda:1 · bf16-mixed"),
    (("cuda", 2, [0, 1], "fsdp", "16-mixed", 2, 4), "cuda ×2 (0,1) · 2 nodes · 4 processes · fsdp · 16-mixed"),
    (("mps", None, None, None, None, None, None), "mps"),
    ((None, 2, [0, 1], "ddp", "32-true", 1, 2), None),
])
def test_hardware_label(args, label) -> None:
    assert fmt.hardware_label(*args) == label


def test_format_value() -> None:
    assert [fmt.format_value(v) for v in (0.23123, 1234567.0, 1.5e-5, None, float("inf"))] == \
        ["0.2312", "1.235e+06", "1.5e-05", "nan", "inf"]


def test_progress_message_and_percentage() -> None:
    assert fmt.progress_message(2, 10, 120, 400, {"loss": 0.231}) == "epoch 3/10 · step 120/400 · loss 0.231"
    assert fmt.progress_message(0, None, 5, None, {}) == "epoch 1 · step 5"
    assert fmt.progress_message(0, 3, 2, 8, {}, stage="sanity_check") == "sanity check · step 2/8"
    assert fmt.progress_percentage(2, 10, 200, 400) == 25
    assert fmt.progress_percentage(0, 10, 0, 0, global_step=50, max_steps=100) == 50
    assert fmt.progress_percentage(None, None, None, None) is None


# ------------------------------------------------------------------------------------------- settings
def test_pyproject_settings_are_parsed_and_checked(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.torchbolt.run]\ninterpreter = ".venv/bin/python"\ndata = "d.py::D"\n'
        'env = { A = "1", B = 2 }\n\n[tool.torchbolt.run.trainer]\nmax_epochs = 3\nlimit_train_batches = 0.5\n')
    s = load_pyproject(tmp_path)
    assert s.trainer == {"max_epochs": 3, "limit_train_batches": 0.5}
    assert s.data == "d.py::D" and s.env == {"A": "1", "B": "2"}
    assert s.resolved_interpreter(str(tmp_path)) == str(tmp_path / ".venv/bin/python")
    assert trainer_arg_line(tmp_path, "limit_train_batches") == 10


def test_settings_layers_merge_by_key(tmp_path: Path) -> None:
    base = RunSettings(data="a.py::A", trainer={"max_epochs": 3, "accelerator": "cpu"}, env={"X": "1"})
    merged = merge_settings(base, {"trainer": {"max_epochs": 1}, "env": {"Y": "2"}, "interpreter": None},
                            "command overrides")
    assert merged.trainer == {"max_epochs": 1, "accelerator": "cpu"}
    assert merged.env == {"X": "1", "Y": "2"} and merged.data == "a.py::A"
    assert RunSettings().resolved_interpreter(str(tmp_path)) == __import__("sys").executable
    assert RunSettings(interpreter="python3").resolved_interpreter("/w") == "python3"  # a bare name: PATH lookup


@pytest.mark.parametrize("toml, message", [
    ('[tool.torchbolt.run.trainer]\nmax_epoch = 3\n', "did you mean 'max_epochs'"),
    ('[tool.torchbolt.run]\nintepreter = "python"\n', "unknown key"),
    ('[tool.torchbolt.run]\ndata = 3\n', "data must be"),
    ('[tool.torchbolt.run\n', "cannot read it as TOML"),
])
def test_bad_settings_name_the_problem(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(toml)
    with pytest.raises(SettingsError, match=message):
        load_pyproject(tmp_path)


def test_no_pyproject_means_defaults(tmp_path: Path) -> None:
    assert load_pyproject(tmp_path) == RunSettings()


# ----------------------------------------------------------------------------------------- tracebacks
def _failed(frames: list[tuple[str, int, str]], phase: str = "run") -> ev.Failed:
    return ev.Failed(run_id="r", error_type="ZeroDivisionError", message="division by zero\nmore",
                     frames=[ev.Frame(file=f, line=ln, function=fn, code=f"code {ln}") for f, ln, fn in frames],
                     phase=phase)


def test_traceback_maps_to_the_raising_line_with_related_frames(tmp_path: Path) -> None:
    ws = str(tmp_path)
    model, helper = os.path.join(ws, "model.py"), os.path.join(ws, "helpers.py")
    venv = os.path.join(ws, ".venv", "lib", "python3.11", "site-packages", "torch", "nn.py")
    failed = _failed([("/usr/lib/python3.11/runpy.py", 10, "run"), (model, 20, "training_step"),
                      (helper, 5, "compute"), (venv, 99, "forward")])
    diags = failure_diagnostics(failed, [ws])
    main = diags[0]
    assert (main.path, main.line, main.severity) == (helper, 4, "error")
    assert main.message == "ZeroDivisionError: division by zero (during the run)"
    assert [(r.path, r.line) for r in main.related] == [(model, 19)]
    assert [(d.path, d.line, d.severity) for d in diags[1:]] == [(model, 19, "information")]


def test_a_failure_on_another_rank_names_it(tmp_path: Path) -> None:
    model = os.path.join(str(tmp_path), "model.py")
    failed = _failed([(model, 20, "training_step")]).model_copy(update={"rank": 1})
    (diag,) = failure_diagnostics(failed, [str(tmp_path)])
    assert (diag.path, diag.line) == (model, 19)
    assert diag.message == "ZeroDivisionError: division by zero (on rank 1, during the run)"


def test_traceback_without_workspace_frames_uses_the_fallback(tmp_path: Path) -> None:
    failed = _failed([("/usr/lib/x.py", 1, "f")], phase="setup")
    (diag,) = failure_diagnostics(failed, [str(tmp_path)], fallback=(str(tmp_path / "m.py"), 7))
    assert diag.line == 7 and "before training started" in diag.message
    assert failure_diagnostics(failed, [str(tmp_path)]) == []


def test_workspace_file_excludes_envs(tmp_path: Path) -> None:
    assert is_workspace_file(str(tmp_path / "a" / "b.py"), [str(tmp_path)])
    assert not is_workspace_file(str(tmp_path / ".venv" / "x.py"), [str(tmp_path)])
    assert not is_workspace_file("/elsewhere/x.py", [str(tmp_path)])


def test_python_traceback_text_is_parsed() -> None:
    text = ("noise\nTraceback (most recent call last):\n  File \"/w/m.py\", line 3, in <module>\n    import foo\n"
            "  File \"/w/foo.py\", line 1, in <module>\n    1/0\nZeroDivisionError: division by zero\n")
    frames, error_type, message = parse_python_traceback(text)
    assert [(f["file"], f["line"], f["code"]) for f in frames] == [("/w/m.py", 3, "import foo"),
                                                                   ("/w/foo.py", 1, "1/0")]
    assert (error_type, message) == ("ZeroDivisionError", "division by zero")
    assert parse_python_traceback("all good") is None


# ------------------------------------------------------------------------------------ records & store
def _events() -> list[ev.Event]:
    return [
        ev.RunStarted(run_id="r", fn="fit", target="m", max_epochs=2, max_steps=-1, num_training_batches=4,
                      log_dir="/w/lightning_logs/version_0", pid=1, torchbolt_version="0"),
        ev.EpochStarted(run_id="r", epoch=0, total=4),
        ev.Progress(run_id="r", stage="train", epoch=0, batch=2, total=4, global_step=2, metrics={"loss": 0.9}),
        ev.Metrics(run_id="r", epoch=0, step=4, scope="epoch", metrics={"loss": 0.8}),
        ev.ValidationEnd(run_id="r", epoch=0, global_step=4, metrics={"val_loss": 0.5, "loss": 0.8}),
        ev.CheckpointSaved(run_id="r", path="/w/e0.ckpt", monitor="val_loss", score=0.5, epoch=0, global_step=4),
        ev.Metrics(run_id="r", epoch=1, step=8, scope="epoch", metrics={"loss": 0.6}),
        ev.ValidationEnd(run_id="r", epoch=1, global_step=8, metrics={"val_loss": 0.4, "loss": 0.6}),
        ev.Finished(run_id="r", status="success", epochs=2, global_step=8, duration_s=3.0,
                    callback_metrics={"val_loss": 0.4, "loss": 0.6}, best_model_path="/w/e1.ckpt",
                    best_model_score=0.4, monitor="val_loss", log_dir="/w/lightning_logs/version_0"),
    ]


def test_record_builds_history_and_survives_a_summary_round_trip(tmp_path: Path) -> None:
    rec = RunRecord(run_id="r", key="/w/m.py::M", fn="fit", uri="file:///w/m.py", label="M")
    for event in _events():
        rec.apply(event)
    assert rec.status == "success" and rec.epochs == 2 and rec.best_model_path == "/w/e1.ckpt"
    assert rec.values("val_loss") == [0.5, 0.4]
    assert rec.values("loss") == [0.8, 0.6]  # validation_end repeats of train values are not new points
    assert rec.per_epoch("val_loss") == [(0, 0.5), (1, 0.4)]
    assert rec.hint("val_loss") == "val_loss 0.4 ↓ █▁ best 0.4"
    assert rec.hint("nope") is None
    RunStore(tmp_path).write_summary(rec)
    (loaded,) = RunStore(tmp_path).load_all()
    assert loaded.hint("val_loss") == rec.hint("val_loss") and loaded.best_model_path == rec.best_model_path
    summary = json.loads((tmp_path / ".torchbolt/runs/r/summary.json").read_text())
    assert summary["status"] == "success" and summary["latest"]["val_loss"] == 0.4


def test_record_keeps_the_hardware_of_run_started(tmp_path: Path) -> None:
    rec = RunRecord(run_id="r", key="/w/m.py::M", fn="fit", uri="file:///w/m.py", label="M")
    assert rec.hardware is None  # nothing reported yet (or a runtime that predates the fields)
    rec.apply(ev.RunStarted(run_id="r", fn="fit", target="m", pid=1, torchbolt_version="0", accelerator="cpu",
                            devices=2, device_ids=[0, 1], strategy="ddp", precision="32-true", num_nodes=1,
                            world_size=2))
    assert rec.hardware == "cpu ×2 · ddp · 32-true" and rec.world_size == 2
    RunStore(tmp_path).write_summary(rec)
    (loaded,) = RunStore(tmp_path).load_all()
    assert loaded.hardware == rec.hardware and loaded.device_ids == [0, 1]
    # the status says where the run executes before its first step, then the step and the finished run
    from torchbolt_lsp.runs.manager import RunManager

    assert RunManager._progress_message(rec) == "starting on cpu ×2 · ddp · 32-true"
    rec.apply(ev.EpochStarted(run_id="r", epoch=0, total=4))
    assert RunManager._progress_message(rec).startswith("epoch 1")
    rec.apply(ev.Finished(run_id="r", status="success", epochs=1, global_step=4, duration_s=2.0))
    assert RunManager._outcome(rec) == "done · 1 epoch · 2.0 s · cpu ×2 · ddp · 32-true"
    rec.apply(ev.Failed(run_id="r", error_type="ValueError", message="x", rank=1))
    assert RunManager._outcome(rec) == "failed: ValueError on rank 1"


def test_each_logged_value_is_one_sparkline_bar_and_the_arrow_follows_the_values() -> None:
    # the runtime's order per epoch: validation_end (callback metrics), then the epoch's metrics event
    rec = RunRecord(run_id="r", key="k", fn="fit", uri="file:///m.py", label="M")
    values = [1.44, 0.32, 0.07, 0.016]
    for epoch, value in enumerate(values):
        rec.apply(ev.ValidationEnd(run_id="r", epoch=epoch, global_step=8 * (epoch + 1), metrics={"val_loss": value}))
        rec.apply(ev.Metrics(run_id="r", epoch=epoch, step=8 * (epoch + 1), scope="epoch",
                             metrics={"val_loss": value}))
    rec.apply(ev.Finished(run_id="r", status="success", epochs=4, global_step=32, duration_s=1.0,
                          callback_metrics={"val_loss": values[-1]}))
    assert rec.values("val_loss") == values
    assert rec.hint("val_loss") == f"val_loss 0.016 ↓ {fmt.sparkline(values)} best 0.016"
    assert len(fmt.sparkline(values)) == 4
    # a step-level value that repeats from one step to the next is still one bar per step
    rec.apply(ev.Metrics(run_id="r", epoch=4, step=33, scope="step", metrics={"lr": 0.1}))
    rec.apply(ev.Metrics(run_id="r", epoch=4, step=34, scope="step", metrics={"lr": 0.1}))
    assert rec.values("lr") == [0.1, 0.1] and rec.hint("lr").startswith("lr 0.1 →")


def test_store_skips_unreadable_summaries(tmp_path: Path) -> None:
    bad = tmp_path / ".torchbolt" / "runs" / "broken"
    bad.mkdir(parents=True)
    (bad / "summary.json").write_text("{not json")
    assert RunStore(tmp_path).load_all() == []


# ------------------------------------------------------------------------------------ anchors/targets
SOURCE = '''
import torchbolt as pl
from torchbolt.callbacks import ModelCheckpoint

class Base(pl.LightningModule):
    def train_dataloader(self):
        return []

class LitModel(Base):
    def training_step(self, batch, batch_idx):
        loss = batch.sum()
        self.log("train_loss", loss, prog_bar=True)
        self.log_dict({"a": 1, "b": 2})
        return loss

class Data(pl.LightningDataModule):
    pass

if __name__ == "__main__":
    trainer = pl.Trainer(callbacks=[ModelCheckpoint(monitor="val_loss")])
    trainer.fit(LitModel())
'''


def test_metric_anchors_in_source_order() -> None:
    anchors = metric_anchors(ast.parse(SOURCE))
    assert [(a.name, a.kind, a.end_line) for a in anchors] == [
        ("train_loss", "log", 12), ("a", "log_dict", 13), ("b", "log_dict", 13), ("val_loss", "monitor", 20)]
    log_anchor = anchors[0]
    line = SOURCE.splitlines()[log_anchor.end_line - 1]
    assert line[:log_anchor.end_col].endswith("prog_bar=True)")


def test_targets_resolve_same_file_bases_and_script_calls() -> None:
    facts = extract_facts(ast.parse(SOURCE), SOURCE, "/w/m.py")
    index = WorkspaceIndex.of_files({facts.path: facts})
    targets = class_targets(facts, lambda cls: index.class_kind(facts.path, cls.name))
    assert [(t.kind, t.name, t.line) for t in targets] == [("module", "Base", 4), ("module", "LitModel", 8),
                                                           ("datamodule", "Data", 15)]
    (call,) = script_calls(facts)
    assert (call.kind, call.fn, call.line) == ("script", "fit", 20)


def test_needed_loader_comes_from_the_catalog() -> None:
    from torchbolt_lsp.runs.targets import needed_loader

    assert [needed_loader(fn) for fn in ("fit", "validate", "test", "predict")] == [
        "train_dataloader", "val_dataloader", "test_dataloader", "predict_dataloader"]


def test_missing_data_message_says_what_to_add() -> None:
    message = missing_data_message("LitModel", {"training_step"}, "fit", None, "model.py")
    assert "LitModel has no train_dataloader()" in message and "def train_dataloader(self)" in message
    assert "[tool.torchbolt.run]" in message
    assert missing_data_message("LitModel", {"training_step"}, "fit", "d.py::D") is None
    assert missing_data_message("LitModel", {"train_dataloader"}, "fit", None) is None
    assert "val_dataloader" in missing_data_message("LitModel", {"train_dataloader"}, "validate", None)


def test_command_line_round_trips_trainer_values() -> None:
    from torchbolt.cli.command import parse_literal

    for value in (3, 0.25, True, False, None, "cpu", [0, 1]):
        assert parse_literal(trainer_flag_value(value)) == value
    cmd = build_command("/py", "fit", "m.py::M", "d.py::D", {"max_epochs": 2, "enable_progress_bar": False})
    assert cmd == ["/py", "-m", "torchbolt", "fit", "m.py::M", "--data", "d.py::D", "--trainer.max_epochs", "2",
                   "--trainer.enable_progress_bar", "false", "--events", "fd:{fd}"]


# ------------------------------------------------------------------------------------ trust and clients
def test_trust_store_remembers_folders_and_ignores_a_broken_file(tmp_path: Path) -> None:
    from torchbolt_lsp.runs.trust import TrustStore

    store = TrustStore(tmp_path / "state" / "trusted.json")
    assert not store.is_trusted(tmp_path / "ws")
    store.add(tmp_path / "ws")
    store.add(tmp_path / "ws")  # once
    assert store.folders() == [os.path.realpath(tmp_path / "ws")]
    assert store.is_trusted(tmp_path / "ws" / "sub") and not store.is_trusted(tmp_path / "wsx")
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"
    store.path.write_text("{not json")
    assert store.folders() == [] and not store.is_trusted(tmp_path / "ws")


@pytest.mark.parametrize("name, options, toasts, given", [
    ("Visual Studio Code", {"trusted": True}, True, True),
    ("code-server", {}, True, False),
    ("Neovim", {}, False, False),
    ("Neovim", {"messageRequestToasts": True, "trusted": False}, True, True),
    ("Visual Studio Code", {"messageRequestToasts": False, "trusted": "yes"}, False, False),
])
def test_client_ui_facts_come_from_client_info_and_options(name, options, toasts, given) -> None:
    from torchbolt_lsp.context import message_request_toasts, trust_given

    assert message_request_toasts(name, options) is toasts
    assert trust_given(options) is given
