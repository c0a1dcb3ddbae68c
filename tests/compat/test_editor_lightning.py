"""The editor: a Fit lens on a class written against `lightning.pytorch` trains it on torchbolt (the run's
process resolves Lightning's imports to torchbolt); with `engine = "lightning"` it trains on the real
Lightning, events and all."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from lsprotocol import types

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runs"))
from runs_support import MODEL, lsp_session, write_workspace  # noqa: E402

pytestmark = pytest.mark.slow

LIGHTNING_MODEL = MODEL.replace("import torchbolt as pl", "import lightning.pytorch as pl")


async def _fit_from_lens(root: Path) -> tuple[dict, list[str]]:  # type: ignore[type-arg]
    async with lsp_session(root) as s:
        uri = await s.open()
        lenses = await s.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        (fit,) = [lens for lens in lenses if lens.command and lens.command.title.endswith("Fit")]
        result = await s.command(fit.command.command, fit.command.arguments[0])
        await s.ended(result["runId"])
        finished = s.events_of(result["runId"], "finished")
        failed = s.events_of(result["runId"], "failed")
        assert not failed, failed
        return finished[0], result["command"]


async def test_fit_lens_trains_a_lightning_module_on_torchbolt(tmp_path: Path) -> None:
    assert "import lightning.pytorch as pl" in LIGHTNING_MODEL
    root = write_workspace(tmp_path / "ws", model=LIGHTNING_MODEL, trainer={"max_epochs": 2})
    finished, command = await _fit_from_lens(root)
    assert finished["status"] == "success" and finished["epochs"] == 2 and finished["global_step"] == 16
    assert {"train_loss", "val_loss"} <= set(finished["callback_metrics"])
    assert "--engine" not in command
    assert "torchbolt_version" in _checkpoint_keys(finished)  # written by torchbolt


def _checkpoint_keys(finished: dict) -> set[str]:  # type: ignore[type-arg]
    import torch

    return set(torch.load(finished["best_model_path"], map_location="cpu", weights_only=False))


async def test_engine_setting_runs_the_real_lightning(tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    root = write_workspace(tmp_path / "ws", model=LIGHTNING_MODEL, trainer={"max_epochs": 1},
                           run_table='engine = "lightning"')
    finished, _ = await _fit_from_lens(root)
    assert finished["status"] == "success" and finished["global_step"] == 8
    keys = _checkpoint_keys(finished)
    assert "pytorch-lightning_version" in keys and "torchbolt_version" not in keys  # written by Lightning


async def test_script_run_on_real_lightning_streams_events(tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    script = LIGHTNING_MODEL + textwrap.dedent('''

        if __name__ == "__main__":
            trainer = pl.Trainer(max_epochs=1, enable_progress_bar=False, enable_model_summary=False, logger=False)
            trainer.fit(LitModel())
        ''')
    root = write_workspace(tmp_path / "ws", model=script, run_table='engine = "lightning"')
    async with lsp_session(root) as s:
        uri = await s.open()
        lenses = await s.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        (run_lens,) = [lens for lens in lenses if lens.command and lens.command.title == "▶ Run model.py"]
        result = await s.command(run_lens.command.command, run_lens.command.arguments[0])
        await s.ended(result["runId"])
        assert result["command"][1:4] == ["-m", "torchbolt", "run"]
        started = s.events_of(result["runId"], "run_started")
        finished = s.events_of(result["runId"], "finished")
        # the events come from Lightning's Trainer (an explicit run_started), not synthesized at exit
        assert started and finished and finished[0]["status"] == "success" and finished[0]["global_step"] == 8
        assert "train_loss" in finished[0]["callback_metrics"]
