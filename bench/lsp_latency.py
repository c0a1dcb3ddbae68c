"""Language-server latency benchmark: completion / hover / signature help on a generated 3,000-line
Lightning file, `initialize` time from process start, first completion after opening the file, the
server's resident memory with a generated 200-file workspace indexed, and an edit burst (500 full
changes of a 20,000-line file, then a code lens) followed by a long fuzz, with the RSS after it.

Everything is measured at the client (a pygls LanguageClient over stdio, like an editor), against the
issue's targets. Prints a table and, with --write-readme, puts it under the "Language server latency"
heading of bench/README.md.

    .venv/bin/python bench/lsp_latency.py [--requests 300] [--starts 5] [--write-readme] [--burst-only]
    .venv/bin/python bench/lsp_latency.py --burst-only --baseline-tree DIR [--repeats 3]  (side by side)

`initialize` is also measured for an empty pygls server, alternating with ours, as the floor that
Python + pygls + lsprotocol imports set on this machine. LSP_BENCH_SERVER="cmd args" benchmarks another
server command.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

README = Path(__file__).with_name("README.md")
HEADING = "## Language server latency"

MODULE_TEMPLATE = '''
class Classifier{n}(pl.LightningModule):
    """Image classifier number {n}."""

    def __init__(self, num_classes: int = 10, lr: float = 1e-3, hidden: int = 64):
        super().__init__()
        self.save_hyperparameters()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, hidden, 3, padding=1), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(hidden, num_classes)
        self.train_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        self.val_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)

    def forward(self, x):
        return self.head(self.backbone(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.train_acc(logits, y)
        self.log("train_loss_{n}", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train_acc_{n}", self.train_acc, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.val_acc(logits, y)
        self.log_dict({{"val_loss_{n}": loss, "val_acc_{n}": self.val_acc}}, prog_bar=True)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=1e-4)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", patience=2)
        return {{"optimizer": optimizer, "lr_scheduler": {{"scheduler": scheduler, "monitor": "val_loss_{n}"}}}}


class Data{n}(pl.LightningDataModule):
    def __init__(self, batch_size: int = 32):
        super().__init__()
        self.batch_size = batch_size

    def setup(self, stage: str):
        self.train_set = TensorDataset(torch.randn(256, 3, 8, 8), torch.randint(0, 10, (256,)))
        self.val_set = TensorDataset(torch.randn(64, 3, 8, 8), torch.randint(0, 10, (64,)))

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)
'''

HEADER = """import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning.pytorch as pl
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
"""

TAIL = """

def main():
    model = Classifier0()
    trainer = pl.Trainer(max_epochs=10, accelerator="auto", devices=1, precision="16-mixed",
                         callbacks=[ModelCheckpoint(monitor="val_loss_0", mode="min"),
                                    EarlyStopping(monitor="val_loss_0", patience=3)])
    trainer.fit(model, datamodule=Data0())
