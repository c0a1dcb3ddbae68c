"""The server side of runs end to end with a synthetic runtime (no torch): progress, notifications, hints,
history, refusals. The real runtime is exercised in test_e2e_runtime.py."""

from __future__ import annotations

import json
from pathlib import Path

from lsprotocol import types
from runs_support import fake_interpreter, lsp_session, write_workspace


async def test_fake_fit_streams_progress_events_and_hints(tmp_path: Path, monkeypatch) -> None:
    root = write_workspace(tmp_path / "ws")
    monkeypatch.setenv("FAKE_STEPS", "40")
    editor = {"interpreter": fake_interpreter(root), "trainer": {"max_epochs": 7, "limit_val_batches": 2}}
    async with lsp_session(root, run=editor) as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel",
                                                   "overrides": {"limit_val_batches": 1}})
        run_id = result["runId"]
        # pyproject (max_epochs 3) < editor settings (7) < command overrides (limit_val_batches 1)
        flags = result["command"][result["command"].index("model.py::LitModel") + 1:]
        assert flags[flags.index("--trainer.max_epochs") + 1] == "7"
        assert flags[flags.index("--trainer.limit_val_batches") + 1] == "1"
        assert flags[flags.index("--trainer.enable_progress_bar") + 1] == "false"
        await s.wait_for(lambda: s.events_of(run_id, "finished"))
        # Neovim renders showMessageRequest as a blocking prompt: the end of a run is a plain message there
        await s.wait_for(lambda: any("Fit LitModel: done" in m.message for m in s.client.messages))
        assert not s.message_requests
        kinds = [e["type"] for e in s.events_of(run_id)]
        assert kinds[0] == "run_started" and kinds[-1] == "finished"
        assert kinds.count("validation_end") == 2 and "progress" in kinds
        (token,) = [t for t in s.client.progress_reports if str(t).startswith("torchbolt-run-")]
        reports = s.client.progress_reports[token]
        assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].title == "Fit LitModel"
        assert isinstance(reports[-1], types.WorkDoneProgressEnd)
        hints = await s.client.text_document_inlay_hint_async(types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(types.Position(0, 0), types.Position(100, 0))))
        labels = [h.label for h in hints]
        assert any(label.startswith("val_loss 0.25 ↓") for label in labels), labels
        summary = json.loads((root / ".torchbolt" / "runs" / run_id / "summary.json").read_text())
        assert summary["status"] == "success"
        lines = (root / ".torchbolt" / "runs" / run_id / "events.jsonl").read_bytes().splitlines()
        assert len(lines) == 1 + 2 + 80 + 2 + 2 + 1  # every event is stored
        assert 1 <= kinds.count("progress") <= 80  # notifications: consecutive progress may be coalesced


async def test_run_state_follows_the_record_and_a_status_item_client_gets_no_second_progress(
        tmp_path: Path, monkeypatch) -> None:
    root = write_workspace(tmp_path / "ws")
    monkeypatch.setenv("FAKE_STEPS", "30")
    monkeypatch.setenv("FAKE_RATE", "100")  # 0.6 s: several publish intervals
    async with lsp_session(root, profile="visual-studio-code", run={"interpreter": fake_interpreter(root)},
                           client_name="Visual Studio Code", options={"runStatusItem": True}) as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        run_id = result["runId"]
        await s.wait_for(lambda: any(st["runId"] == run_id and not st["active"] for st in s.run_states))
        states = [st for st in s.run_states if st["runId"] == run_id]
        assert states[0]["status"] == "starting" and states[0]["active"] is True
        assert any(st["status"] == "running" and st["epoch"] is not None and st["message"].startswith("epoch ")
                   for st in states)
        final = states[-1]
        assert final["status"] == "success" and final["active"] is False and final["percentage"] is None
        assert final["message"].startswith("done") and final["metrics"]["val_loss"] == 0.25
        assert all(a != b for a, b in zip(states[:-1], states[1:], strict=True))  # sent only when something changed
        # the extension renders this state in its one status item: no work-done progress besides it
        assert not [t for t in s.client.progress_reports if str(t).startswith("torchbolt-run-")]
        await s.wait_for(lambda: s.message_requests)  # VS Code: the end of a run is a toast with TensorBoard
        assert [a.title for a in s.message_requests[-1].actions] == ["TensorBoard"]


