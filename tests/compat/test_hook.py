"""The import hook: Lightning's import names resolve to torchbolt inside torchbolt's processes only.

Each case runs in a fresh interpreter: the hook changes a process's imports, and the test process may
already hold the real Lightning.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "runtime"), str(ROOT / "lsp"), env.get("PYTHONPATH", "")])
    env.pop("TORCHBOLT_ENGINE", None)
    return env


def _torchbolt(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "torchbolt", *args], capture_output=True, text=True, cwd=cwd,
                          env=_env(), timeout=240)


PROBE = textwrap.dedent('''
    import json, sys
    import lightning as L
    import lightning.pytorch as pl
    import pytorch_lightning as ptl
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.callbacks.progress.tqdm_progress import TQDMProgressBar
    from pytorch_lightning.loggers import CSVLogger
    from lightning.pytorch.trainer.states import TrainerFn
    from lightning.pytorch.callbacks import StochasticWeightAveraging
    from lightning.pytorch.profilers import SimpleProfiler
    from lightning.pytorch.tuner import Tuner
    import lightning.pytorch.utilities as utilities
    import torchbolt

    errors = {}
    for stmt in ("import lightning.fabric", "from lightning import Fabric", "import lightning.pytorch.serve",
                 "from lightning.pytorch.loggers import NeptuneLogger"):
        try:
            exec(stmt)
        except ImportError as err:
            errors[stmt] = [type(err).__name__, str(err)]
    try:
        pl.callbacks.NoSuchCallback
    except AttributeError as err:
        errors["typo"] = [type(err).__name__, str(err)]
    try:
        pl.strategies.DeepSpeedStrategy
    except AttributeError as err:
        errors["attribute"] = [type(err).__name__, str(err), hasattr(pl.strategies, "DeepSpeedStrategy")]
    print(json.dumps({
        "argv": sys.argv,
        "same": [pl is torchbolt, ptl is torchbolt, L.pytorch is torchbolt,
                 L.LightningModule is torchbolt.LightningModule, L.Trainer is torchbolt.Trainer,
                 L.seed_everything is torchbolt.seed_everything, utilities is torchbolt.utilities],
        "classes": [ModelCheckpoint.__module__, TQDMProgressBar.__module__, CSVLogger.__module__,
                    TrainerFn.__module__, StochasticWeightAveraging.__module__, SimpleProfiler.__module__,
                    Tuner.__module__],
        "spec": [torchbolt.__spec__.name, torchbolt.callbacks.__spec__.name],
        "errors": errors,
        "name": __name__,
    }))
''')


def test_run_resolves_lightning_names_to_torchbolt(tmp_path: Path) -> None:
    (tmp_path / "probe.py").write_text(PROBE)
    out = _torchbolt("run", "probe.py", "--flag", "x", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["argv"][1:] == ["--flag", "x"] and got["name"] == "__main__"
    assert Path(got["argv"][0]) == tmp_path / "probe.py"
    assert all(got["same"]), got["same"]
    assert got["classes"] == ["torchbolt.callbacks.model_checkpoint", "torchbolt.callbacks.progress",
                              "torchbolt.loggers.csv_logs", "torchbolt.trainer.state",
                              "torchbolt.callbacks.stochastic_weight_avg", "torchbolt.profilers.simple",
                              "torchbolt.tuner.tuning"]
    assert got["spec"] == ["torchbolt", "torchbolt.callbacks"]  # the aliased modules keep their own spec
    errors = got["errors"]
    assert errors["import lightning.fabric"][0] == "ModuleNotFoundError"
    assert "lightning.fabric is not provided by torchbolt" in errors["import lightning.fabric"][1]
    assert "Lightning Fabric" in errors["from lightning import Fabric"][1]
    assert "lightning.pytorch.serve is not provided by torchbolt" in errors["import lightning.pytorch.serve"][1]
    neptune = errors["from lightning.pytorch.loggers import NeptuneLogger"]
    assert neptune[0] == "NotProvidedError" and "Neptune logging" in neptune[1]
    assert "CSVLogger" in neptune[1] and "--engine lightning" in neptune[1]
    assert errors["typo"][0] == "AttributeError" and "NoSuchCallback" in errors["typo"][1]
    assert errors["attribute"][0] == "NotProvidedAttributeError" and "strategy='fsdp'" in errors["attribute"][1]
    assert errors["attribute"][2] is False  # hasattr() still answers


def test_engine_lightning_keeps_the_real_lightning(tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    (tmp_path / "probe.py").write_text(
        "import lightning.pytorch as pl, torchbolt\nprint(pl.__name__, pl is torchbolt, pl.Trainer.__module__)\n")
    out = _torchbolt("run", "--engine", "lightning", "probe.py", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["lightning.pytorch", "False", "lightning.pytorch.trainer.trainer"]
    env_out = subprocess.run([sys.executable, "-m", "torchbolt", "run", "probe.py"], capture_output=True,
                             text=True, cwd=tmp_path, env={**_env(), "TORCHBOLT_ENGINE": "lightning"}, timeout=240)
    assert env_out.stdout.split()[:2] == ["lightning.pytorch", "False"], env_out.stderr


def test_plain_python_is_unchanged_and_import_torchbolt_installs_nothing(tmp_path: Path) -> None:
    code = ("import sys, torchbolt, torchbolt.compat as c\n"
            "print(c.active(), any(type(f).__name__ == 'LightningAliasFinder' for f in sys.meta_path))\n"
            "import lightning.pytorch as pl\nprint(pl is torchbolt)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=_env(),
                         timeout=240)
    assert out.stdout.split() == ["False", "False", "False"], out.stderr


def test_run_command_errors(tmp_path: Path) -> None:
    out = _torchbolt("run", cwd=tmp_path)
    assert out.returncode == 2 and "usage: torchbolt run" in out.stderr
    out = _torchbolt("run", "missing.py", cwd=tmp_path)
    assert out.returncode == 2 and "no such script: missing.py" in out.stderr
    out = _torchbolt("run", "--engine", "keras", "x.py", cwd=tmp_path)
    assert out.returncode == 2 and "unknown engine 'keras'; choose one of torchbolt, lightning" in out.stderr
    (tmp_path / "fails.py").write_text("import sys\nraise SystemExit(3)\n")
    assert _torchbolt("run", "fails.py", cwd=tmp_path).returncode == 3
    (tmp_path / "raises.py").write_text("raise ValueError('boom')\n")
    out = _torchbolt("run", "raises.py", cwd=tmp_path)
    assert out.returncode == 1 and "ValueError: boom" in out.stderr


def test_engine_helpers_in_process() -> None:
    from torchbolt.compat.engine import EngineError, split_engine_option

    assert split_engine_option(["a.py", "--engine", "lightning", "--x"]) == ("lightning", ["a.py", "--x"])
    assert split_engine_option(["--engine=torchbolt"]) == ("torchbolt", [])
    assert split_engine_option(["a"]) == (None, ["a"])
    with pytest.raises(EngineError, match="needs a value"):
        split_engine_option(["--engine"])
    with pytest.raises(EngineError, match="unknown engine 'x'"):
        split_engine_option(["--engine", "x"])


def test_engine_lightning_without_lightning_installed_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from torchbolt.compat import engine

    monkeypatch.setattr(engine, "lightning_installed", lambda: False)
    with pytest.raises(engine.EngineError, match=r"--engine lightning: Lightning is not installed .*pip install "
                                                 r"lightning.* or run on torchbolt"):
        engine.activate("lightning")
    assert engine.current_engine() == "torchbolt"


def test_run_setting_engine(tmp_path: Path) -> None:
    from torchbolt_lsp.runs.settings import SettingsError, load_pyproject, merge_settings

    (tmp_path / "pyproject.toml").write_text('[tool.torchbolt.run]\nengine = "lightning"\n')
    settings = load_pyproject(tmp_path)
    assert settings.env["TORCHBOLT_ENGINE"] == "lightning"  # how the run's process learns it
    assert merge_settings(settings, {"engine": "torchbolt"}, "editor").env["TORCHBOLT_ENGINE"] == "torchbolt"
    (tmp_path / "pyproject.toml").write_text('[tool.torchbolt.run]\nengine = "keras"\n')
    with pytest.raises(SettingsError, match=r"engine must be one of 'torchbolt', 'lightning', not 'keras'"):
        load_pyproject(tmp_path)


LIGHTNING_TARGET = textwrap.dedent('''
    import torch
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset


    class LitModel(pl.LightningModule):
        def __init__(self, lr: float = 0.1):
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

        def train_dataloader(self):
            x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
            return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)
''')


@pytest.mark.parametrize("engine", ["torchbolt", "lightning"])
def test_fit_command_runs_a_lightning_module(tmp_path: Path, engine: str) -> None:
    if engine == "lightning":
        pytest.importorskip("lightning")
    (tmp_path / "model.py").write_text(LIGHTNING_TARGET)
    args = ["fit", "model.py::LitModel", "--model.lr", "0.05", "--trainer.max_epochs", "1",
            "--trainer.enable_progress_bar", "false", "--trainer.logger", "false"]
    out = _torchbolt(*args, *(["--engine", engine] if engine == "lightning" else []), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Finished fit: 1 epoch(s), 4 step(s)." in out.stdout
    import torch

    (ckpt,) = (tmp_path / "checkpoints").glob("*.ckpt")
    keys = set(torch.load(ckpt, map_location="cpu", weights_only=False))
    assert ("torchbolt_version" in keys) == (engine == "torchbolt")  # who wrote it


def test_spawned_children_resolve_lightning_the_same_way(tmp_path: Path) -> None:
    (tmp_path / "spawn_probe.py").write_text(textwrap.dedent('''
        import multiprocessing as mp

        import lightning.pytorch as pl


        def name_in_child(_):
            import lightning.pytorch as child_pl
            return child_pl.__name__


        if __name__ == "__main__":
            with mp.get_context("spawn").Pool(1) as pool:
                print(pl.__name__, *pool.map(name_in_child, [0]))
    '''))
    out = _torchbolt("run", "spawn_probe.py", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["torchbolt", "torchbolt"]
