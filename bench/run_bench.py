"""Runs from the editor: start-up latency and event throughput, through the real language server.

1. Time from the `torchbolt.fit` command to the first training-step event (the real runtime, a tiny
   module), next to `import torch` in a fresh interpreter. Target: <= import torch + 1.5 s.
2. Sustained event throughput: a synthetic producer streams progress events at a fixed rate through the
   server (`tests/runs/fake_runtime.py` as the run interpreter); we measure how far behind the server's
   notifications trail the producer (lag), whether every event was stored, and completion latency
   during the flood next to idle.

Usage: .venv/bin/python bench/run_bench.py [--repeats 3] [--rates 5000,20000] [--seconds 3]
Prints tables; the numbers recorded in bench/README.md ("Runs") come from this script.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, client_capabilities

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
FAKE = REPO / "tests" / "runs" / "fake_runtime.py"

MODEL = textwrap.dedent('''\
    import torch
    import torchbolt as pl
    from torch.utils.data import DataLoader, TensorDataset


    class LitModel(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

        def train_dataloader(self):
            x = torch.randn(64, 4)
            return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)
    ''')


def _plain(value: Any) -> Any:
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    return value


class Session:
    """A pytest-lsp client on a workspace, collecting run events with their arrival times."""

    def __init__(self, root: Path, run: dict[str, Any]) -> None:
        self.root, self.run = root, run
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.client: Any = None
        self.changed = asyncio.Event()

    async def __aenter__(self) -> Session:
        self.client = await ClientServerConfig(server_command=[PYTHON, "-m", "torchbolt_lsp"]).start()

        @self.client.feature("torchbolt/runEvent")
        def on_event(params: Any) -> None:
            self.events.append((time.time(), _plain(params.event)))
            self.changed.set()

        @self.client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
        def on_request(params: Any) -> None:
            return None

        @self.client.feature(types.WORKSPACE_INLAY_HINT_REFRESH)
        def on_refresh(params: Any) -> None:
            return None

        await self.client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities("neovim@v0.11"), root_uri=self.root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=self.root.as_uri(), name="ws")],
            initialization_options={"trusted": True, "settings": {"run": self.run}}))
        uri = (self.root / "model.py").as_uri()
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=uri, language_id="python", version=1, text=(self.root / "model.py").read_text())))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.shutdown_session()
        await self.client.stop()

    async def wait(self, cond: Any, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("condition not met")
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def worker_idle(self, uri: str, need_ready: bool = False) -> None:
        """Wait until no warm worker is starting (and, with need_ready, until one is ready)."""
        for _ in range(3000):
            runs = await self.client.workspace_execute_command_async(types.ExecuteCommandParams(
                command="torchbolt.runs", arguments=[{"uri": uri}]))
            states = set(runs["workers"].values())
            if "starting" not in states and (not need_ready or "ready" in states):
                return
            await asyncio.sleep(0.2)
        raise TimeoutError("the warm worker did not get ready")

    def of(self, run_id: str, kind: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, e) for t, e in self.events if e.get("run_id") == run_id and e.get("type") == kind]

    async def fit(self, overrides: dict[str, Any] | None = None) -> tuple[float, str, bool]:
        arg: dict[str, Any] = {"uri": (self.root / "model.py").as_uri(), "className": "LitModel"}
        if overrides:
            arg["overrides"] = overrides
        for _ in range(300):  # the previous run's process may still be exiting
            start = time.time()
            result = await self.client.workspace_execute_command_async(types.ExecuteCommandParams(
                command="torchbolt.fit", arguments=[arg]))
            if "already running" not in result.get("error", ""):
                break
            await asyncio.sleep(0.1)
        if "runId" not in result:
            raise RuntimeError(f"fit refused: {result}")
        return start, result["runId"], bool(result.get("warm"))


def import_torch_s(first_optimizer: bool = False) -> float:
    """Wall time of a fresh interpreter importing torch (and, optionally, building its first optimizer,
    which imports torch._dynamo lazily: a cost every torch training script pays)."""
    code = "import torch"
    if first_optimizer:
        code += "; torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)"
    start = time.perf_counter()
    subprocess.run([PYTHON, "-c", code], check=True)
    return time.perf_counter() - start


async def first_step(root: Path, repeats: int) -> list[dict[str, float]]:
    """Per repeat: import torch, import torch + first optimizer (plain torch baselines), and command → first
    training-step event for a cold start and for a start served by the warm worker, measured alternately so
    machine load affects all alike."""
    rows = []
    trainer = {"max_epochs": 1, "enable_progress_bar": False, "enable_model_summary": False,
               "enable_checkpointing": False, "logger": False}
    async with Session(root, {"trainer": trainer}) as s:
        uri = (root / "model.py").as_uri()
        for _ in range(repeats):
            await s.worker_idle(uri)  # a worker warming up would slow everything measured next
            row = {"torch": import_torch_s(), "torch_optim": import_torch_s(first_optimizer=True)}
            # an environment of its own makes the run start cold (the warm worker cannot serve it)
            for mode, overrides in (("cold", {"env": {"TORCHBOLT_BENCH": "cold"}}), ("warm", None)):
                if mode == "warm":
                    await s.client.text_document_code_lens_async(
                        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
                    await s.worker_idle(uri, need_ready=True)  # warms up while the user reads the code
                else:
                    await s.worker_idle(uri)
                start, run_id, warm = await s.fit(overrides)
                if warm != (mode == "warm"):
                    raise RuntimeError(f"expected a {mode} start")
                await s.wait(lambda run_id=run_id: s.of(run_id, "finished") or s.of(run_id, "failed"))
                failed = s.of(run_id, "failed")
                if failed:
                    raise RuntimeError(f"benchmark run failed: {failed[0][1]['message']}")
                step = next(e for _, e in s.events if e.get("run_id") == run_id and e.get("type") == "progress"
                            and e.get("stage") == "train")
                row[mode] = step["t"] - start
            rows.append(row)
    return rows


async def throughput(root: Path, rate: int, seconds: float) -> dict[str, float]:
    shim = root / "fake-python"
    shim.write_text(f"#!/bin/sh\nexec {PYTHON} {FAKE} \"$@\"\n")
    shim.chmod(0o755)
    steps = int(rate * seconds / 2)
    os.environ.update(FAKE_STEPS=str(steps), FAKE_RATE=str(rate), FAKE_EPOCHS="2")
    async with Session(root, {"interpreter": str(shim)}) as s:
        uri = (root / "model.py").as_uri()
        params = types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri),
                                        position=types.Position(line=11, character=8))
        idle = []
        for _ in range(30):
            t0 = time.perf_counter()
            await s.client.text_document_completion_async(params)
            idle.append(time.perf_counter() - t0)
        _, run_id, _ = await s.fit()
        busy = []
        while not s.of(run_id, "finished"):
            t0 = time.perf_counter()
            await s.client.text_document_completion_async(params)
            busy.append(time.perf_counter() - t0)
        lags = [arrived - e["t"] for arrived, e in s.events if e.get("run_id") == run_id]
        started = s.of(run_id, "run_started")[0][1]["t"]
        finished_at, finished = s.of(run_id, "finished")[0]
    # read after the session closed: the server closes the event log once the child's pipe is drained
    stored = (root / ".torchbolt" / "runs" / run_id / "events.jsonl").read_bytes().count(b"\n")
    sent = 1 + 2 + 2 * steps + 2 + 2 + 1
    return {"rate": rate, "sent": sent, "stored": stored, "achieved": 2 * steps / max(finished["t"] - started, 1e-9),
            "notifications": len(lags), "lag_p50_ms": 1000 * statistics.median(lags),
            "lag_p95_ms": 1000 * statistics.quantiles(lags, n=20)[-1], "lag_max_ms": 1000 * max(lags),
            "end_lag_ms": 1000 * (finished_at - finished["t"]),
            "completion_idle_ms": 1000 * statistics.median(idle), "completion_busy_ms": 1000 * statistics.median(busy),
            "completion_busy_p95_ms": 1000 * (statistics.quantiles(busy, n=20)[-1] if len(busy) > 1 else busy[0])}


def callback_cost(steps: int = 200_000, repeats: int = 5) -> tuple[float, float]:
    """(µs per on_train_batch_end of EventStreamCallback, µs per call of a no-op Callback hook), medians."""
    from types import SimpleNamespace

    from torchbolt.callbacks.callback import Callback
    from torchbolt.callbacks.event_stream import EventStreamCallback

    trainer = SimpleNamespace(current_epoch=0, global_step=0, num_training_batches=steps, progress_bar_metrics={"loss": 0.5},
                              logged_metrics={"loss": 0.5}, sanity_checking=False)
    ours, base = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            cb = EventStreamCallback(os.path.join(tmp, "e.jsonl"), run_id="bench")
            noop = Callback()
            t0 = time.perf_counter()
            for i in range(steps):
                cb.on_train_batch_end(trainer, None, None, None, i)
            ours.append((time.perf_counter() - t0) / steps * 1e6)
            t0 = time.perf_counter()
            for i in range(steps):
                noop.on_train_batch_end(trainer, None, None, None, i)
            base.append((time.perf_counter() - t0) / steps * 1e6)
            cb.close()
    return statistics.median(ours), statistics.median(base)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rates", default="5000,20000")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--skip-first-step", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        (root / "model.py").write_text(MODEL)
        if not args.skip_first_step:
            rows = await first_step(root, args.repeats)
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            print(f"\nStart-up, median of {args.repeats} runs (real runtime, tiny module):")
            print(f"| {'measure':<52} | {'seconds':>8} |")
            print(f"|{'-' * 54}|{'-' * 10}|")
            for label, key in (("import torch (fresh interpreter)", "torch"),
                               ("import torch + first optimizer (plain torch)", "torch_optim"),
                               ("command -> first step event, cold start", "cold"),
                               ("command -> first step event, warm worker ready", "warm")):
                print(f"| {label:<52} | {med[key]:>8.2f} |")
            print(f"| {'cold first step - import torch':<52} | {med['cold'] - med['torch']:>8.2f} |")
            print(f"| {'warm first step - import torch (target <= 1.5)':<52} | {med['warm'] - med['torch']:>8.2f} |")
            print(f"ratios to import torch: cold {med['cold'] / med['torch']:.2f}x, warm {med['warm'] / med['torch']:.2f}x")
        ours, base = callback_cost()
        print("\nEventStreamCallback per training step (200,000 calls, median of 5):")
        print(f"| {'hook':<46} | {'µs/step':>8} |")
        print(f"|{'-' * 48}|{'-' * 10}|")
        print(f"| {'EventStreamCallback.on_train_batch_end':<46} | {ours:>8.3f} |")
        print(f"| {'no-op Callback.on_train_batch_end (baseline)':<46} | {base:>8.3f} |")
        print(f"added per step: {ours - base:.3f} µs ({ours / base:.1f}x a no-op hook call)")
        print(f"\nEvent throughput through the server ({args.seconds:.0f} s of progress events per rate):")
        head = ("rate/s", "achieved/s", "sent", "stored", "notifs", "lag p50 ms", "lag p95 ms", "lag max ms",
                "end lag ms", "compl idle ms", "compl busy ms", "busy p95 ms")
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("-" * (len(h) + 2) for h in head) + "|")
        for rate in (int(r) for r in args.rates.split(",")):
            r = await throughput(root, rate, args.seconds)
            print(f"| {r['rate']:>6} | {r['achieved']:>10.0f} | {r['sent']:>4} | {r['stored']:>6} | "
                  f"{r['notifications']:>6} | {r['lag_p50_ms']:>10.1f} | {r['lag_p95_ms']:>10.1f} | "
                  f"{r['lag_max_ms']:>10.1f} | {r['end_lag_ms']:>10.1f} | {r['completion_idle_ms']:>13.1f} | "
                  f"{r['completion_busy_ms']:>13.1f} | {r['completion_busy_p95_ms']:>11.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