"""


def big_file(lines: int = 3000) -> str:
    """A realistic Lightning file of about `lines` lines (modules, datamodules, a training entry point)."""
    parts = [HEADER]
    n = 0
    while sum(p.count("\n") for p in parts) < lines - 10:
        parts.append(MODULE_TEMPLATE.format(n=n))
        n += 1
    parts.append(TAIL)
    return "".join(parts)


def workspace(root: Path, files: int = 200) -> Path:
    """A package of `files` modules, each a Lightning module and datamodule deriving across files."""
    pkg = root / "proj"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    for i in range(files - 1):
        # chains of up to 5 classes across files, like project base classes
        base = "pl.LightningModule" if i % 5 == 0 else f"Base{i - 1}"
        imports = (
            HEADER if i % 5 == 0 else HEADER + f"from proj.m{i - 1} import Classifier{i - 1} as Base{i - 1}\n"
        )
        body = MODULE_TEMPLATE.format(n=i).replace("(pl.LightningModule)", f"({base})", 1)
        (pkg / f"m{i}.py").write_text(imports + body)
    return root


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def positions(text: str) -> dict[str, list[types.Position]]:
    """Cursor positions for each request kind, spread over the file."""
    lines = text.split("\n")
    out: dict[str, list[types.Position]] = {"completion": [], "hover": [], "signature": []}
    for i, line in enumerate(lines):
        if "self.log(" in line:
            out["completion"].append(types.Position(line=i, character=line.index("self.") + 5))  # self.
            out["signature"].append(
                types.Position(
                    line=i, character=line.index("on_step") if "on_step" in line else line.index("(") + 1
                )
            )
        m = re.match(
            r"    def (training_step|validation_step|configure_optimizers|setup|train_dataloader)\b", line
        )
        if m:
            out["hover"].append(types.Position(line=i, character=8))  # a hook definition
        if 'self.log("' in line:
            out["hover"].append(types.Position(line=i, character=line.index('self.log("') + 12))  # a metric
        if "Trainer(" in line:
            out["completion"].append(types.Position(line=i, character=line.index("Trainer(") + 8))
            out["signature"].append(types.Position(line=i, character=line.index("devices") + 1))
    return out


async def start(root: Path, tree: str | None = None) -> tuple[LanguageClient, float]:
    """Start the server and answer `initialize`; returns the client and seconds from process start.

    `tree`: import the server from that folder instead (a copy of another version's `lsp/` folder).
    """
    client = LanguageClient("torchbolt-bench", "1")
    t0 = time.perf_counter()
    await client.start_io(
        *(
            os.environ["LSP_BENCH_SERVER"].split()
            if os.environ.get("LSP_BENCH_SERVER")
            else [sys.executable, "-m", "torchbolt_lsp"]
        ),
        env={**os.environ, "PYTHONPATH": tree} if tree else None,
    )
    caps = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            completion=types.CompletionClientCapabilities(
                completion_item=types.ClientCompletionItemOptions(
                    snippet_support=True,
                    documentation_format=[types.MarkupKind.Markdown],
                    resolve_support=types.ClientCompletionItemResolveOptions(properties=["documentation"]),
                )
            ),
            hover=types.HoverClientCapabilities(content_format=[types.MarkupKind.Markdown]),
        )
    )
    await client.initialize_async(
        types.InitializeParams(
            capabilities=caps,
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="bench")],
        )
    )
    elapsed = time.perf_counter() - t0
    client.initialized(types.InitializedParams())
    return client, elapsed


BASELINE_SERVER = "from pygls.lsp.server import LanguageServer; LanguageServer('baseline', '1').start_io()"


async def baseline_initialize() -> float:
    """Seconds from process start to the `initialize` answer of an empty pygls server (the floor)."""
    client = LanguageClient("torchbolt-bench", "1")
    t0 = time.perf_counter()
    await client.start_io(sys.executable, "-c", BASELINE_SERVER)
    await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities()))
    elapsed = time.perf_counter() - t0
    client.initialized(types.InitializedParams())
    await stop(client)
    return elapsed


async def stop(client: LanguageClient) -> None:
    await client.shutdown_async(None)
    client.exit(None)
    server = client._server
    if server is not None:
        try:  # older servers could hang at exit joining a busy lint worker: ended after 10 s
            await asyncio.wait_for(server.wait(), 10)
        except asyncio.TimeoutError:
            print(f"server {server.pid} did not exit 10 s after `exit`: killed", file=sys.stderr)
            server.kill()
    await client.stop()


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024


async def run(requests: int, starts: int) -> list[tuple[str, float, float, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = workspace(Path(tmp), 200)
        text = big_file()
        big = root / "big_model.py"
        big.write_text(text)
        uri = big.as_uri()

        init_times, base_times = [], []
        for _ in range(starts):  # alternate with the baseline so both see the same machine load
            base_times.append(await baseline_initialize())
            client, elapsed = await start(root)
            init_times.append(elapsed)
            await stop(client)

        client, _ = await start(root)
        t_index = time.perf_counter()
        status = await client.protocol.send_request_async("torchbolt/indexStatus", {})
        index_s = time.perf_counter() - t_index
        assert status.ready, status
        doc = types.TextDocumentIdentifier(uri=uri)
        where = positions(text)
        trainer_pos = where["completion"][-1]
        t0 = time.perf_counter()
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
            )
        )
        first = await client.text_document_completion_async(
            types.CompletionParams(text_document=doc, position=trainer_pos)
        )
        first_ms = (time.perf_counter() - t0) * 1000
        assert first is not None and any(i.label == "strategy=" for i in first.items), "no Trainer completion"

        async def timed(kind: str) -> list[float]:
            pts = where[kind]
            out = []
            for i in range(requests):
                pos = pts[i % len(pts)]
                t = time.perf_counter()
                if kind == "completion":
                    r = await client.text_document_completion_async(
                        types.CompletionParams(text_document=doc, position=pos)
                    )
                    assert r is not None and r.items
                elif kind == "hover":
                    r = await client.text_document_hover_async(
                        types.HoverParams(text_document=doc, position=pos)
                    )
                    assert r is not None
                else:
                    r = await client.text_document_signature_help_async(
                        types.SignatureHelpParams(text_document=doc, position=pos)
                    )
                    assert r is not None
                out.append((time.perf_counter() - t) * 1000)
            return out

        await timed("completion")  # warm-up: lazy converters, caches
        completion = await timed("completion")
        hover = await timed("hover")
        signature = await timed("signature")
        info = await client.protocol.send_request_async("torchbolt/debugModules", {})
        status = await client.protocol.send_request_async("torchbolt/indexStatus", {})
        memory = rss_mb(info.pid)
        assert info.torch is False
        await stop(client)

    return [
        ("completion p50 (ms)", statistics.median(completion), 15, "3,000-line file"),
        ("completion p95 (ms)", percentile(completion, 95), 15, f"{requests} requests"),
        ("hover p95 (ms)", percentile(hover, 95), 15, f"{requests} requests"),
        ("signature help p95 (ms)", percentile(signature, 95), 15, f"{requests} requests"),
        (
            "initialize from process start (ms)",
            statistics.median(init_times) * 1000,
            1000,
            f"median of {starts} starts; empty pygls server: {statistics.median(base_times) * 1000:.0f} ms",
        ),
        ("first completion after opening (ms)", first_ms, 100, "didOpen + completion, 3,000 lines"),
        (
            "server RSS, 200-file workspace (MB)",
            memory,
            150,
            f"{status.files} files indexed (initial scan {index_s:.1f} s) + big file open",
        ),
    ]


async def first_completion(root: Path, uri: str, text: str, tree: str | None = None) -> float:
    """Milliseconds from didOpen of the big file to the answer of a Trainer( completion in it."""
    client, _ = await start(root, tree)
    await client.protocol.send_request_async("torchbolt/indexStatus", {})
    trainer_pos = positions(text)["completion"][-1]
    t0 = time.perf_counter()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
    )
    first = await client.text_document_completion_async(
        types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=trainer_pos)
    )
    elapsed = (time.perf_counter() - t0) * 1000
    assert first is not None and any(i.label == "strategy=" for i in first.items), "no Trainer completion"
    await stop(client)
    return elapsed


async def compare_trees(baseline: str, starts: int) -> str:
    """`initialize` and first completion of this tree's server and of `baseline`'s, alternating starts."""
    names = {"baseline tree": baseline, "this tree": None}
    init: dict[str, list[float]] = {name: [] for name in names}
    first: dict[str, list[float]] = {name: [] for name in names}
    floor = []
    with tempfile.TemporaryDirectory() as tmp:
        root = workspace(Path(tmp), 200)
        text = big_file()
        big = root / "big_model.py"
        big.write_text(text)
        for _ in range(starts):
            floor.append(await baseline_initialize() * 1000)
            for name, tree in names.items():
                client, elapsed = await start(root, tree)
                init[name].append(elapsed * 1000)
                await stop(client)
                first[name].append(await first_completion(root, big.as_uri(), text, tree))
    lines = [
        "| server | initialize median (ms) | first completion median (ms) | first completion max (ms) |",
        "|---|---:|---:|---:|",
    ]
    for name in names:
        lines.append(
            f"| {name} | {statistics.median(init[name]):.0f} | {statistics.median(first[name]):.0f} "
            f"| {max(first[name]):.0f} |"
        )
    lines.append(f"| empty pygls server (floor) | {statistics.median(floor):.0f} | | |")
    return "\n".join(lines) + f"\n\n{starts} starts each, alternating."


async def burst(changes: int = 500, lines: int = 20_000, tree: str | None = None
                ) -> list[tuple[str, float, float, str]]:
    """An edit burst on one big file: `changes` full-document didChange notifications of a `lines`-line
    file written back to back, then a code-lens request: its answer time from the request and from the
    first change, next to the same request on the quiet server just after opening (the lens's own cost)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        text = big_file(lines)
        path = root / "burst.py"
        path.write_text(text)
        uri = path.as_uri()
        doc = types.TextDocumentIdentifier(uri=uri)
        client, _ = await start(root, tree)
        await client.protocol.send_request_async("torchbolt/indexStatus", {})
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
        t_quiet = time.perf_counter()
        await client.text_document_code_lens_async(types.CodeLensParams(text_document=doc))
        quiet_ms = (time.perf_counter() - t_quiet) * 1000
        t_first = time.perf_counter()
        for version in range(2, changes + 2):  # a formatter or a paste: the whole text, again and again
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=f"# v{version}\n{text}")]))
        t_request = time.perf_counter()
        lenses = await client.text_document_code_lens_async(types.CodeLensParams(text_document=doc))
        t_done = time.perf_counter()
        assert lenses, "no code lens on the big file"
        info = await client.protocol.send_request_async("torchbolt/debugModules", {})
        lens_memory = rss_mb(info.pid)
        state = await client.protocol.send_request_async("torchbolt/debugDocument", {"uri": uri})
        assert state.version == changes + 1
        memory = rss_mb(info.pid)
        await stop(client)
    return [
        (f"code lens after {changes} full changes of a {lines}-line file (ms)", (t_done - t_request) * 1000, 1000,
         f"from the request; {(t_done - t_first) * 1000:.0f} ms from the first change; the same request on "
         f"the quiet server: {quiet_ms:.0f} ms; tree parses: {state.treeParses}; fact extractions: "
         f"{getattr(state, 'indexRuns', '?')}; lint runs: {getattr(state, 'lintRuns', '?')}; changes never decoded: "
         f"{getattr(state, 'supersededChanges', '?')}"),
        (f"server RSS after the burst and its code lens, {lines}-line file open (MB)", lens_memory, 150, ""),
        ("server RSS after that and torchbolt/debugDocument (MB)", memory, 150,
         "the debug request builds the tree-sitter tree and a second one to compare"),
    ]


