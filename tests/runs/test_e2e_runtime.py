"""End to end: the real server starts the real runtime (same venv) on a tiny LightningModule."""

from __future__ import annotations

import asyncio
import os
import textwrap
import urllib.request
from pathlib import Path

import pytest
from lsprotocol import types
from runs_support import MODEL, lsp_session, write_workspace
from torchbolt_lsp.runs import format as fmt

pytestmark = pytest.mark.slow


def _hint_labels(hints: list[types.InlayHint] | None) -> list[str]:
    return [h.label if isinstance(h.label, str) else "".join(p.value for p in h.label) for h in hints or []]


async def _run_diagnostics(s, uri: str) -> list[types.Diagnostic]:
    """The run-failure diagnostics of a document. Neovim 0.11 pulls lint diagnostics but cannot be asked to
    re-pull, so run failures are pushed to it, and never repeated in its pull answers."""
    report = await s.client.text_document_diagnostic_async(types.DocumentDiagnosticParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    assert not [d for d in report.items if d.source == "torchbolt run"]
    return [d for d in s.client.diagnostics.get(uri, ()) if d.source == "torchbolt run"]


async def _ended(s, run_id: str) -> None:
    await s.wait_for(lambda: s.events_of(run_id, "finished") or s.events_of(run_id, "failed"), timeout=180)
    await s.wait_for(lambda: any(isinstance(r, types.WorkDoneProgressEnd) for t, rs in s.client.progress_reports.items()
                                 if run_id in str(t) for r in rs), timeout=30)


async def _all_hints(s, uri: str) -> list[str]:
    return _hint_labels(await s.client.text_document_inlay_hint_async(types.InlayHintParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(types.Position(0, 0), types.Position(200, 0)))))


async def test_fit_completes_with_progress_hints_and_summary(tmp_path: Path) -> None:
    # 30 ms per step: the run lasts longer than a few 0.1 s publish intervals, so progress reports show up
    paced = MODEL.replace("        return loss\n", "        import time; time.sleep(0.03)\n        return loss\n", 1)
    root = write_workspace(tmp_path / "ws", model=paced)
    # VS Code shows showMessageRequest as a toast: the end of the run offers TensorBoard there
    async with lsp_session(root, client_name="Visual Studio Code") as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        run_id = result["runId"]
        await s.wait_for(lambda: s.message_requests, timeout=180)
        finished = s.events_of(run_id, "finished")[0]
        assert finished["status"] == "success" and finished["epochs"] == 3

        (token,) = [t for t in s.client.progress_reports if str(t).startswith("torchbolt-run-")]
        reports = s.client.progress_reports[token]
        assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].title == "Fit LitModel"
        assert any(isinstance(r, types.WorkDoneProgressReport) and r.message.startswith("epoch ")
                   for r in reports)
        assert isinstance(reports[-1], types.WorkDoneProgressEnd) and reports[-1].message.startswith("done")

        # the hints carry the very values the event stream reported at the end of the run
        labels = await _all_hints(s, uri)
        val = fmt.format_value(finished["callback_metrics"]["val_loss"])
        assert any(label.startswith(f"val_loss {val} ") for label in labels), (labels, val)
        train = fmt.format_value(finished["callback_metrics"]["train_loss"])
        assert any(label.startswith(f"train_loss {train}") for label in labels), (labels, train)

        message = s.message_requests[0]
        assert message.message.startswith("Fit LitModel: done · 3 epochs")
        assert "checkpoint: lightning_logs/version_0/checkpoints/epoch=2-step=24.ckpt" in message.message
        assert "logs: lightning_logs/version_0" in message.message
        assert [a.title for a in message.actions] == ["TensorBoard"]
        assert os.path.isfile(finished["best_model_path"])

        # hover on the metric name shows its values per epoch and the checkpoint
        line = next(i for i, t in enumerate(paced.splitlines()) if '"val_loss"' in t)
        col = paced.splitlines()[line].index("val_loss") + 2
        hover = await s.client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line, col)))
        text = hover.contents.value
        assert f"in run `{run_id}`" in text and "| 2 |" in text and "best checkpoint" in text

        # Validate from the same lens set: one pass over the validation data, its metrics in the message
        result = await s.command("torchbolt.validate", {"uri": uri, "className": "LitModel"})
        await _ended(s, result["runId"])
        (end,) = s.events_of(result["runId"], "validation_end")
        assert end["stage"] == "validate" and "val_loss" in end["metrics"]
        await s.wait_for(lambda: len(s.message_requests) == 2)
        assert s.message_requests[1].message.startswith("Validate LitModel: done")
        assert f"val_loss {fmt.format_value(end['metrics']['val_loss'])}" in s.message_requests[1].message


