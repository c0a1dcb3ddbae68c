"""`torchbolt.cli.LightningCLI`: the same command lines and configs give the same objects as Lightning's.

Model classes are written to a module per engine (`cli_models_torchbolt`, `cli_models_lightning`) so
`class_path` values import on both; every case runs on torchbolt and, where marked, on real Lightning.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

MODELS = '''
import torch
from torch.utils.data import DataLoader, TensorDataset
import {pkg} as pl
from {pkg}.cli import OptimizerCallable, LRSchedulerCallable


def _data(n):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return TensorDataset(x, x.sum(1, keepdim=True))


class Net(pl.LightningModule):
    """A tiny regression model."""

    def __init__(self, hidden: int = 8, lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.body = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.body(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.body(x), y))

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self.body(x), y))

    def predict_step(self, batch, batch_idx):
        return self.body(batch[0])

    def train_dataloader(self):
        return DataLoader(_data(32), batch_size=8)

    def val_dataloader(self):
        return DataLoader(_data(16), batch_size=8)

    def test_dataloader(self):
        return DataLoader(_data(16), batch_size=8)

    def predict_dataloader(self):
        return DataLoader(_data(16), batch_size=8)


class WithOwnOptimizer(Net):
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class Wide(WithOwnOptimizer):
    def __init__(self, hidden: int = 32, lr: float = 0.05, tag: str = "w") -> None:
        super().__init__(hidden, lr)


class Injected(Net):
    """Optimizer and scheduler injected as callables (dependency injection)."""

    def __init__(self, optimizer: OptimizerCallable = torch.optim.Adam,
                 scheduler: LRSchedulerCallable = torch.optim.lr_scheduler.ConstantLR) -> None:
        super().__init__()
        self.optimizer = optimizer
        self.scheduler = scheduler

    def configure_optimizers(self):
        opt = self.optimizer(self.parameters())
        return [opt], [self.scheduler(opt)]


class Data(pl.LightningDataModule):
    def __init__(self, batch_size: int = 8, n: int = 32) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.n = n

    def train_dataloader(self):
        return DataLoader(_data(self.n), batch_size=self.batch_size)

    def val_dataloader(self):
        return DataLoader(_data(16), batch_size=self.batch_size)
'''

QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--trainer.logger=false",
         "--trainer.enable_checkpointing=false"]


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The model module of each engine, importable by class_path."""
    out = {}
    for engine, pkg in (("torchbolt", "torchbolt"), ("lightning", "lightning.pytorch")):
        (tmp_path / f"cli_models_{engine}.py").write_text(textwrap.dedent(MODELS.format(pkg=pkg)))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for engine in ("torchbolt", "lightning"):
        sys.modules.pop(f"cli_models_{engine}", None)
        out[engine] = importlib.import_module(f"cli_models_{engine}")
    return out


def cli_module(engine: str) -> Any:
    if engine == "lightning":
        return pytest.importorskip("lightning.pytorch.cli")
    import torchbolt.cli

    return torchbolt.cli


def _hparams(module: Any) -> dict[str, Any]:
    """hparams with the engine's name taken out of the CLI's `_instantiator`/`_class_path` entries."""
    out = dict(module.hparams)
    for key in ("_instantiator", "_class_path"):
        if key in out:
            out[key] = out[key].replace("lightning.pytorch.cli", "ENGINE.cli").replace("torchbolt.cli", "ENGINE.cli")
            out[key] = out[key].replace("cli_models_lightning", "cli_models_ENGINE").replace(
                "cli_models_torchbolt", "cli_models_ENGINE")
    return out


def _run_both(models: dict[str, Any], build: Any) -> dict[str, Any]:
    return {engine: build(engine, cli_module(engine), models[engine]) for engine in ("torchbolt", "lightning")}