async def long_fuzz(steps: int = 2000) -> list[tuple[str, float, float, str]]:
    """Many small random edits, each followed by a completion, hover or code lens, on the 3,000-line file;
    the server's RSS after them (and whether its text still equals the client's)."""
    import random

    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        text = big_file()
        path = root / "fuzz.py"
        path.write_text(text)
        uri = path.as_uri()
        doc = types.TextDocumentIdentifier(uri=uri)
        client, _ = await start(root)
        await client.protocol.send_request_async("torchbolt/indexStatus", {})
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
        lines_now = text.split("\n")
        t0 = time.perf_counter()
        for step in range(steps):
            line = rng.randrange(len(lines_now))
            col = rng.randrange(len(lines_now[line]) + 1)
            insert = rng.choice(["x", "self.", "(", ")", "    ", "def ", "# ", "'", "Trainer("])
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=step + 2),
                content_changes=[types.TextDocumentContentChangePartial(
                    range=types.Range(start=types.Position(line=line, character=col),
                                      end=types.Position(line=line, character=col)), text=insert)]))
            lines_now[line] = lines_now[line][:col] + insert + lines_now[line][col:]
            pos = types.Position(line=line, character=col + len(insert))
            if step % 10 == 9:
                await client.text_document_code_lens_async(types.CodeLensParams(text_document=doc))
            elif step % 2:
                await client.text_document_completion_async(types.CompletionParams(text_document=doc, position=pos))
            else:
                await client.text_document_hover_async(types.HoverParams(text_document=doc, position=pos))
        elapsed = time.perf_counter() - t0
        state = await client.protocol.send_request_async("torchbolt/debugDocument", {"uri": uri})
        assert state.text == "\n".join(lines_now), "the server's text drifted from the client's"
        info = await client.protocol.send_request_async("torchbolt/debugModules", {})
        memory = rss_mb(info.pid)
        await stop(client)
    return [(f"server RSS after a {steps}-step edit/request fuzz (MB)", memory, 150,
             f"3,000-line file, {elapsed:.0f} s; text still equal to the client's")]


