"""Hover, signature help, go-to-definition, references and document symbols through the real server."""

from __future__ import annotations

import pytest
from lsprotocol import types

pytestmark = pytest.mark.asyncio(loop_scope="module")

MODULE = """
import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint, EarlyStopping


class Model(pl.LightningModule):
    def training_step(self, batch, batch_idx):
        self.log("loss", 1.0, prog_bar=True)
        return 1.0

    def validation_epoch_end(self, outputs):
        pass

    def configure_optimizers(self):
        return {"optimizer": 1, "lr_scheduler": {"scheduler": 2, "monitor": "val_loss"}}


trainer = pl.Trainer(max_epochs=3, gpus=2, precision=16, accelerator="gpu",
                     callbacks=[ModelCheckpoint(monitor="val_loss", mode="max"), EarlyStopping("train_loss_epoch")])
"""


def _text(hover: types.Hover | None) -> str | None:
    if hover is None:
        return None
    contents = hover.contents
    assert isinstance(contents, types.MarkupContent)
    return contents.value


async def _hover(client, editor, marker: str, offset: int = 1) -> str:
    uri, _ = editor.open(MODULE, name="hover_target.py")
    text = MODULE.lstrip("\n")
    from lsp_support import position_of

    pos = position_of(text, text.index(marker) + offset)
    result = await client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=pos)
    )
    editor.close(uri)
    return _text(result)


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        (
            "training_step(self",
            [
                "def training_step(self, batch: Any, batch_idx: int) -> STEP_OUTPUT",
                "Entry points:",
                "fit",
                "on_step=True",
            ],
        ),
        ("validation_epoch_end", ["removed in Lightning 2.0", "on_validation_epoch_end"]),
        ("max_epochs=", ["Optional[int]", "Default:", "None", ">= -1"]),
        ("gpus=", ["removed in Lightning 2.0", "accelerator='gpu', devices=N"]),
        ("16,", ["'16-mixed'"]),
        ('gpu"', ["Allowed values:", "'cuda'"]),
        ('mode="max"', ["'min'", "'max'"]),
        ('val_loss", mode', ["metric", "Classifier.validation_step"]),
        ("train_loss_epoch", ["forked epoch value", "BaseModule.training_step"]),
        ("Trainer(max", ["Trainer(", "accelerator: Union[str, Accelerator] = 'auto'", "Runs fit"]),
        ("ModelCheckpoint(monitor", ["save_top_k: int = 1", "keeps the best k"]),
        ('log("loss"', ["log(name, value", "Logs a scalar metric"]),
        ("return 1.0", []),
    ],
)
async def test_hover(client, editor, marker, expected):
    value = await _hover(client, editor, marker)
    if not expected:
        assert value is None
        return
    for piece in expected:
        assert piece in value, (piece, value)


async def test_hover_nothing_on_plain_code(client, editor):
    uri, pos = editor.open("x = 1\nprint(|x)\n")
    assert (
        await client.text_document_hover_async(
            types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=pos)
        )
        is None
    )


@pytest.mark.parametrize(
    ("src", "label_start", "active"),
    [
        (
            "import lightning.pytorch as pl\npl.Trainer(max_epochs=3, precision=|",
            "Trainer(accelerator",
            "precision",
        ),
        (
            "import lightning.pytorch as pl\npl.Trainer(max_epochs=3, acc|",
            "Trainer(accelerator",
            "accelerator",
        ),
        (
            "import lightning.pytorch as pl\nclass M(pl.LightningModule):\n    def training_step(self, b, i):\n"
            "        self.log('x', 1, on_epoch=|",
            "self.log(name",
            "on_epoch",
        ),
        (
            "import lightning.pytorch as pl\nclass M(pl.LightningModule):\n    def training_step(self, b, i):\n"
            "        self.log('x', |",
            "self.log(name",
            "value",
        ),
        (
            "from lightning.pytorch.callbacks import ModelCheckpoint\nModelCheckpoint(monitor='a', mode=|)",
            "ModelCheckpoint(dirpath",
            "mode",
        ),
        (
            "from lightning.pytorch.callbacks import EarlyStopping\nEarlyStopping(|",
            "EarlyStopping(monitor",
            "monitor",
        ),
    ],
)
async def test_signature_help(client, editor, src, label_start, active):
    uri, pos = editor.open(src)
    result = await client.text_document_signature_help_async(
        types.SignatureHelpParams(text_document=types.TextDocumentIdentifier(uri=uri), position=pos)
    )
    editor.close(uri)
    assert result is not None
    sig = result.signatures[0]
    assert sig.label.startswith(label_start)
    assert result.active_parameter is not None
    start, end = sig.parameters[result.active_parameter].label
    assert sig.label[start:end].split(":")[0] == active


async def test_no_signature_outside_known_calls(client, editor):
    uri, pos = editor.open("print(1, |)")
    assert (
        await client.text_document_signature_help_async(
            types.SignatureHelpParams(text_document=types.TextDocumentIdentifier(uri=uri), position=pos)
        )
        is None
    )


async def test_definition_from_monitor_across_files(client, editor):
    root = client.workspace_root
    uri = (root / "scripts" / "train.py").as_uri()
    text = (root / "scripts" / "train.py").read_text()
    from lsp_support import position_of

    pos = position_of(text, text.index('"val_loss"') + 3)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
    )
    result = await client.text_document_definition_async(
        types.DefinitionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=pos)
    )
    assert result is not None and len(result) == 1
    loc = result[0]
    assert loc.uri == (root / "pkg" / "models.py").as_uri()
    models = (root / "pkg" / "models.py").read_text().splitlines()
    assert models[loc.range.start.line][loc.range.start.character : loc.range.end.character] == '"val_loss"'

    # the forked epoch name leads to the log call in the base class
    pos = position_of(text, text.index('"train_loss_epoch"') + 3)
    result = await client.text_document_definition_async(
        types.DefinitionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=pos)
    )
    assert [r.uri for r in result] == [(root / "pkg" / "base.py").as_uri()]

    refs = await client.text_document_references_async(
        types.ReferenceParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=pos,
            context=types.ReferenceContext(include_declaration=True),
        )
    )
    assert {r.uri for r in refs} == {(root / "pkg" / "base.py").as_uri(), uri}
    editor.close(uri)


async def test_references_of_log_name(client, editor):
    root = client.workspace_root
    uri = (root / "pkg" / "models.py").as_uri()
    text = (root / "pkg" / "models.py").read_text()
    from lsp_support import position_of

    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
    )
    pos = position_of(text, text.index('"val_loss"') + 2)
    refs = await client.text_document_references_async(
        types.ReferenceParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=pos,
            context=types.ReferenceContext(include_declaration=False),
        )
    )
    assert [r.uri for r in refs] == [(root / "scripts" / "train.py").as_uri()]
    editor.close(uri)


async def test_document_symbols(client, editor):
    uri, _ = editor.open(MODULE)
    result = await client.text_document_document_symbol_async(
        types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    editor.close(uri)
    hierarchical = client.capabilities.text_document.document_symbol.hierarchical_document_symbol_support
    if hierarchical:
        names = [(s.name, [c.name for c in s.children or []]) for s in result]
        assert names == [
            ("Model", ["training_step", "validation_epoch_end", "configure_optimizers"]),
            ("Trainer(...)", []),
        ]
        assert result[0].detail == "LightningModule"
    else:
        assert [s.name for s in result] == [
            "Model",
            "training_step",
            "validation_epoch_end",
            "configure_optimizers",
            "Trainer(...)",
        ]