# --------------------------------------------------------------------------------------------------
# Differential: same arguments, same objects
# --------------------------------------------------------------------------------------------------
@pytest.mark.lightning
def test_run_false_builds_the_same_objects(models: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("model:\n  hidden: 5\ntrainer:\n  max_epochs: 3\n")
    (tmp_path / "b.yaml").write_text("model:\n  lr: 0.5\n")

    def build(engine: str, cli: Any, mod: Any) -> Any:
        c = cli.LightningCLI(mod.Net, mod.Data, run=False, seed_everything_default=11,
                             trainer_defaults={"max_steps": 7},
                             args=["--config", "a.yaml", "--config", "b.yaml", "--data.batch_size", "4",
                                   "--optimizer", "Adam", "--optimizer.lr", "0.01",
                                   "--lr_scheduler", "StepLR", "--lr_scheduler.step_size", "2", *QUIET])
        opt = c.model.configure_optimizers()
        return {"hparams": _hparams(c.model), "data": (c.datamodule.batch_size, c.datamodule.n),
                "trainer": (c.trainer.max_epochs, c.trainer.max_steps), "seed": c.config["seed_everything"],
                "optimizer": [type(o).__name__ for o in opt[0]], "lr": opt[0][0].param_groups[0]["lr"],
                "scheduler": [(type(s).__name__, s.step_size) for s in opt[1]],
                "hidden": c.model.body[0].out_features, "subcommand": getattr(c, "subcommand", None)}

    out = _run_both(models, build)
    assert out["torchbolt"] == out["lightning"]
    # later --config wins per key; the CLI records how to rebuild the model
    assert out["torchbolt"]["hparams"] == {"hidden": 5, "lr": 0.5, "_instantiator": "ENGINE.cli.instantiate_module"}


@pytest.mark.lightning
def test_fit_subcommand_trains_the_same(models: dict[str, Any], tmp_path: Path) -> None:
    def build(engine: str, cli: Any, mod: Any) -> Any:
        c = cli.LightningCLI(mod.WithOwnOptimizer, seed_everything_default=3, save_config_callback=None,
                             args=["fit", "--trainer.max_epochs=2", f"--trainer.default_root_dir={tmp_path / engine}",
                                   "--model.hidden=6", *QUIET])
        weights = [p.detach().clone() for p in c.model.parameters()]
        return {"subcommand": c.subcommand, "step": c.trainer.global_step, "weights": weights,
                "metrics": sorted(c.trainer.callback_metrics), "seed": c.config["fit"]["seed_everything"]}

    out = _run_both(models, build)
    ours, ref = out["torchbolt"], out["lightning"]
    assert (ours["subcommand"], ours["step"], ours["metrics"], ours["seed"]) == (
        ref["subcommand"], ref["step"], ref["metrics"], ref["seed"]) == ("fit", 8, ["train_loss", "val_loss"], 3)
    for a, b in zip(ours["weights"], ref["weights"], strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


@pytest.mark.lightning
def test_subclass_mode_class_path_and_print_config(models: dict[str, Any], capsys: pytest.CaptureFixture[str]
                                                   ) -> None:
    def build(engine: str, cli: Any, mod: Any) -> Any:
        base = mod.Net.__mro__[1]  # the engine's LightningModule
        args = ["--model", f"cli_models_{engine}.Wide", "--model.init_args.tag", "t", "--trainer.max_epochs=4",
                "--print_config"]
        with pytest.raises(SystemExit) as exit_info:
            cli.LightningCLI(base, subclass_mode_model=True, run=False, args=args)
        printed = yaml.safe_load(capsys.readouterr().out)
        c = cli.LightningCLI(base, subclass_mode_model=True, run=False, args=args[:-1] + QUIET)
        return {"code": exit_info.value.code, "model": printed["model"], "max_epochs": printed["trainer"]["max_epochs"],
                "built": (type(c.model).__name__, _hparams(c.model)), "seed": printed["seed_everything"]}

    out = _run_both(models, build)
    ours, ref = out["torchbolt"], out["lightning"]
    assert ours["model"]["class_path"] == "cli_models_torchbolt.Wide"
    assert ref["model"]["class_path"] == "cli_models_lightning.Wide"
    ours["model"].pop("class_path")
    ref["model"].pop("class_path")
    assert ours == ref
    assert ours["built"] == ("Wide", {"hidden": 32, "lr": 0.05, "tag": "t", "_class_path": "cli_models_ENGINE.Wide",
                                      "_instantiator": "ENGINE.cli.instantiate_module"})
    assert ours["seed"] is True


@pytest.mark.lightning
def test_checkpoint_of_a_cli_run_rebuilds_the_chosen_subclass(models: dict[str, Any], tmp_path: Path) -> None:
    def build(engine: str, cli: Any, mod: Any) -> Any:
        base = mod.Net.__mro__[1]
        c = cli.LightningCLI(base, subclass_mode_model=True, save_config_callback=None, seed_everything_default=1,
                             args=["fit", "--model", f"cli_models_{engine}.Wide", "--model.init_args.hidden=5",
                                   "--trainer.max_epochs=1", f"--trainer.default_root_dir={tmp_path / engine}",
                                   "--trainer.logger=false", "--trainer.enable_progress_bar=false",
                                   "--trainer.enable_model_summary=false"])
        path = c.trainer.checkpoint_callback.best_model_path
        loaded = base.load_from_checkpoint(path, weights_only=False)
        same = all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), c.model.state_dict().values(),
                                                     strict=True))
        return type(loaded).__name__, loaded.hparams.hidden, loaded.hparams.tag, same

    out = _run_both(models, build)
    assert out["torchbolt"] == out["lightning"] == ("Wide", 5, "w", True)