async def test_stop_ends_the_run_gracefully_with_a_complete_checkpoint(tmp_path: Path) -> None:
    slow = MODEL.replace("        loss = torch.nn.functional.mse_loss(self.layer(x), y)\n",
                         "        loss = torch.nn.functional.mse_loss(self.layer(x), y)\n"
                         "        import time; time.sleep(0.02)\n", 1)
    slow += ("\n    def configure_callbacks(self):\n"
             "        from torchbolt.callbacks import OnExceptionCheckpoint\n"
             "        return [OnExceptionCheckpoint(dirpath='stopped')]\n")
    root = write_workspace(tmp_path / "ws", model=slow, trainer={"max_epochs": 1000})
    async with lsp_session(root) as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        run_id = result["runId"]
        await s.wait_for(lambda: any(e["stage"] == "train" and e["epoch"] >= 1
                                     for e in s.events_of(run_id, "progress")), timeout=180)
        assert (await s.command("torchbolt.stop", {"runId": run_id}))["stopped"] is True
        await s.wait_for(lambda: s.events_of(run_id, "finished") or s.events_of(run_id, "failed"), timeout=60)
        await s.wait_for(lambda: any(isinstance(r, types.WorkDoneProgressEnd)
                                     for rs in s.client.progress_reports.values() for r in rs))
        finished = s.events_of(run_id, "finished")
        assert finished and finished[0]["status"] == "interrupted", s.events_of(run_id)
        runs = (await s.command("torchbolt.runs", {"uri": uri}))["runs"]
        assert runs[0]["status"] == "interrupted"
    # the child is gone, and its checkpoint loads completely
    with pytest.raises(ProcessLookupError):
        os.kill(result["pid"], 0)
    ckpt = root / "stopped" / "on_exception.ckpt"
    import torch

    data = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert {"state_dict", "epoch", "global_step", "optimizer_states", "loops"} <= set(data)
    assert set(data["state_dict"]) == {"layer.weight", "layer.bias"}
    assert data["global_step"] > 8


async def test_failing_fit_puts_a_diagnostic_at_the_raising_line(tmp_path: Path) -> None:
    broken = MODEL.replace("        return loss\n",
                           "        if batch_idx == 2:\n            raise ValueError('loss went sideways')\n"
                           "        return loss\n", 1)
    root = write_workspace(tmp_path / "ws", model=broken)
    raising = next(i for i, t in enumerate(broken.splitlines()) if "raise ValueError" in t)
    async with lsp_session(root) as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        await _ended(s, result["runId"])
        failed = s.events_of(result["runId"], "failed")[0]
        assert failed["error_type"] == "ValueError" and failed["phase"] == "run"
        (diag,) = await _run_diagnostics(s, uri)
        assert diag.range.start.line == raising
        assert diag.message == "ValueError: loss went sideways (during the run)"
        assert diag.severity == types.DiagnosticSeverity.Error
        assert any("failed: ValueError" in m.message for m in s.client.messages)

        # the next run of the target clears it
        (root / "model.py").write_text(MODEL)
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        assert await _run_diagnostics(s, uri) == []
        await _ended(s, result["runId"])
        assert s.events_of(result["runId"], "finished")