def compare_bursts(baseline: str, repeats: int) -> str:
    """The edit burst on this tree's server and on `baseline`'s, alternating; medians and ratios."""
    names = {"baseline tree": baseline, "this tree": None}
    values: dict[str, list[list[float]]] = {name: [] for name in names}
    for _ in range(repeats):
        for name, tree in names.items():
            rows = asyncio.run(burst(tree=tree))
            values[name].append([value for _, value, _, _ in rows])
    labels = ["code lens after the burst, from the request (ms)", "RSS after the burst and its lens (MB)",
              "RSS after debugDocument (MB)"]
    out = ["| server | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    medians = {name: [statistics.median(run[i] for run in runs) for i in range(len(labels))]
               for name, runs in values.items()}
    for name in names:
        out.append(f"| {name} | " + " | ".join(f"{v:.0f}" for v in medians[name]) + " |")
    out.append("| this / baseline | " + " | ".join(
        f"{t / b:.2f}" for t, b in zip(medians["this tree"], medians["baseline tree"], strict=True)) + " |")
    return "\n".join(out) + f"\n\nMedians of {repeats} bursts each, alternating."


def table(rows: list[tuple[str, float, float, str]]) -> str:
    lines = ["| measure | measured | target | measured / target | notes |", "|---|---:|---:|---:|---|"]
    for name, value, target, note in rows:
        lines.append(f"| {name} | {value:.1f} | ≤ {target:g} | {value / target:.2f} | {note} |")
    return "\n".join(lines)