@pytest.mark.lightning
def test_args_as_dict_and_dependency_injection(models: dict[str, Any]) -> None:
    def build(engine: str, cli: Any, mod: Any) -> Any:
        c = cli.LightningCLI(mod.Injected, run=False, args={
            "trainer": {"max_epochs": 1, "logger": False},
            "model": {"optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.3}},
                      "scheduler": {"class_path": "torch.optim.lr_scheduler.StepLR",
                                    "init_args": {"step_size": 5}}}})
        opts, scheds = c.model.configure_optimizers()
        return (type(opts[0]).__name__, opts[0].param_groups[0]["lr"], type(scheds[0]).__name__,
                scheds[0].step_size, c.trainer.max_epochs)

    out = _run_both(models, build)
    assert out["torchbolt"] == out["lightning"] == ("SGD", 0.3, "StepLR", 5, 1)


@pytest.mark.lightning
def test_validate_test_predict_subcommands(models: dict[str, Any], tmp_path: Path) -> None:
    def build(engine: str, cli: Any, mod: Any) -> Any:
        seen = {}
        for sub in ("validate", "test", "predict"):
            c = cli.LightningCLI(mod.WithOwnOptimizer, save_config_callback=None, seed_everything_default=0,
                                 args=[sub, *QUIET])
            seen[sub] = sorted(c.trainer.callback_metrics)
        return seen

    out = _run_both(models, build)
    assert out["torchbolt"] == out["lightning"] == {"validate": ["val_loss"], "test": ["test_loss"], "predict": []}


@pytest.mark.lightning
def test_model_configure_optimizers_is_replaced_with_a_warning(models: dict[str, Any]) -> None:
    def build(engine: str, cli: Any, mod: Any) -> Any:
        with pytest.warns(UserWarning, match="configure_optimizers"):
            c = cli.LightningCLI(mod.WithOwnOptimizer, run=False, args=["--optimizer=Adam", *QUIET])
        return type(c.model.configure_optimizers()).__name__

    out = _run_both(models, build)
    assert out["torchbolt"] == out["lightning"] == "Adam"


@pytest.mark.lightning
def test_reduce_on_plateau_from_the_command_line(models: dict[str, Any]) -> None:
    def build(engine: str, cli: Any, mod: Any) -> Any:
        c = cli.LightningCLI(mod.Net, run=False, args=["--optimizer=SGD", "--optimizer.lr=0.2",
                                                       f"--lr_scheduler={cli.__name__}.ReduceLROnPlateau",
                                                       "--lr_scheduler.monitor=val_loss", *QUIET])
        conf = c.model.configure_optimizers()
        return (type(conf["optimizer"]).__name__, conf["lr_scheduler"]["monitor"],
                type(conf["lr_scheduler"]["scheduler"]).__name__)

    out = _run_both(models, build)
    assert out["torchbolt"] == out["lightning"] == ("SGD", "val_loss", "ReduceLROnPlateau")