async def test_untrusted_workspace_refuses_to_run(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws")
    async with lsp_session(root, trusted=False, run={"interpreter": fake_interpreter(root)}) as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        assert "not trusted" in result["error"]
        await s.wait_for(lambda: any("not trusted" in m.message for m in s.client.messages))
        assert not (root / ".torchbolt").exists()  # nothing was launched or recorded


async def test_module_without_data_gets_a_message_not_a_run(tmp_path: Path) -> None:
    model = ("import torchbolt as pl\n\n\nclass NoData(pl.LightningModule):\n"
             "    def training_step(self, batch, batch_idx):\n        return batch.sum()\n")
    root = write_workspace(tmp_path / "ws", model=model)
    async with lsp_session(root, run={"interpreter": fake_interpreter(root)}) as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "position": {"line": 4, "character": 8}})
        assert "NoData has no train_dataloader()" in result["error"]
        assert "[tool.torchbolt.run]" in result["error"]
        # with a DataModule configured the same module runs
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "NoData",
                                                   "overrides": {"data": "model.py::Whatever"}})
        assert "runId" in result
        await s.wait_for(lambda: s.events_of(result["runId"], "finished"))
        # a base class from an installed package may define the loaders: no static verdict, the run starts
        (root / "mixed.py").write_text("import torchbolt as pl\nfrom somepkg import LoadersMixin\n\n\n"
                                       "class Mixed(LoadersMixin, pl.LightningModule):\n    pass\n")
        mixed = await s.open("mixed.py")
        result = await s.command("torchbolt.fit", {"uri": mixed, "className": "Mixed"})
        assert "runId" in result, result
        await s.wait_for(lambda: s.events_of(result["runId"], "finished"))


async def test_bad_trainer_setting_is_refused_before_launch(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws")
    async with lsp_session(root, run={"interpreter": fake_interpreter(root)}) as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel",
                                                   "overrides": {"max_epoch": 2}})
        assert "'max_epoch' is not a Trainer argument; did you mean 'max_epochs'?" in result["error"]


async def test_code_lenses_and_stop_while_running(tmp_path: Path, monkeypatch) -> None:
    root = write_workspace(tmp_path / "ws")
    monkeypatch.setenv("FAKE_STEPS", "100000")
    monkeypatch.setenv("FAKE_RATE", "2000")
    async with lsp_session(root, run={"interpreter": fake_interpreter(root)}, lens_refresh=True) as s:
        uri = await s.open()
        params = types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
        titles = [lens.command.title for lens in await s.client.text_document_code_lens_async(params)]
        assert titles == ["▶ Fit", "Validate", "Test", "Find LR", "TensorBoard"]
        assert s.client_has_inlay_hints_and_lens_refresh()
        lens_refreshes = s.lens_refreshes
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        again = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        assert "already running" in again["error"]  # one active run per target
        await s.wait_for(lambda: s.events_of(result["runId"], "progress"))
        # the client is asked to re-pull lenses so that "Stop" shows (even though it has inlay hints)
        await s.wait_for(lambda: s.lens_refreshes > lens_refreshes)
        lens_refreshes = s.lens_refreshes
        titles = [lens.command.title for lens in await s.client.text_document_code_lens_async(params)]
        assert titles == ["▶ Fit", "Validate", "Test", "Find LR", "TensorBoard", "■ Stop"]  # the same order, Stop last
        stopped = await s.command("torchbolt.stop", {"uri": uri, "className": "LitModel"})
        assert stopped == {"stopped": True, "runId": result["runId"]}
        await s.wait_for(lambda: s.events_of(result["runId"], "finished"))
        assert s.events_of(result["runId"], "finished")[0]["status"] == "interrupted"
        await s.wait_for(lambda: any(isinstance(r, types.WorkDoneProgressEnd)
                                     for rs in s.client.progress_reports.values() for r in rs))
        await s.wait_for(lambda: s.lens_refreshes > lens_refreshes)  # and again when the run ends
        titles = [lens.command.title for lens in await s.client.text_document_code_lens_async(params)]
        assert titles == ["▶ Fit", "Validate", "Test", "Find LR", "TensorBoard"]
        # a stale Stop lens (clicked after the end) harms nothing and says so
        stale = await s.command("torchbolt.stop", {"uri": uri, "className": "LitModel"})
        assert stale["stopped"] is False and "LitModel is not running (it ended: interrupted)" in stale["message"]
        await s.wait_for(lambda: any("nothing to stop" in m.message for m in s.client.messages))


async def test_cancelling_progress_stops_the_run_and_a_stuck_run_is_killed(tmp_path: Path, monkeypatch) -> None:
    root = write_workspace(tmp_path / "ws")
    monkeypatch.setenv("FAKE_STEPS", "4")
    monkeypatch.setenv("FAKE_MODE", "hang")
    monkeypatch.setenv("TORCHBOLT_STOP_GRACE_S", "1")
    async with lsp_session(root, run={"interpreter": fake_interpreter(root)}) as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        await s.wait_for(lambda: any(e["batch"] == 3 for e in s.events_of(result["runId"], "progress")))
        (token,) = [t for t in s.client.progress_reports if str(t).startswith("torchbolt-run-")]
        s.client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
        await s.wait_for(lambda: any(isinstance(r, types.WorkDoneProgressEnd) for r in s.client.progress_reports[token]))
        runs = await s.command("torchbolt.runs", {"uri": uri})
        row = next(r for r in runs["runs"] if r["runId"] == result["runId"])
        # the fake ignores SIGINT while hanging: it was killed after the grace period, and says so
        assert row["status"] == "interrupted"
        summary = json.loads((root / ".torchbolt" / "runs" / result["runId"] / "summary.json").read_text())
        assert summary["returncode"] == -9


