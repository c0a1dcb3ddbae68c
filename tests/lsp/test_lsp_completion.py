"""Completion through the real server, on complete and on half-typed code, under both client profiles."""

from __future__ import annotations

import pytest
from lsp_support import Editor
from lsprotocol import types

labels = Editor.labels
new_text = Editor.new_text

pytestmark = pytest.mark.asyncio(loop_scope="module")

MODULE_HEAD = """
import lightning.pytorch as pl


class Model(pl.LightningModule):
    def training_step(self, batch, batch_idx):
        return batch
"""


# ---------------------------------------------------------------------------------------------- hooks
@pytest.mark.parametrize(
    "tail",
    [
        "\n    def |",  # half-written def (no name, no parentheses)
        "\n    def val|",  # partial name
        "\n    |",  # start of a member line
        "\n    def con|\n\n    def forward(self, x):\n        return x\n",  # broken def before a valid one
    ],
)
async def test_hooks_in_module(editor, tail):
    items = await editor.complete(MODULE_HEAD + tail)
    names = labels(items)
    assert "training_step" not in names  # already defined
    assert {"validation_step", "configure_optimizers", "on_train_epoch_end"} <= set(names)
    ordered = sorted(items, key=lambda i: i.sort_text or "")
    assert [i.label for i in ordered[:2]] == ["validation_step", "configure_optimizers"]
    assert all(i.filter_text == i.label for i in items)


async def test_hook_snippet_shape(editor, client):
    items = await editor.complete(MODULE_HEAD + "\n    def |")
    opt = next(i for i in items if i.label == "configure_optimizers")
    text = new_text(opt)
    snippets = bool(client.capabilities.text_document.completion.completion_item.snippet_support)
    # snippet clients indent every line after the first like the def line themselves: the body is
    # indented relative to the def; a plain-text insert carries the absolute indentation
    body = "    " if snippets else "        "
    assert text.startswith(f"configure_optimizers(self) -> OptimizerLRScheduler:\n{body}return torch.optim.Adam(")
    assert "self.parameters()" in text
    modes = client.capabilities.text_document.completion.completion_item.insert_text_mode_support
    if modes is not None and types.InsertTextMode.AdjustIndentation in modes.value_set:
        assert opt.insert_text_mode == types.InsertTextMode.AdjustIndentation
    val = next(i for i in items if i.label == "validation_step")
    assert new_text(val).startswith("validation_step(self, batch: Any, batch_idx: int) -> STEP_OUTPUT:")
    assert (opt.insert_text_format == types.InsertTextFormat.Snippet) is snippets
    assert ("${" in text) is snippets
    # documentation is resolved lazily when the client supports it
    resolved = await client.completion_item_resolve_async(opt)
    doc = resolved.documentation
    doc_text = doc.value if isinstance(doc, types.MarkupContent) else doc
    assert "Entry points:" in doc_text and "fit" in doc_text


async def test_member_line_inserts_def(editor):
    items = await editor.complete(MODULE_HEAD + "\n    on_fit|")
    item = next(i for i in items if i.label == "on_fit_start")
    assert new_text(item).startswith("def on_fit_start(self) -> None:")


async def test_hooks_training_step_body(editor):
    items = await editor.complete("import lightning as L\nclass M(L.LightningModule):\n    def |")
    step = next(i for i in items if i.label == "training_step")
    assert "return loss" in new_text(step)


async def test_callback_and_datamodule_hooks(editor):
    cb = labels(
        await editor.complete(
            "from lightning.pytorch.callbacks import Callback\nclass C(Callback):\n    def |"
        )
    )
    assert "on_train_epoch_end" in cb and "training_step" not in cb
    first = await editor.complete(
        "from torchbolt import LightningDataModule as DM\nclass D(DM):\n    def setup(self, stage):\n"
        "        pass\n    def |"
    )
    assert "train_dataloader" in labels(first) and "setup" not in labels(first)
    assert "training_step" not in labels(first)