# --------------------------------------------------------------------------------------------------
# torchbolt only: SaveConfigCallback, parser_kwargs, the shared parser
# --------------------------------------------------------------------------------------------------
def test_save_config_callback_writes_and_refuses_to_overwrite(models: dict[str, Any], tmp_path: Path) -> None:
    from torchbolt.cli import LightningCLI

    mod = models["torchbolt"]
    args = ["fit", "--trainer.max_epochs=1", f"--trainer.default_root_dir={tmp_path}",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
            "--trainer.logger=false", "--model.hidden=3"]
    LightningCLI(mod.WithOwnOptimizer, seed_everything_default=5, args=args)
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert saved["model"] == {"hidden": 3, "lr": 0.1} and saved["seed_everything"] == 5
    assert saved["trainer"]["max_epochs"] == 1
    with pytest.raises(RuntimeError, match=r"config\.yaml already exists.*overwrite"):
        LightningCLI(mod.WithOwnOptimizer, args=args)
    LightningCLI(mod.WithOwnOptimizer, args=[*args[:-1], "--model.hidden=4"],
                 save_config_kwargs={"overwrite": True, "config_filename": "config.yaml"})
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["model"]["hidden"] == 4


def test_saved_config_feeds_back(models: dict[str, Any], tmp_path: Path) -> None:
    from torchbolt.cli import LightningCLI

    mod = models["torchbolt"]
    LightningCLI(mod.WithOwnOptimizer, args=["fit", "--trainer.max_epochs=1", f"--trainer.default_root_dir={tmp_path}",
                                             "--trainer.enable_progress_bar=false", "--trainer.logger=false",
                                             "--trainer.enable_model_summary=false", "--model.lr=0.25"])
    again = LightningCLI(mod.WithOwnOptimizer, save_config_callback=None,
                         args=["validate", "--config", str(tmp_path / "config.yaml")])
    assert again.model.hparams.lr == 0.25 and again.trainer.max_epochs == 1


