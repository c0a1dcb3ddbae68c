"""The `torchbolt` command line, run as a real subprocess (`python -m torchbolt`) from a foreign cwd."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import yaml
from torchbolt import cli
from torchbolt.catalog import TRAINER_ARGS

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "mnist_like.py"
SMALL_DATA = ["--data.num_train", "256", "--data.num_val", "128", "--data.num_test", "128"]


def torchbolt(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 240
              ) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "TORCHBOLT_EVENTS"}  # no stream unless asked
    full_env.update({"PYTHONWARNINGS": "ignore", **(env or {})})
    return subprocess.run([sys.executable, "-m", "torchbolt", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """A folder of target files: two modules in one file, a DataModule, a failing module."""
    (tmp_path / "helpers.py").write_text("SIZE = 4\n")
    (tmp_path / "two.py").write_text(textwrap.dedent("""
        import torchbolt as tb
        class A(tb.LightningModule):
            pass
        class B(tb.LightningModule):
            pass
    """))
    (tmp_path / "plain.py").write_text("class NotAModule:\n    pass\n")
    (tmp_path / "lit.py").write_text(textwrap.dedent("""
        class LightningModule:  # stands in for lightning.pytorch.LightningModule
            pass
        LightningModule.__module__ = "lightning.pytorch.core.module"
        class Lit(LightningModule):
            pass
    """))
    (tmp_path / "boom.py").write_text(textwrap.dedent("""
        import torch
        from torch.utils.data import DataLoader, TensorDataset
        import torchbolt as tb
        from helpers import SIZE  # a sibling module: the target's folder must be on sys.path

        class Boom(tb.LightningModule):
            def __init__(self, width: int = SIZE, rate: float = 0.1, name: str = "x") -> None:
                super().__init__()
                self.layer = torch.nn.Linear(width, 1)

            def training_step(self, batch, batch_idx):
                raise RuntimeError("exploded on purpose")

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1)

            def train_dataloader(self):
                return DataLoader(TensorDataset(torch.zeros(8, SIZE)), batch_size=4)
    """))
    return tmp_path


# --------------------------------------------------------------------------------------------------
# Help (torch-free)
# --------------------------------------------------------------------------------------------------
def test_top_level_help(tmp_path: Path) -> None:
    out = torchbolt("--help", cwd=tmp_path)
    assert out.returncode == 0
    for command in ("fit", "validate", "test", "predict", "check"):
        assert f"  {command}" in out.stdout
    assert torchbolt(cwd=tmp_path).returncode == 2


def test_fit_help_lists_every_trainer_argument_from_the_catalog(tmp_path: Path) -> None:
    out = torchbolt("fit", "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    for arg in TRAINER_ARGS:
        assert f"--trainer.{arg.name} " in text
        assert f"default: {arg.default_text()}" in text
    assert "--trainer.max_epochs INT|NONE" in text
    assert "--print-config" in text and "--events TARGET" in text and "--ckpt_path PATH" in text


def test_help_and_check_do_not_import_torch(tmp_path: Path) -> None:
    code = ("import sys\nfrom torchbolt.cli import main\n"
            "try:\n    main(['fit', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.stdout.strip().endswith("NO-TORCH"), out.stdout + out.stderr


# --------------------------------------------------------------------------------------------------
# One-line errors, exit status 2
# --------------------------------------------------------------------------------------------------
ERRORS = [
    (["fit", "missing.py"], "file not found: missing.py"),
    (["fit", "boom.py::Bom"], "no class 'Bom' in boom.py; did you mean 'Boom'?"),
    (["fit", "two.py"], "defines several LightningModule classes (A, B); pick one with two.py::ClassName"),
    (["fit", "plain.py"], "no LightningModule subclass defined in plain.py"),
    (["fit", "plain.py::NotAModule"], "NotAModule in plain.py is not a torchbolt LightningModule"),
    (["fit", "lit.py"], "derives from lightning.pytorch.core.module.LightningModule, which was imported before torchbolt"),
    (["fit", "no_such_pkg.mod:Model"], "module not found: 'no_such_pkg.mod'"),
    (["fit", "boom.py", "--data", "boom.py"], "--data: no LightningDataModule subclass defined in boom.py"),
    (["fit", "boom.py", "--trainer.max_epoch", "3"], "Trainer has no argument 'max_epoch'; did you mean "
                                                     "--trainer.max_epochs?"),
    (["fit", "boom.py", "--trainer.gpus", "1"], "Trainer(gpus=...) was removed in Lightning 2.0; use "
                                                "accelerator='gpu', devices=N"),
    (["fit", "boom.py", "--trainer.max_epochs", "many"], "'many' is not a valid value for Trainer(max_epochs=...)"),
    (["fit", "boom.py", "--model.widht", "3"], "Boom has no argument 'widht'; did you mean 'width'?"),
    (["fit", "boom.py", "--model.width", "wide"], "'wide' is not a valid width (expects int)"),
    (["fit", "boom.py", "--verbose"], "unrecognized argument '--verbose'"),
    (["fti", "boom.py"], "unknown command 'fti'; did you mean 'fit'?"),
    (["fit"], "missing TARGET"),
    (["fit", "boom.py", "--config", "nope.yaml"], "--config: file not found: nope.yaml"),
]


@pytest.mark.parametrize(("argv", "fragment"), ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_configuration_errors_are_one_line(models: Path, argv: list[str], fragment: str,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    # In-process for speed (one torch import for all cases); the subprocess test below covers exit codes.
    monkeypatch.chdir(models)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("TORCHBOLT_EVENTS", raising=False)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert fragment in lines[0]


@pytest.mark.parametrize("argv", [ERRORS[0][0], ERRORS[2][0], ERRORS[8][0]], ids=["missing", "ambiguous", "typo"])
def test_configuration_errors_exit_2_from_a_real_process(models: Path, argv: list[str]) -> None:
    out = torchbolt(*argv, cwd=models)
    assert out.returncode == 2, out.stdout + out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_config_file_errors(models: Path) -> None:
    (models / "bad.yaml").write_text("trainer:\n  max_epochs: 2\nmodle: {}\n")
    out = torchbolt("fit", "boom.py", "--config", "bad.yaml", cwd=models)
    assert out.returncode == 2 and "unknown key 'modle'; did you mean 'model'?" in out.stderr
    (models / "bad2.yaml").write_text("trainer:\n  tpu_cores: 8\n")
    out = torchbolt("fit", "boom.py", "--config", "bad2.yaml", cwd=models)
    assert out.returncode == 2 and "tpu_cores" in out.stderr and "accelerator='tpu'" in out.stderr


def test_invalid_trainer_value_reported_by_the_trainer_is_one_line(models: Path) -> None:
    out = torchbolt("fit", "boom.py", "--trainer.accelerator", "gpux", cwd=models)
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "accelerator" in out.stderr and "gpux" in out.stderr


# --------------------------------------------------------------------------------------------------
# --print-config
# --------------------------------------------------------------------------------------------------
def test_print_config_resolves_and_round_trips(models: Path) -> None:
    out = torchbolt("fit", "boom.py", "--trainer.max_epochs", "3", "--trainer.limit_train_batches", "0.5",
                    "--trainer.max_time", "00:00:01:00", "--model.width", "4", "--model.rate", "1",
                    "--seed_everything", "7", "--print-config", cwd=models)
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    assert config["trainer"]["max_epochs"] == 3
    assert config["trainer"]["limit_train_batches"] == 0.5
    assert config["trainer"]["max_time"] == "00:00:01:00"
    assert config["trainer"]["accelerator"] == "auto"  # defaults listed too
    assert set(config["trainer"]) == {a.name for a in TRAINER_ARGS}
    assert config["model"] == {"class_path": "boom.py", "init_args": {"width": 4, "rate": 1.0, "name": "x"}}
    assert config["seed_everything"] == 7 and config["data"] is None and config["ckpt_path"] is None

    (models / "run.yaml").write_text(out.stdout)
    again = torchbolt("fit", "--config", "run.yaml", "--model.name", "y", "--print-config", cwd=models)
    assert again.returncode == 0, again.stderr
    config2 = yaml.safe_load(again.stdout)
    assert config2["model"]["init_args"]["name"] == "y"  # command line beats the file
    config2["model"]["init_args"]["name"] = "x"
    assert config2 == config


def test_print_config_with_datamodule(tmp_path: Path) -> None:
    out = torchbolt("fit", f"{EXAMPLE}::DigitClassifier", "--data", str(EXAMPLE), "--data.batch_size", "16",
                    "--print-config", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    assert config["data"]["class_path"] == str(EXAMPLE)
    assert config["data"]["init_args"]["batch_size"] == 16
    assert config["model"]["init_args"] == {"hidden": 64, "lr": 3e-3}


# --------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------
def test_fit_example_with_the_default_trainer_from_another_folder(tmp_path: Path) -> None:
    out = torchbolt("fit", f"{EXAMPLE}::DigitClassifier", "--data", f"{EXAMPLE}::DigitsDataModule",
                    "--trainer.max_epochs", "2", *SMALL_DATA, "--seed_everything", "0", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Trainable params" in out.stdout  # model summary
    # Plain progress lines: one per finished epoch (slow epochs may add heartbeat lines in between).
    epoch_lines = [line for line in out.stdout.splitlines() if re.match(r"Epoch \d+/2: (\d+)/\1 ", line)]
    assert [line.split(":")[0] for line in epoch_lines] == ["Epoch 1/2", "Epoch 2/2"]
    assert "val_acc=" in epoch_lines[-1] and "train_loss=" in epoch_lines[-1]
    assert list((tmp_path / "lightning_logs").glob("version_0/events.out.tfevents.*"))  # logs in cwd
    ckpts = list((tmp_path / "lightning_logs").glob("version_0/checkpoints/*.ckpt"))
    assert ckpts
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("Finished fit: 2 epoch(s), 8 step(s).")
    assert f"Logs: {tmp_path / 'lightning_logs' / 'version_0'}." in last and f"Checkpoint: {ckpts[0]}." in last


def test_test_and_predict_commands(tmp_path: Path) -> None:
    common = [f"{EXAMPLE}::DigitClassifier", "--data", f"{EXAMPLE}::DigitsDataModule", *SMALL_DATA,
              "--trainer.logger", "false", "--trainer.enable_checkpointing", "false"]
    out = torchbolt("test", *common, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "test_acc" in out.stdout
    out = torchbolt("predict", *common, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Predicted 1 batches." in out.stdout


def test_run_failure_exits_1_with_traceback(models: Path) -> None:
    out = torchbolt("fit", "boom.py", "--trainer.logger", "false", "--trainer.enable_checkpointing", "false",
                    cwd=models)
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "RuntimeError: exploded on purpose" in out.stderr
    assert out.stderr.strip().splitlines()[-1].endswith("the run failed (traceback above)")


def test_events_stream(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    args = ["fit", f"{EXAMPLE}::DigitClassifier", "--data", f"{EXAMPLE}::DigitsDataModule", *SMALL_DATA,
            "--trainer.max_epochs", "1", "--trainer.logger", "false", "--trainer.enable_checkpointing", "false"]
    out = torchbolt(*args, "--events", str(events), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    kinds = [json.loads(line)["type"] for line in events.read_text().splitlines()]
    assert kinds[0] == "run_started" and kinds[-1] == "finished"
    env_events = tmp_path / "env.jsonl"
    out = torchbolt(*args, cwd=tmp_path, env={"TORCHBOLT_EVENTS": str(env_events)})
    assert out.returncode == 0, out.stderr
    assert env_events.read_text().count("run_started") == 1


# --------------------------------------------------------------------------------------------------
# `torchbolt check` delegation (in-process: the checker is another team's module)
# --------------------------------------------------------------------------------------------------
def test_check_delegates_to_the_linter(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    fake = types.ModuleType("torchbolt_lsp.lint.cli")
    fake.main = lambda argv: seen.append(list(argv)) or 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchbolt_lsp.lint.cli", fake)
    assert cli.main(["check", "src", "--select", "TB1"]) == 3
    assert seen == [["src", "--select", "TB1"]]


def test_check_without_the_linter_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "torchbolt_lsp.lint.cli", None)  # makes the import fail
    assert cli.main(["check", "src"]) == 2
    err = capsys.readouterr().err
    assert "torchbolt check: error: the checker (torchbolt_lsp.lint.cli) is not available" in err


# --------------------------------------------------------------------------------------------------
# Value parsing (pure)
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "value"), [
    ("none", None), ("Null", None), ("true", True), ("False", False), ("3", 3), ("-1", -1), ("0.25", 0.25),
    ("1e-3", 1e-3), ("[0, 1]", [0, 1]), ("{hours: 1}", {"hours": 1}), ("auto", "auto"), ("16-mixed", "16-mixed"),
])
def test_parse_literal(text: str, value: object) -> None:
    assert cli.parse_literal(text) == value


@pytest.mark.parametrize(("target", "parts"), [
    ("a/b.py::Model", (None, "a/b.py", "Model")),
    ("b.py", (None, "b.py", None)),
    ("pkg.mod:Model", ("pkg.mod", None, "Model")),
    ("pkg.mod", ("pkg.mod", None, None)),
])
def test_parse_target(target: str, parts: tuple) -> None:
    t = cli.parse_target(target)
    assert (t.module, t.path, t.class_name) == parts


def test_module_target_and_callbacks_from_config(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(textwrap.dedent("""
        import torchbolt as tb
        class Net(tb.LightningModule):
            def __init__(self, depth: int = 2, dims: tuple = (1, 2)) -> None:
                super().__init__()
    """))
    (tmp_path / "cfg.yaml").write_text(textwrap.dedent("""
        trainer:
          max_epochs: 4
          callbacks:
            - class_path: EarlyStopping
              init_args: {monitor: val_loss, patience: 1}
        model:
          init_args: {depth: 3}
    """))
    out = torchbolt("fit", "pkg.models:Net", "--config", "cfg.yaml", "--model.dims", "[3, 4]", "--print-config",
                    cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    config = yaml.safe_load(out.stdout)
    assert config["model"] == {"class_path": "pkg.models:Net", "init_args": {"depth": 3, "dims": [3, 4]}}
    assert config["trainer"]["max_epochs"] == 4
    assert config["trainer"]["callbacks"] == [{"class_path": "EarlyStopping",
                                               "init_args": {"monitor": "val_loss", "patience": 1}}]
    instantiated = cli._instantiate(config["trainer"]["callbacks"], "trainer.callbacks")
    assert type(instantiated[0]).__name__ == "EarlyStopping" and instantiated[0].patience == 1


def test_legacy_example_runs_and_shows_the_1x_warning_once(tmp_path: Path) -> None:
    legacy = REPO / "examples" / "legacy_epoch_end.py"
    out = torchbolt("fit", str(legacy), "--trainer.max_epochs", "2", "--trainer.logger", "false",
                    "--trainer.enable_checkpointing", "false", "--trainer.enable_model_summary", "false", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("validation_epoch_end(outputs) is a Lightning 1.x hook") == 1
    assert "on_validation_epoch_end" in out.stderr
    assert re.search(r"Epoch 2/2: 16/16 .*val_acc=0\.[5-9]", out.stdout), out.stdout


def test_check_runs_the_real_linter_without_torch(tmp_path: Path) -> None:
    legacy = REPO / "examples" / "legacy_epoch_end.py"
    code = ("import sys\nfrom torchbolt.cli import main\nrc = main(['check', sys.argv[1]])\n"
            "print('RC', rc, 'TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    out = subprocess.run([sys.executable, "-c", code, str(legacy)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=120)
    assert "validation_epoch_end" in out.stdout, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1] == "RC 1 NO-TORCH"


@pytest.mark.parametrize(("signame", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_signal_stops_the_run_gracefully(tmp_path: Path, signame: str, code: int) -> None:
    import signal
    import time

    (tmp_path / "slow.py").write_text(textwrap.dedent("""
        import sys, time, torch
        from torch.utils.data import DataLoader, TensorDataset
        import torchbolt as tb

        class Slow(tb.LightningModule):
            def __init__(self):
                super().__init__()
                self.layer = torch.nn.Linear(2, 1)

            def training_step(self, batch, batch_idx):
                if self.global_step == 0:
                    print("FIRST-STEP", flush=True)
                time.sleep(0.02)
                return self.layer(batch[0]).sum()

            def on_exception(self, *args):  # not a module hook: must never be called
                raise AssertionError

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.01)

            def train_dataloader(self):
                return DataLoader(TensorDataset(torch.randn(64, 2)), batch_size=4)
    """))
    env = {k: v for k, v in os.environ.items() if k != "TORCHBOLT_EVENTS"}
    proc = subprocess.Popen([sys.executable, "-m", "torchbolt", "fit", "slow.py", "--trainer.max_epochs", "1000",
                             "--trainer.logger", "false", "--trainer.enable_checkpointing", "false",
                             "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        while "FIRST-STEP" not in proc.stdout.readline():
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(getattr(signal, signame))
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err