async def test_no_hooks_outside_lightning_class(editor):
    assert await editor.complete("class Plain:\n    def |") == []
    assert await editor.complete("import lightning as L\ndef f():\n    def |") == []


async def test_cross_file_inheritance(editor):
    items = await editor.complete("from pkg.models import Classifier\nclass Sub(Classifier):\n    def |")
    assert "configure_optimizers" in labels(items)
    items = await editor.complete(
        "from helpers import ScriptBase\nclass D(ScriptBase):\n    def |", name="scripts/open_dm.py"
    )
    assert "train_dataloader" in labels(items) and "training_step" not in labels(items)
    items = await editor.complete("from pkg import BaseModule\nclass R(BaseModule):\n    def |")
    assert "validation_step" in labels(items)


# ------------------------------------------------------------------------------------ Trainer kwargs
@pytest.mark.parametrize(
    "src",
    [
        "import lightning.pytorch as pl\ntrainer = pl.Trainer(max_epochs=3, |)\n",
        "import lightning.pytorch as pl\ntrainer = pl.Trainer(max_epochs=3, acc|",  # unclosed
        "import lightning.pytorch as pl\ntrainer = pl.Trainer(max_epochs=3, |\n\ntrainer.fit(model)\n",
        "from lightning import Trainer as T\nT(\n    max_epochs=3,\n    |\n)",
    ],
)
async def test_trainer_keywords(editor, src):
    items = await editor.complete(src)
    names = labels(items)
    assert "accelerator=" in names and "precision=" in names
    assert "max_epochs=" not in names
    acc = next(i for i in items if i.label == "accelerator=")
    assert acc.detail == "Union[str, Accelerator] = 'auto'"
    assert new_text(acc) == "accelerator="
    assert acc.filter_text == "accelerator"


@pytest.mark.parametrize(
    ("src", "expected", "quoted"),
    [
        ('import lightning as L\nL.Trainer(accelerator="|")', "cpu", False),
        ("import lightning as L\nL.Trainer(accelerator=|)", '"cpu"', True),
        ('import lightning as L\nL.Trainer(precision="16|', "16-mixed", False),
        ("import lightning as L\nL.Trainer(strategy=|", '"ddp"', True),
        ("import lightning as L\nL.Trainer(devices=|)", "-1", True),
        ("import lightning as L\nL.Trainer(gradient_clip_algorithm='|')", "norm", False),
        ("import lightning as L\nL.Trainer(profiler=|", '"simple"', True),
    ],
)
async def test_trainer_values(editor, src, expected, quoted):
    items = await editor.complete(src)
    texts = [new_text(i) for i in items]
    assert expected in texts
    if not quoted:
        assert all(not t.startswith('"') for t in texts)


# ------------------------------------------------------------------------- self.log and callbacks
@pytest.mark.parametrize(
    "src",
    [
        MODULE_HEAD + '\n    def validation_step(self, batch, batch_idx):\n        self.log("val", 1, |)\n',
        MODULE_HEAD + '\n    def validation_step(self, batch, batch_idx):\n        self.log("val", 1, on_',
    ],
)
async def test_self_log_keywords(editor, src):
    names = labels(await editor.complete(src))
    assert {"on_step=", "on_epoch=", "prog_bar=", "sync_dist="} <= set(names)
    assert "name=" not in names


async def test_callback_arguments_and_values(editor):
    src = "from lightning.pytorch.callbacks import ModelCheckpoint\nModelCheckpoint(save_top_k=1, |"
    names = labels(await editor.complete(src))
    assert "mode=" in names and "save_top_k=" not in names
    items = await editor.complete(
        'from lightning.pytorch.callbacks import EarlyStopping\nEarlyStopping(mode="|'
    )
    assert sorted(new_text(i) for i in items) == ["max", "min"]
    items = await editor.complete(
        "from pytorch_lightning.callbacks import LearningRateMonitor\nLearningRateMonitor(logging_interval=|"
    )
    assert {'"step"', '"epoch"', "None"} <= {new_text(i) for i in items}