@pytest.mark.lightning
def test_parser_kwargs_and_environment_variables(models: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PL_FIT__MODEL__HIDDEN", "9")
    monkeypatch.setenv("PL_FIT__TRAINER__MAX_STEPS", "2")

    def build(engine: str, cli: Any, mod: Any) -> Any:
        c = cli.LightningCLI(mod.WithOwnOptimizer, save_config_callback=None,
                             parser_kwargs={"default_env": True, "fit": {"description": "custom"}},
                             args=["fit", *QUIET])
        return c.model.hparams.hidden, c.trainer.global_step, c._parser("fit").description

    out = _run_both(models, build)
    assert out["torchbolt"] == out["lightning"] == (9, 2, "custom")


def test_auto_configure_optimizers_off_leaves_no_optimizer_option(models: dict[str, Any]) -> None:
    from torchbolt.cli import LightningCLI

    with pytest.raises(SystemExit):
        LightningCLI(models["torchbolt"].Net, run=False, auto_configure_optimizers=False,
                     parser_kwargs={"exit_on_error": True}, args=["--optimizer=Adam"])


def test_extra_arguments_links_and_callbacks(models: dict[str, Any]) -> None:
    from torchbolt.callbacks import EarlyStopping
    from torchbolt.cli import LightningArgumentParser, LightningCLI

    class MyCLI(LightningCLI):
        def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
            parser.add_lightning_class_args(EarlyStopping, "early_stopping")
            parser.set_defaults({"early_stopping.monitor": "val_loss", "early_stopping.patience": 2})
            parser.link_arguments("data.batch_size", "model.hidden")

    mod = models["torchbolt"]
    c = MyCLI(mod.WithOwnOptimizer, mod.Data, run=False, args=["--data.batch_size=6", *QUIET])
    assert c.model.hparams.hidden == 6
    stops = [cb for cb in c.trainer.callbacks if isinstance(cb, EarlyStopping)]
    assert len(stops) == 1 and stops[0].patience == 2


def test_bad_lightning_class_is_a_clear_error() -> None:
    from torchbolt.cli import LightningArgumentParser
    from torchbolt.utilities.exceptions import MisconfigurationException

    with pytest.raises(MisconfigurationException, match="not a Trainer, LightningModule"):
        LightningArgumentParser().add_lightning_class_args(dict, "x")


@pytest.mark.lightning
def test_ckpt_path_configures_the_model_from_its_hyperparameters(models: dict[str, Any], tmp_path: Path) -> None:
    def build(engine: str, cli: Any, mod: Any) -> Any:
        common = [f"--trainer.default_root_dir={tmp_path / engine}", "--trainer.logger=false",
                  "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
        fit = cli.LightningCLI(mod.WithOwnOptimizer, save_config_callback=None, seed_everything_default=2,
                               args=["fit", "--trainer.max_epochs=1", "--model.hidden=5", "--model.lr=0.3", *common])
        path = fit.trainer.checkpoint_callback.best_model_path
        test = cli.LightningCLI(mod.WithOwnOptimizer, save_config_callback=None, seed_everything_default=2,
                                args=["test", f"--ckpt_path={path}", *common])
        return test.model.hparams.hidden, test.model.hparams.lr, sorted(test.trainer.callback_metrics)

    out = _run_both(models, build)
    assert out["torchbolt"] == out["lightning"] == (5, 0.3, ["test_loss"])


SCRIPT = '''
import json
import torch
from torch.utils.data import DataLoader, TensorDataset
import lightning.pytorch as pl
from lightning.pytorch.cli import LightningCLI


class Net(pl.LightningModule):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(width, 1)
        self.losses = []

    def training_step(self, batch, batch_idx):
        loss = (self.layer(batch[0]) - batch[0].sum(1, keepdim=True)).pow(2).mean()
        self.losses.append(round(float(loss), 5))
        return loss

    def train_dataloader(self):
        g = torch.Generator().manual_seed(0)
        return DataLoader(TensorDataset(torch.randn(32, self.hparams.width, generator=g)), batch_size=8)


if __name__ == "__main__":
    cli = LightningCLI(Net, save_config_callback=None)
    print("RESULT", json.dumps({"trainer": type(cli.trainer).__module__.split(".")[0],
                                "losses": cli.model.losses, "optimizer": type(cli.trainer.optimizers[0]).__name__}))
'''


@pytest.mark.lightning
def test_unmodified_lightning_cli_script_under_torchbolt_run(tmp_path: Path) -> None:
    """A script written for Lightning's CLI, with a YAML config, runs unmodified under `torchbolt run` and
    gives the same losses as under the real Lightning (`--engine lightning`)."""
    import json
    import os
    import subprocess

    (tmp_path / "train.py").write_text(SCRIPT)
    (tmp_path / "config.yaml").write_text(textwrap.dedent("""
        seed_everything: 3
        trainer:
          max_epochs: 2
          logger: false
          enable_checkpointing: false
          enable_progress_bar: false
          enable_model_summary: false
        model:
          width: 5
        optimizer:
          class_path: torch.optim.SGD
          init_args: {lr: 0.05}
    """))
    results = {}
    for engine in ("torchbolt", "lightning"):
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        env.pop("TORCHBOLT_EVENTS", None)
        out = subprocess.run([sys.executable, "-m", "torchbolt", "run", "--engine", engine, "train.py", "fit",
                              "--config", "config.yaml"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=300, env=env)
        assert out.returncode == 0, out.stderr[-3000:]
        line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
        results[engine] = json.loads(line[len("RESULT "):])
    assert results["torchbolt"]["trainer"] == "torchbolt" and results["lightning"]["trainer"] == "lightning"
    assert results["torchbolt"]["losses"] == results["lightning"]["losses"]
    assert len(results["torchbolt"]["losses"]) == 8 and results["torchbolt"]["optimizer"] == "SGD"
