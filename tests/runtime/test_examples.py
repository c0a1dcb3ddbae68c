"""The bundled examples: deterministic data, the main example learns, the 1.x-style example runs."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
import warnings
from pathlib import Path
from types import ModuleType

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_are_deterministic_and_varied() -> None:
    ex = load("mnist_like")
    x1, y1 = ex.render_digits(300, seed=5)
    x2, y2 = ex.render_digits(300, seed=5)
    x3, _ = ex.render_digits(300, seed=6)
    assert x1.shape == (300, 1, 12, 12) and y1.shape == (300,)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)
    assert 0.0 <= float(x1.min()) and float(x1.max()) <= 1.0
    assert set(y1.tolist()) == set(range(10))
    # Two images of the same digit are not copies (shift, boldness, noise).
    same = (y1 == y1[0]).nonzero().flatten()
    assert not torch.equal(x1[same[0]], x1[same[1]])
    with pytest.raises(ValueError, match="n >= 1"):
        ex.render_digits(0, seed=0)


def test_main_example_learns(tmp_path: Path) -> None:
    """The example's model on half its training data reaches far above chance (10%) in 3 epochs."""
    import torchbolt as tb

    ex = load("mnist_like")
    tb.seed_everything(0)
    model, data = ex.DigitClassifier(), ex.DigitsDataModule(num_train=3000, num_val=500, num_test=500)
    trainer = tb.Trainer(max_epochs=3, default_root_dir=str(tmp_path), enable_progress_bar=False,
                         enable_model_summary=False, logger=False, enable_checkpointing=False)
    trainer.fit(model, datamodule=data)
    assert {"val_loss", "val_acc", "train_loss"} <= set(trainer.callback_metrics)
    assert float(trainer.callback_metrics["val_acc"]) > 0.5
    results = trainer.test(model, datamodule=data, verbose=False)
    assert results[0]["test_acc"] > 0.5
    predictions = trainer.predict(model, datamodule=data)
    assert predictions is not None and torch.cat(predictions).shape == (500,)


def test_makefile_demo_command_trains_end_to_end(tmp_path: Path) -> None:
    """Runs the exact `make demo` command line (paths made absolute), with the full default Trainer."""
    makefile = (REPO / "Makefile").read_text()
    line = re.search(r"^demo:.*\n\t(.*)$", makefile, re.MULTILINE)
    assert line, "Makefile has no demo target"
    argv = shlex.split(line.group(1).replace("$(BIN)/torchbolt", "").strip())
    argv = [str(REPO / a.split("::")[0]) + ("::" + a.split("::")[1] if "::" in a else "")
            if a.startswith("examples/") else a for a in argv]
    out = subprocess.run([sys.executable, "-m", "torchbolt", *argv], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert "Total params" in out.stdout
    # One line per finished epoch (n == total); slow epochs may add heartbeat lines in between.
    epochs = [line for line in out.stdout.splitlines() if re.match(r"Epoch \d+/3: (\d+)/\1 ", line)]
    assert [line.split(":")[0] for line in epochs] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    val_acc = float(re.search(r"val_acc=([0-9.]+)", epochs[-1]).group(1))  # type: ignore[union-attr]
    assert val_acc > 0.6
    assert list(tmp_path.glob("lightning_logs/version_0/events.out.tfevents.*"))


def test_legacy_epoch_end_example_runs_and_warns_once(tmp_path: Path) -> None:
    import torchbolt as tb

    ex = load("legacy_epoch_end")
    tb.seed_everything(0)
    model = ex.LegacyClassifier()
    trainer = tb.Trainer(max_epochs=4, default_root_dir=str(tmp_path), enable_progress_bar=False,
                         enable_model_summary=False, logger=False, enable_checkpointing=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model)
    legacy = [w for w in caught if "validation_epoch_end" in str(w.message)]
    assert len(legacy) == 1, [str(w.message) for w in caught]
    assert "on_validation_epoch_end" in str(legacy[0].message)
    assert float(trainer.callback_metrics["val_acc"]) > 0.75
    results = trainer.test(model, verbose=False)
    assert results[0]["test_acc"] > 0.75



def test_overhead_benchmark_script_runs() -> None:
    """Smoke test of bench/overhead.py (tiny sizes; it prints a table, nothing is timed here)."""
    out = subprocess.run([sys.executable, str(REPO / "bench" / "overhead.py"), "--runs", "1", "--steps", "20",
                          "--no-lightning", "--no-imports"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [line.split("|")[1].strip() for line in out.stdout.splitlines() if line.startswith("| ")]
    assert rows[1:] == ["hand-written loop", "torchbolt bare", "torchbolt Trainer()", "torchbolt bare + SimpleProfiler"]
    assert "Targets (issues 2 and 12)" in out.stdout


def test_step_instruction_counter_runs_and_counts_the_loop() -> None:
    """Smoke test of bench/step_instructions.py on short fits: every variant does at least the hand-written
    loop's Python work per step (the counts are deterministic; no time is measured)."""
    out = subprocess.run([sys.executable, str(REPO / "bench" / "step_instructions.py"), "--no-lightning", "--short",
                          "4", "--long", "12"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = {line.split("|")[1].strip(): line.split("|")[2:] for line in out.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| variant")}
    assert list(rows) == ["hand-written loop", "torchbolt bare", "torchbolt Trainer()", "torchbolt bare + SimpleProfiler"]
    instructions = {name: float(cells[0]) for name, cells in rows.items()}
    assert instructions["hand-written loop"] > 1000
    assert all(n >= instructions["hand-written loop"] for n in instructions.values())