# -------------------------------------------------------------------------------- monitor= metrics
@pytest.mark.parametrize(
    "src",
    [
        'from lightning.pytorch.callbacks import ModelCheckpoint\nModelCheckpoint(monitor="|")',
        'from lightning.pytorch.callbacks import ModelCheckpoint\nModelCheckpoint(monitor="va|',
        "from lightning.pytorch.callbacks import EarlyStopping\nEarlyStopping(monitor=|",
        'from lightning.pytorch.callbacks import EarlyStopping\nEarlyStopping("|',
        MODULE_HEAD
        + '\n    def configure_optimizers(self):\n        return {"optimizer": o, "lr_scheduler": '
        '{"scheduler": s, "monitor": "|"}}\n',
    ],
)
async def test_monitor_metric_names(editor, src):
    items = await editor.complete(src)
    names = set(labels(items))
    # train_loss is logged in training_step with on_epoch=True: forked into _step and _epoch
    assert {"val_loss", "val_acc", "val_f1", "train_loss", "train_loss_step", "train_loss_epoch"} <= names
    val = next(i for i in items if i.label == "val_loss")
    assert "Classifier.validation_step" in (val.detail or "")


# --------------------------------------------------------------------------------------- self. members
async def test_self_members(editor):
    items = await editor.complete(MODULE_HEAD + "\n    def on_train_start(self):\n        self.|")
    names = set(labels(items))
    assert {
        "log",
        "device",
        "current_epoch",
        "global_step",
        "trainer",
        "hparams",
        "optimizers",
        "manual_backward",
    } <= names
    # only torchbolt's members: the Python server contributes the rest
    assert "parameters" not in names


async def test_self_members_only_in_lightning_module(editor):
    assert await editor.complete("class Plain:\n    def f(self):\n        self.|") == []


async def test_nothing_in_comments_or_unrelated_calls(editor):
    assert await editor.complete("import lightning as L\n# L.Trainer(|") == []
    assert await editor.complete("print(|") == []


@pytest.mark.parametrize(
    "head",
    [
        "import lightning.pytorch as pl\nclass M(pl.LightningModule):",
        "from lightning import LightningModule as LM\nclass M(LM):",
        "import pytorch_lightning as ptl\nclass M(ptl.LightningModule):",
        "from pytorch_lightning.core import LightningModule\nclass M(LightningModule):",
        "from torchbolt import LightningModule\nclass M(LightningModule):",
        "import torchbolt as tb\nclass M(tb.LightningModule):",
        "import lightning as L\nclass M(L.pytorch.LightningModule):",
        "try:\n    import lightning.pytorch as pl\nexcept ImportError:\n    import pytorch_lightning as pl\nclass M(pl.LightningModule):",
    ],
)
async def test_import_styles_end_to_end(editor, head):
    assert "training_step" in labels(await editor.complete(head + "\n    def |"))


async def test_edits_in_other_open_documents_count_at_once(editor, client):
    root = client.workspace_root
    path = root / "pkg" / "models.py"
    uri = path.as_uri()
    text = path.read_text()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
    )
    line = text.splitlines().index('        self.log("val_loss", 0.5)')
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(
                        start=types.Position(line=line, character=18),
                        end=types.Position(line=line, character=26),
                    ),
                    text="val_edited",
                )
            ],
        )
    )
    src = 'from lightning.pytorch.callbacks import ModelCheckpoint\nModelCheckpoint(monitor="|")'
    names = set(labels(await editor.complete(src)))
    assert "val_edited" in names and "val_loss" not in names
    # closing without saving: the disk version is back
    editor.close(uri)
    await client.protocol.send_request_async("torchbolt/indexStatus", {})  # waits for the disk re-read
    names = set(labels(await editor.complete(src)))
    assert "val_loss" in names and "val_edited" not in names