async def test_failures_before_training_are_reported_the_same_way(tmp_path: Path) -> None:
    broken = "import not_installed_anywhere\n" + MODEL
    root = write_workspace(tmp_path / "ws", model=broken)
    async with lsp_session(root) as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        await _ended(s, result["runId"])
        failed = s.events_of(result["runId"], "failed")[0]
        assert failed["phase"] == "setup" and failed["error_type"] == "ModuleNotFoundError"
        (diag,) = await _run_diagnostics(s, uri)
        assert diag.range.start.line == 0 and "before training started" in diag.message

    # a bad Trainer argument value from pyproject.toml: shown at the class and at the setting
    root = write_workspace(tmp_path / "ws2", trainer={"accelerator": "tpu9"})
    pyproject_uri = (root / "pyproject.toml").as_uri()
    async with lsp_session(root) as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        await _ended(s, result["runId"])
        (diag,) = await _run_diagnostics(s, uri)
        class_line = next(i for i, t in enumerate(MODEL.splitlines()) if t.startswith("class LitModel"))
        assert diag.range.start.line == class_line and "invalid accelerator" in diag.message
        await s.wait_for(lambda: s.client.diagnostics.get(pyproject_uri))  # not a pulled document: pushed
        (setting,) = s.client.diagnostics[pyproject_uri]
        toml_line = (root / "pyproject.toml").read_text().splitlines()[setting.range.start.line]
        assert toml_line.startswith("accelerator")


async def test_tensorboard_starts_on_loopback_and_is_shown(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws")
    (root / "lightning_logs").mkdir()
    async with lsp_session(root) as s:
        uri = await s.open()
        result = await s.command("torchbolt.openTensorBoard", {"uri": uri})
        url = result["url"]
        assert url.startswith("http://127.0.0.1:")
        assert s.client.shown_documents[-1].uri == url and s.client.shown_documents[-1].external
        again = await s.command("torchbolt.openTensorBoard", {"uri": uri})
        assert again["url"] == url  # one TensorBoard per workspace

        def get() -> int:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status

        assert await asyncio.get_running_loop().run_in_executor(None, get) == 200
    # stopped with the server
    with pytest.raises(OSError):
        await asyncio.get_running_loop().run_in_executor(None, get)


async def test_a_script_trainer_fit_call_runs_with_events(tmp_path: Path) -> None:
    script = MODEL + textwrap.dedent('''

        if __name__ == "__main__":
            trainer = pl.Trainer(max_epochs=1, enable_progress_bar=False, enable_model_summary=False, logger=False)
            trainer.fit(LitModel())
        ''')
    root = write_workspace(tmp_path / "ws", model=script)
    async with lsp_session(root) as s:
        uri = await s.open()
        lenses = await s.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        (run_lens,) = [lens for lens in lenses if lens.command.title == "▶ Run model.py"]
        fit_line = next(i for i, t in enumerate(script.splitlines()) if "trainer.fit(" in t)
        assert run_lens.range.start.line == fit_line
        result = await s.command(run_lens.command.command, run_lens.command.arguments[0])
        await _ended(s, result["runId"])
        assert result["command"][1:] == ["-m", "torchbolt", "run", str(root / "model.py")]
        finished = s.events_of(result["runId"], "finished")
        assert finished and finished[0]["status"] == "success" and finished[0]["global_step"] == 8


async def test_a_warm_worker_serves_the_next_fit(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", trainer={"max_epochs": 1})
    async with lsp_session(root) as s:
        uri = await s.open()
        # a folder never run from the editor gets no worker from merely showing its code lenses
        await s.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        assert (await s.command("torchbolt.runs", {"uri": uri}))["workers"] == {}
        first = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        assert first["warm"] is False
        await _ended(s, first["runId"])
        # after a run, a worker with torch imported waits for the next one
        await s.wait_for(lambda: any("warm run worker ready" in m.message for m in s.client.log_messages),
                         timeout=180)
        worker_pid = int(next(m.message for m in s.client.log_messages
                              if "warm run worker ready" in m.message).rsplit("pid ", 1)[1].rstrip(")"))
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        assert result["warm"] is True and result["pid"] == worker_pid
        await _ended(s, result["runId"])
        finished = s.events_of(result["runId"], "finished")
        assert finished and finished[0]["status"] == "success" and finished[0]["global_step"] == 8
        assert s.events_of(result["runId"], "run_started")[0]["pid"] == worker_pid
        # a run with its own environment cannot use the worker (torch may read it at import): started cold
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel",
                                                   "overrides": {"env": {"OMP_NUM_THREADS": "1"}}})
        assert result["warm"] is False
        await _ended(s, result["runId"])
        assert s.events_of(result["runId"], "finished")[0]["status"] == "success"


