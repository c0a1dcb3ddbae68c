"""Diagnostics benchmark: editor latency on a 3,000-line file and `torchbolt check` on 200 files.

1. Starts the real server (`python -m torchbolt_lsp`) with a pygls client using the VS Code capability
   profile (push diagnostics), opens a generated ~3,000-line Lightning file, then makes >= 20 edits.
   For each edit it measures the time from sending the last didChange to receiving the
   publishDiagnostics for that version, minus the server's debounce (DEBOUNCE_S). Reports p50/p95.
   Side by side: the engine alone (`lint_source`) and `ast.parse` on the same text, in this process.
2. Runs `python -m torchbolt_lsp.lint` (= `torchbolt check`) on 200 generated files, 3 times (median
   wall time, interpreter start included), next to a baseline that only reads and `ast.parse`s them.
3. Runs `torchbolt check` and `torchbolt check --fix` on one generated 20,000-line 1.x-style file with
   about 6,000 findings (targets <= 2 s and <= 5 s), next to read + `ast.parse` of it in a fresh interpreter.

Prints a table against the targets (<= 150 ms p95 after the debounce; <= 3 s for 200 files) and writes
it into bench/README.md under the "Diagnostics" heading (`--no-write` to skip).

    .venv/bin/python bench/lint_bench.py [--edits 30] [--no-write] [--many-only]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET_P95_MS = 150.0
TARGET_CHECK_S = 3.0

BLOCK = '''
class Model{i}(L.LightningModule):
    """Block {i}: a small classifier with the usual hooks."""

    def __init__(self, lr: float = 1e-3, hidden: int = 64):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))
        self.validation_step_outputs = []

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.log("train_loss_{i}", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.validation_step_outputs.append(loss)
        self.log("val_loss_{i}", loss, prog_bar=True)
        self.log("val_acc_{i}", (logits.argmax(-1) == y).float().mean())

    def on_validation_epoch_end(self):
        mean = torch.stack(self.validation_step_outputs).mean()
        self.log("val_mean_{i}", mean)
        self.validation_step_outputs.clear()

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
        return {{"optimizer": optimizer, "lr_scheduler": {{"scheduler": scheduler, "monitor": "val_loss_{i}"}}}}


class Data{i}(L.LightningDataModule):
    def __init__(self, batch_size: int = 32):
        super().__init__()
        self.batch_size = batch_size

    def setup(self, stage: str):
        self.train_set = TensorDataset(torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,)))
        self.val_set = TensorDataset(torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,)))

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)


def train_{i}():
    trainer = L.Trainer(max_epochs=3, accelerator="auto", precision="bf16-mixed",
                        callbacks=[ModelCheckpoint(monitor="val_loss_{i}", mode="min")])
    trainer.fit(Model{i}(), datamodule=Data{i}())
'''

HEADER = '''"""Generated benchmark module."""

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
'''


def generate(lines: int) -> str:
    """A Lightning file of about `lines` lines (whole blocks)."""
    parts = [HEADER]
    i = 0
    while sum(p.count("\n") for p in parts) < lines:
        parts.append(BLOCK.format(i=i))
        i += 1
    return "".join(parts)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


# --------------------------------------------------------------------------------------------------
# 1. Editor latency
# --------------------------------------------------------------------------------------------------
async def editor_latency(text: str, edits: int, tree: str | None = None) -> tuple[list[float], float]:
    from lsprotocol import types
    from pygls.lsp.client import LanguageClient
    from pytest_lsp import client_capabilities

    sys.path.insert(0, str(ROOT / "lsp"))
    from torchbolt_lsp.features.diagnostics import DEBOUNCE_S

    client = LanguageClient("lint-bench", "1")
    waiting: dict[int, asyncio.Future[float]] = {}

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def published(params: types.PublishDiagnosticsParams) -> None:
        fut = waiting.get(params.version or -1)
        if fut is not None and not fut.done():
            fut.set_result(time.perf_counter())

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(params: types.RegistrationParams) -> None:
        return None

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "big_module.py"
        path.write_text(text)
        uri = path.as_uri()
        # `tree`: run the server from another source tree (e.g. a checkout of the previous version)
        server_env = {**os.environ, "PYTHONPATH": tree} if tree else None
        await client.start_io(sys.executable, "-m", "torchbolt_lsp", env=server_env)
        await client.initialize_async(types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"), root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="bench")]))
        client.initialized(types.InitializedParams())
        await client.protocol.send_request_async("torchbolt/indexStatus", {})
        loop = asyncio.get_running_loop()
        waiting[1] = loop.create_future()
        client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=uri, language_id="python", version=1, text=text)))
        await asyncio.wait_for(waiting[1], 60)
        lines = text.split("\n")
        latencies = []
        # a realistic keystroke: retype one keyword in the middle of the file (a finding comes and goes)
        middle = len(lines) // 2
        target = next(i for i, ln in enumerate(lines) if i >= middle and "max_epochs=3" in ln)
        for n in range(edits):
            version = n + 2
            old = lines[target]
            new = old.replace("max_epochs=3", "max_epoch=3") if "max_epochs=3" in old else \
                old.replace("max_epoch=3", "max_epochs=3")
            lines[target] = new
            waiting[version] = loop.create_future()
            sent = time.perf_counter()
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangePartial(
                    range=types.Range(start=types.Position(line=target, character=0),
                                      end=types.Position(line=target, character=len(old))),
                    text=new)]))
            got = await asyncio.wait_for(waiting[version], 60)
            latencies.append((got - sent - DEBOUNCE_S) * 1000)
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
    return latencies, DEBOUNCE_S


def engine_only(text: str, runs: int = 15) -> tuple[float, float, float]:
    """Median ms of a full `lint_source`, of the server worker's incremental lint after a one-line edit,
    and of `ast.parse` alone on the same text, side by side."""
    import ast

    from torchbolt_lsp.lint import LintConfig, lint_source
    from torchbolt_lsp.lint.worker import lint_job

    lint_source(text, "warmup.py")
    lines = text.split("\n")
    target = next(i for i, ln in enumerate(lines) if i >= len(lines) // 2 and "max_epochs=3" in ln)
    lint_job(text, "big_module.py", {}, LintConfig())
    lint_ms, incr_ms, parse_ms = [], [], []
    for n in range(runs):
        lines[target] = lines[target].replace("max_epochs=3", "max_epoch=3") if n % 2 == 0 else \
            lines[target].replace("max_epoch=3", "max_epochs=3")
        edited = "\n".join(lines)
        t = time.perf_counter()
        ast.parse(edited)
        parse_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        lint_source(edited, "full.py")
        lint_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        lint_job(edited, "big_module.py", {}, LintConfig())
        incr_ms.append((time.perf_counter() - t) * 1000)
    return statistics.median(lint_ms), statistics.median(incr_ms), statistics.median(parse_ms)


# --------------------------------------------------------------------------------------------------
# 2. torchbolt check on 200 files
# --------------------------------------------------------------------------------------------------
def check_200(runs: int = 3) -> tuple[float, float, int]:
    baseline_code = ("import ast, pathlib, sys\n"
                     "for p in sorted(pathlib.Path(sys.argv[1]).rglob('*.py')):\n"
                     "    ast.parse(p.read_text())\n")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(200):
            sub = root / f"pkg{i // 20}"
            sub.mkdir(exist_ok=True)
            (sub / f"mod_{i}.py").write_text(HEADER + BLOCK.format(i=i))
        total_lines = sum(p.read_text().count("\n") for p in root.rglob("*.py"))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "lsp"), str(ROOT / "runtime")])}
        check, base = [], []
        for _ in range(runs):
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "torchbolt_lsp.lint", str(root)], capture_output=True,
                                  text=True, env=env)
            check.append(time.perf_counter() - t)
            if proc.returncode != 0:
                raise SystemExit(f"torchbolt check failed on generated code:\n{proc.stdout[-2000:]}{proc.stderr}")
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", baseline_code, str(root)], check=True)
            base.append(time.perf_counter() - t)
        return statistics.median(check), statistics.median(base), total_lines


# --------------------------------------------------------------------------------------------------
# 3. torchbolt check / --fix on one 20,000-line file with thousands of findings
# --------------------------------------------------------------------------------------------------
MANY_BLOCK = '''

class Legacy{i}(L.LightningModule):
    def training_step(self, batch, batch_idx):
        x = batch.cuda()
        return self.layer(x).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def make_{i}():
    return L.Trainer(gpus=2, precision=16, max_epoch=3)
'''
TARGET_MANY_CHECK_S = 2.0
TARGET_MANY_FIX_S = 5.0


def generate_many(lines: int = 20_000) -> str:
    """A 1.x-style file with four findings every 13 lines (three with safe fixes, one unsafe guess)."""
    parts = ["import lightning as L\nimport torch\n"]
    count, i = 2, 0
    while count < lines:
        block = MANY_BLOCK.format(i=i)
        parts.append(block)
        count += block.count("\n")
        i += 1
    return "".join(parts)


def _child_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def many_findings(runs: int = 3, lsp_dir: Path | None = None) -> dict[str, tuple[float, float]]:
    """(median wall s, median CPU s) of `torchbolt check`, `torchbolt check --fix` and read + ast.parse,
    each in a fresh interpreter, on the generated file; plus its line and finding counts under "size".

    CPU time is reported beside wall time because other sessions load this machine: it does not grow
    with their load."""
    text = generate_many()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(lsp_dir or ROOT / "lsp"), str(ROOT / "runtime")])}
    baseline_code = "import ast, pathlib, sys\nast.parse(pathlib.Path(sys.argv[1]).read_text())\n"
    times: dict[str, list[tuple[float, float]]] = {"check": [], "fix": [], "base": []}
    findings = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "many.py"
        commands = {"check": [sys.executable, "-m", "torchbolt_lsp.lint", str(path)],
                    "fix": [sys.executable, "-m", "torchbolt_lsp.lint", "--fix", str(path)],
                    "base": [sys.executable, "-c", baseline_code, str(path)]}
        for _ in range(runs):
            for name, command in commands.items():
                path.write_text(text)
                wall, cpu = time.perf_counter(), _child_cpu()
                proc = subprocess.run(command, capture_output=True, text=True, env=env)
                times[name].append((time.perf_counter() - wall, _child_cpu() - cpu))
                if name == "check":
                    if proc.returncode != 1:
                        raise SystemExit(f"check should report findings:\n{proc.stdout[-2000:]}{proc.stderr}")
                    findings = int(proc.stdout.strip().splitlines()[-1].split()[1])
    out = {name: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for name, v in times.items()}
    out["size"] = (float(text.count("\n")), float(findings))
    return out


def many_rows() -> list[tuple[str, str, str, str]]:
    m = many_findings()
    lines, findings = (int(x) for x in m["size"])
    base_wall, base_cpu = m["base"]
    rows = []
    for name, label, target in (("check", f"`torchbolt check` on one {lines}-line file with {findings} findings",
                                 TARGET_MANY_CHECK_S),
                                ("fix", "`torchbolt check --fix` on the same file", TARGET_MANY_FIX_S)):
        wall, cpu = m[name]
        rows.append((f"{label}, median of 3 (wall / CPU)", f"{wall:.2f} s / {cpu:.2f} s", f"<= {target:.0f} s",
                     ("ok" if cpu <= target else "MISSED") + f" (CPU); {cpu / base_cpu:.1f}x read + ast.parse"))
    rows.append(("read + ast.parse the same file in a fresh interpreter (baseline, wall / CPU)",
                 f"{base_wall:.2f} s / {base_cpu:.2f} s", "", ""))
    return rows


def compare_many(baseline: Path, rounds: int = 3) -> str:
    """check / --fix on the many-findings file with this tree's `lsp/` and with `baseline`, alternating
    rounds (one run each per round); medians and ratios of CPU time."""
    runs: dict[str, list[dict[str, tuple[float, float]]]] = {"baseline tree": [], "this tree": []}
    for _ in range(rounds):
        runs["baseline tree"].append(many_findings(1, baseline))
        runs["this tree"].append(many_findings(1))
    out = ["| tree | check wall s | check CPU s | --fix wall s | --fix CPU s |", "|---|---:|---:|---:|---:|"]
    med = {name: {k: tuple(statistics.median(r[k][i] for r in rs) for i in (0, 1)) for k in ("check", "fix")}
           for name, rs in runs.items()}
    for name, m in med.items():
        out.append(f"| {name} | {m['check'][0]:.2f} | {m['check'][1]:.2f} | {m['fix'][0]:.2f} | {m['fix'][1]:.2f} |")
    this, base = med["this tree"], med["baseline tree"]
    out.append(f"\nCPU this / baseline: check {this['check'][1] / base['check'][1]:.2f}, "
               f"--fix {this['fix'][1] / base['fix'][1]:.2f} (medians of {rounds} alternating rounds)")
    return "\n".join(out)


def write_readme(table: str) -> None:
    readme = HERE / "README.md"
    text = readme.read_text() if readme.exists() else "# Benchmarks\n"
    section = f"## Diagnostics\n\n{table}\n\n"
    pattern = re.compile(r"^## Diagnostics\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _m: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    readme.write_text(text)


def compare_trees(text: str, edits: int, baseline: str, rounds: int = 3) -> str:
    """Editor latency of this tree's server and of `baseline`'s, alternating rounds (same machine load)."""
    runs: dict[str, list[float]] = {"baseline tree": [], "this tree": []}
    for _ in range(rounds):
        runs["baseline tree"] += asyncio.run(editor_latency(text, edits, baseline))[0]
        runs["this tree"] += asyncio.run(editor_latency(text, edits))[0]
    out = ["| server (publishDiagnostics after debounce) | edits | p50 ms | p95 ms |", "|---|---:|---:|---:|"]
    for name, values in runs.items():
        out.append(f"| {name} | {len(values)} | {pct(values, 50):.0f} | {pct(values, 95):.0f} |")
    ratio = pct(runs["this tree"], 95) / max(pct(runs["baseline tree"], 95), 1e-9)
    out.append(f"\np95 this tree / baseline tree: {ratio:.2f} ({rounds} alternating rounds of {edits} edits each)")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=30, help="edits to time (>= 20)")
    parser.add_argument("--lines", type=int, default=3000)
    parser.add_argument("--no-write", action="store_true", help="do not update bench/README.md")
    parser.add_argument("--many-only", action="store_true",
                        help="only time check/--fix on the many-findings file (prints, never writes; with "
                             "--baseline-tree: side by side)")
    parser.add_argument("--baseline-tree", metavar="DIR",
                        help="also time a server imported from DIR (a copy of another version's lsp/ folder), "
                             "alternating with this one, and print both")
    args = parser.parse_args()
    if args.many_only and args.baseline_tree:
        print(compare_many(Path(args.baseline_tree)))
        return
    if args.many_only:
        rows = many_rows()
        print("| measurement | value | target | note |\n|---|---:|---|---|")
        print("".join(f"| {a} | {b} | {c} | {d} |\n" for a, b, c, d in rows), end="")
        return
    text = generate(args.lines)
    n_lines = text.count("\n")
    edits = max(args.edits, 20)
    comparison = compare_trees(text, edits, args.baseline_tree) if args.baseline_tree else ""
    latencies, debounce = asyncio.run(editor_latency(text, edits))
    lint_ms, incr_ms, parse_ms = engine_only(text)
    check_s, base_s, check_lines = check_200()
    p50, p95 = pct(latencies, 50), pct(latencies, 95)
    rows = [
        ("publishDiagnostics after debounce, p50", f"{p50:.0f} ms", "", ""),
        ("publishDiagnostics after debounce, p95", f"{p95:.0f} ms", f"<= {TARGET_P95_MS:.0f} ms",
         "ok" if p95 <= TARGET_P95_MS else "MISSED"),
        ("engine alone, full lint of the file, median", f"{lint_ms:.0f} ms", "", f"{lint_ms / parse_ms:.1f}x ast.parse"),
        ("engine alone, incremental after a one-line edit (server path), median", f"{incr_ms:.0f} ms", "",
         f"{incr_ms / parse_ms:.2f}x ast.parse"),
        ("ast.parse alone (baseline), median", f"{parse_ms:.0f} ms", "", ""),
        ("`torchbolt check` on 200 files, median of 3", f"{check_s:.2f} s", f"<= {TARGET_CHECK_S:.0f} s",
         "ok" if check_s <= TARGET_CHECK_S else "MISSED"),
        ("read + ast.parse the same 200 files (baseline)", f"{base_s:.2f} s", "",
         f"check = {check_s / base_s:.1f}x baseline"),
        *many_rows(),
    ]
    head = ("| measurement | value | target | note |\n|---|---:|---|---|\n")
    body = "".join(f"| {a} | {b} | {c} | {d} |\n" for a, b, c, d in rows)
    flag = f" --baseline-tree {args.baseline_tree}" if args.baseline_tree else ""
    meta = textwrap.dedent(f"""
        Command: `.venv/bin/python bench/lint_bench.py{flag}` ({len(latencies)} edits on a generated {n_lines}-line file,
        debounce {debounce * 1000:.0f} ms subtracted; 200 files = {check_lines} lines; {os.cpu_count()} CPUs,
        Python {sys.version.split()[0]}). Latency is measured at a pygls client over stdio, VS Code profile
        (push diagnostics).
    """).strip()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    notes = textwrap.dedent(f"""
        Load average at the end of the run: {load:.1f} on {os.cpu_count()} CPUs (other sessions share the
        machine, so absolute times are inflated). The server lints in a helper process and re-parses and
        re-walks only the top-level statements an edit touched (lint/incremental.py); that path costs
        {incr_ms / parse_ms:.2f}x one `ast.parse` of the file. The core's workspace index re-indexes the
        edited document 150 ms after each change from its previous parse (analysis/parse_cache.py: only the
        touched top-level statements are parsed and walked again), so it no longer competes with the lint
        for the CPU. The rest of the editor latency (p50 = {p50 / max(incr_ms, 1e-9):.1f}x the incremental
        engine time) is the debounce timer firing late on a busy event loop and the inter-process hand-off.
        Before/after: `--baseline-tree DIR` times a server imported from another copy of `lsp/` side by side.
    """).strip()
    table = head + body + "\n" + meta + "\n\n" + notes
    if comparison:
        table += ("\n\nSide by side with the previous version (`--baseline-tree`, a copy of `lsp/` before the "
                  "index re-used its parse), same machine, alternating:\n\n" + comparison)
    print(table)
    if not args.no_write:
        write_readme(table)


if __name__ == "__main__":
    main()