def write_readme(text: str, command: str) -> None:
    section = (
        f"{HEADING}\n\nCommand: `{command}` (client: pygls LanguageClient over stdio; "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the end of the run).\n\n{text}\n"
    )
    current = README.read_text() if README.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        current = pattern.sub(lambda m: section + "\n", current)
    else:
        current = current.rstrip("\n") + "\n\n" + section
    README.write_text(current)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument(
        "--baseline-tree",
        metavar="DIR",
        help="also start a server imported from DIR (a copy of another version's lsp/ folder), alternating "
        "with this one, and print initialize / first-completion side by side",
    )
    parser.add_argument("--burst-only", action="store_true",
                        help="only the edit burst (500 full changes of a 20,000-line file) and the long fuzz")
    parser.add_argument("--fuzz-steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3, help="bursts per server with --burst-only --baseline-tree")
    args = parser.parse_args()
    if args.burst_only and args.baseline_tree:
        print(compare_bursts(args.baseline_tree, args.repeats))
        return 0
    if args.burst_only:
        print(table(asyncio.run(burst()) + asyncio.run(long_fuzz(args.fuzz_steps))))
        return 0
    comparison = asyncio.run(compare_trees(args.baseline_tree, args.starts)) if args.baseline_tree else ""
    rows = asyncio.run(run(args.requests, args.starts)) + asyncio.run(burst()) + asyncio.run(long_fuzz(args.fuzz_steps))
    text = table(rows)
    if comparison:
        text += ("\n\nSide by side with the previous version (`--baseline-tree`, a copy of `lsp/` before the "
                 "start-up imports were deferred):\n\n" + comparison)
    print(text)
    if args.write_readme:
        flag = f" --baseline-tree {args.baseline_tree}" if args.baseline_tree else ""
        write_readme(text, f"python bench/lsp_latency.py --write-readme{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