async def test_untrusted_workspaces_get_no_worker(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws")
    async with lsp_session(root, trusted=False) as s:
        uri = await s.open()
        await s.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        runs = await s.command("torchbolt.runs", {"uri": uri})
        assert runs["workers"] == {}


def _group(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry))
    return found


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads process groups from /proc")
async def test_stop_ends_the_whole_process_group_dataloader_workers_included(tmp_path: Path) -> None:
    model = MODEL.replace("return DataLoader(_data(64, 0), batch_size=8)",
                          "return DataLoader(_data(64, 0), batch_size=8, num_workers=2, persistent_workers=True)")
    model = model.replace("        return loss\n", "        import time; time.sleep(0.05)\n        return loss\n", 1)
    assert "num_workers=2" in model
    root = write_workspace(tmp_path / "ws", model=model, trainer={"max_epochs": 1000, "limit_val_batches": 0})
    async with lsp_session(root) as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        run_id, pid = result["runId"], result["pid"]
        await s.wait_for(lambda: any(e["stage"] == "train" and e["epoch"] >= 1
                                     for e in s.events_of(run_id, "progress")), timeout=180)
        members = _group(pid)
        assert pid in members and len(members) >= 3, members  # the run and its two DataLoader workers
        assert (await s.command("torchbolt.stop", {"runId": run_id}))["stopped"] is True
        await _ended(s, run_id)
        assert s.events_of(run_id, "finished")[0]["status"] == "interrupted", s.events_of(run_id)
        assert _group(pid) == []  # nothing of the run is left
        # a stale Stop (the run has ended) does nothing and says so
        stale = await s.command("torchbolt.stop", {"runId": run_id})
        assert stale["stopped"] is False and "not running" in stale["message"]


async def test_a_fit_lens_on_an_unmodified_lightning_class_trains_it(tmp_path: Path) -> None:
    """Code written against `lightning.pytorch` runs on torchbolt from its lens, without editing an import."""
    lightning_model = MODEL.replace("import torchbolt as pl\n", "import lightning.pytorch as pl\n") + (
        "\n    def on_train_start(self):\n"
        "        open('engine.txt', 'w').write(type(self.trainer).__module__ + ' ' + pl.LightningModule.__module__)\n")
    assert "import lightning.pytorch as pl" in lightning_model
    root = write_workspace(tmp_path / "ws", model=lightning_model, trainer={"max_epochs": 1})
    async with lsp_session(root) as s:
        uri = await s.open()
        lenses = await s.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        (fit,) = [lens for lens in lenses if lens.command.command == "torchbolt.fit"]
        result = await s.command(fit.command.command, fit.command.arguments[0])
        await _ended(s, result["runId"])
        assert not s.events_of(result["runId"], "failed"), s.events_of(result["runId"], "failed")
        (started,) = s.events_of(result["runId"], "run_started")
        assert started["target"].endswith("model.py::LitModel") and started["torchbolt_version"]
        (finished,) = s.events_of(result["runId"], "finished")
        assert finished["status"] == "success" and finished["global_step"] == 8
        assert "val_loss" in finished["callback_metrics"]
        trainer_module, module_module = (root / "engine.txt").read_text().split()
        assert trainer_module.startswith("torchbolt.") and module_module.startswith("torchbolt.")