async def test_restart_shows_the_stored_run_and_runs_compares(tmp_path: Path, monkeypatch) -> None:
    root = write_workspace(tmp_path / "ws")
    monkeypatch.setenv("FAKE_STEPS", "5")
    interpreter = fake_interpreter(root)
    async with lsp_session(root, run={"interpreter": interpreter}) as s:
        uri = await s.open()
        first = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        await s.ended(first["runId"])
        second = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel",
                                                   "overrides": {"env": {"FAKE_EPOCHS": "4"}}})
        await s.ended(second["runId"])
    async with lsp_session(root, run={"interpreter": interpreter}) as s:
        uri = await s.open()
        hints = await s.client.text_document_inlay_hint_async(types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(types.Position(0, 0), types.Position(100, 0))))
        labels = [h.label for h in hints]
        assert any(label.startswith("val_loss 0.125 ↓") for label in labels), labels  # 0.5 / 4 epochs
        runs = (await s.command("torchbolt.runs", {"uri": uri}))["runs"]
        assert [r["runId"] for r in runs] == [second["runId"], first["runId"]]
        assert runs[0]["previousRunId"] == first["runId"]
        assert runs[0]["metric"] == "val_loss" and "0.25 → 0.125 (better)" in runs[0]["comparison"]


async def test_clients_without_inlay_hints_get_the_values_as_code_lenses(tmp_path: Path, monkeypatch) -> None:
    root = write_workspace(tmp_path / "ws")
    monkeypatch.setenv("FAKE_STEPS", "5")
    async with lsp_session(root, profile="visual-studio-code", run={"interpreter": fake_interpreter(root)}) as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        await s.wait_for(lambda: s.events_of(result["runId"], "finished") and s.lens_refreshes > 0)
        lenses = await s.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        assert any(lens.command.title.startswith("val_loss 0.25") for lens in lenses)
        assert s.hint_refreshes == 0  # the client has no inlay hints: nothing is sent for them


async def test_run_actions_are_code_actions_and_datamodule_lens_runs_the_module(tmp_path: Path, monkeypatch) -> None:
    model = ("import torchbolt as pl\n\n\nclass Digits(pl.LightningDataModule):\n    def train_dataloader(self):\n"
             "        return []\n\n\nclass Net(pl.LightningModule):\n    def training_step(self, batch, batch_idx):\n"
             "        self.log('loss', 1.0)\n        return None\n")
    root = write_workspace(tmp_path / "ws", model=model)
    monkeypatch.setenv("FAKE_STEPS", "3")
    async with lsp_session(root, run={"interpreter": fake_interpreter(root)}) as s:
        uri = await s.open()
        actions = await s.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(types.Position(10, 8), types.Position(10, 8)),
            context=types.CodeActionContext(diagnostics=[], only=["source.torchbolt"])))
        assert [(a.title, a.kind) for a in actions] == [
            ("Fit Net", "source.torchbolt.fit"), ("Validate Net", "source.torchbolt.validate"),
            ("Test Net", "source.torchbolt.test"), ("Find LR Net", "source.torchbolt.lrFind"),
            ("Open TensorBoard", "source.torchbolt.tensorboard")]
        lenses = await s.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        (dm_lens,) = [lens for lens in lenses if lens.range.start.line == 3 and "data" in lens.command.title]
        result = await s.command(dm_lens.command.command, dm_lens.command.arguments[0])
        # the DataModule's lens fits the file's only LightningModule on it
        assert result["target"].endswith("model.py::Net")
        assert result["command"][4:7] == ["model.py::Net", "--data", "model.py::Digits"]
        await s.wait_for(lambda: s.events_of(result["runId"], "finished"))
        # the child's output reached the client's log
        await s.wait_for(lambda: any("fake runtime started" in m.message for m in s.client.log_messages))


async def test_crash_without_a_failed_event_is_read_from_stderr_and_pulled(tmp_path: Path, monkeypatch) -> None:
    root = write_workspace(tmp_path / "ws")
    monkeypatch.setenv("FAKE_STEPS", "3")
    monkeypatch.setenv("FAKE_MODE", "fail")  # dies with a traceback on stderr and no terminal event
    async with lsp_session(root, run={"interpreter": fake_interpreter(root)}, diagnostic_refresh=True) as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        await s.ended(result["runId"])
        failed = s.events_of(result["runId"], "failed")[0]  # synthesized by the server from stderr
        assert failed["error_type"] == "ZeroDivisionError" and failed["frames"][-1]["function"] == "main"
        assert s.client.diagnostic_refresh_count >= 1
        report = await s.client.text_document_diagnostic_async(types.DocumentDiagnosticParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
        (diag,) = [d for d in report.items if d.source == "torchbolt run"]
        class_line = next(i for i, t in enumerate((root / "model.py").read_text().splitlines())
                          if t.startswith("class LitModel"))
        assert diag.range.start.line == class_line  # no workspace frame: shown at the run target
        assert diag.message.startswith("ZeroDivisionError: fake failure")
