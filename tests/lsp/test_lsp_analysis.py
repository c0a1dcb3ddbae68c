"""Pure unit tests of the analysis layer, the document model, the index and the client context (no server)."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import client_capabilities
from torchbolt_lsp.analysis.cursor import cursor_context, top_level_bindings
from torchbolt_lsp.analysis.facts import extract_facts, produced_names
from torchbolt_lsp.analysis.names import bindings_from_ast, canonical, resolve
from torchbolt_lsp.context import build_context, parse_settings
from torchbolt_lsp.document import Document, parse_ast, parse_tree
from torchbolt_lsp.workspace_index import WorkspaceIndex, iter_python_files


# ------------------------------------------------------------------------------------------ imports
@pytest.mark.parametrize(
    ("source", "expr", "expected"),
    [
        ("import lightning.pytorch as pl", "pl.LightningModule", "LightningModule"),
        ("import lightning.pytorch as pl", "pl.callbacks.ModelCheckpoint", "ModelCheckpoint"),
        ("import lightning as L", "L.Trainer", "Trainer"),
        ("import lightning as L", "L.pytorch.callbacks.EarlyStopping", "EarlyStopping"),
        ("from lightning import LightningModule as LM", "LM", "LightningModule"),
        ("import pytorch_lightning as pl", "pl.LightningDataModule", "LightningDataModule"),
        ("from pytorch_lightning.callbacks import Callback", "Callback", "Callback"),
        ("from torchbolt import LightningModule", "LightningModule", "LightningModule"),
        ("import torchbolt as tb", "tb.Trainer", "Trainer"),
        ("import torchbolt.callbacks as cbs", "cbs.LearningRateMonitor", "LearningRateMonitor"),
        ("from lightning.pytorch import callbacks as cb", "cb.ModelCheckpoint", "ModelCheckpoint"),
        ("from lightning.pytorch.loggers import CSVLogger", "CSVLogger", "CSVLogger"),
        ("from lightning.pytorch.callbacks.early_stopping import EarlyStopping as ES", "ES", "EarlyStopping"),
        ("import lightning.pytorch", "lightning.pytorch.Trainer", "Trainer"),
        ("from lightning.pytorch import *", "Trainer", "Trainer"),
        ("import torch", "torch.nn.Module", None),
        ("from mylib import Trainer", "Trainer", None),
        ("import lightning as L", "L.NotAThing", None),
        ("", "Trainer", None),
    ],
)
def test_import_styles(source, expr, expected):
    assert resolve(expr, bindings_from_ast(ast.parse(source))) == expected


@pytest.mark.parametrize(
    ("module", "level", "package", "source", "expected"),
    [
        ("base", 1, "pkg", "from .base import Base", {"Base": "pkg.base.Base"}),
        (None, 1, "pkg.sub", "from . import models", {"models": "pkg.sub.models"}),
        ("util", 2, "pkg.sub", "from ..util import f", {"f": "pkg.util.f"}),
    ],
)
def test_relative_imports(module, level, package, source, expected):
    assert bindings_from_ast(ast.parse(source), package) == expected


def test_canonical_requires_lightning_root():
    assert canonical("lightning.pytorch.core.module.LightningModule") == "LightningModule"
    assert canonical("lightning_fake.Trainer") is None
    assert canonical(None) is None


# ------------------------------------------------------------------------------------ metric names
@pytest.mark.parametrize(
    ("hook", "on_step", "on_epoch", "names", "levels"),
    [
        ("training_step", None, None, ("loss",), (True, False)),
        ("training_step", None, True, ("loss", "loss_epoch", "loss_step"), (True, True)),
        ("validation_step", None, None, ("loss",), (False, True)),
        ("validation_step", True, None, ("loss", "loss_epoch", "loss_step"), (True, True)),
        ("on_train_epoch_end", None, None, ("loss",), (False, True)),
        ("test_step", False, True, ("loss",), (False, True)),
        ("_shared_step", None, None, ("loss",), (None, None)),
        (None, None, None, ("loss",), (None, None)),
    ],
)
def test_produced_names(hook, on_step, on_epoch, names, levels):
    produced, step, epoch = produced_names("loss", hook, on_step, on_epoch)
    assert produced == names and (step, epoch) == levels


FACTS_SRC = """
import lightning.pytorch as pl
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint


class Net(pl.LightningModule):
    automatic_optimization = True

    def __init__(self, lr: float = 1e-3, hidden=32):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        self.log("train_loss", 1.0, on_step=True, on_epoch=True)
        self.log(f"dyn_{batch_idx}", 2.0)
        self.log_dict(dict(a=1, b=2))

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        self.log_dict({"val_loss": 1.0, "val_acc": 2.0}, on_step=False)

    def configure_optimizers(self):
        opt = 1
        return {"optimizer": opt, "lr_scheduler": {"scheduler": 2, "monitor": "val_loss"}}


class Printer(pl.Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        pl_module.log("cb_metric", 3.0)


class Plain:
    def log(self, *a):
        self.log("not_a_metric", 1)


trainer = pl.Trainer(max_epochs=3, callbacks=[EarlyStopping("val_acc", mode="max"),
                                              ModelCheckpoint(monitor="train_loss_epoch")], **extra)
"""


def test_extract_facts():
    facts = extract_facts(ast.parse(FACTS_SRC), FACTS_SRC, "/x/m.py", "m")
    net = facts.class_named("Net")
    assert net is not None and net.direct_kind == "module"
    assert net.automatic_optimization is False and net.saves_hyperparameters
    assert net.init_params == ("lr", "hidden")
    assert [m.name for m in net.methods] == [
        "__init__",
        "training_step",
        "validation_step",
        "configure_optimizers",
    ]
    assert facts.class_named("Printer").direct_kind == "callback"
    assert facts.class_named("Plain").direct_kind is None
    logged = {(m.name, m.hook): m for m in facts.logged}
    assert logged[("train_loss", "training_step")].produced == (
        "train_loss",
        "train_loss_epoch",
        "train_loss_step",
    )
    dyn = next(m for m in facts.logged if m.name is None)
    assert dyn.source == 'f"dyn_{batch_idx}"' and dyn.produced == ()
    assert dyn.pattern == "dyn_.+" and not dyn.dynamic  # an f-string gives a pattern, not an unknown name
    assert logged[("a", "training_step")].call == "log_dict"
    assert logged[("val_loss", "validation_step")].produced == ("val_loss",)
    assert "dataloader_idx" in logged[("val_loss", "validation_step")].note
    assert logged[("cb_metric", "on_train_epoch_end")].receiver == "pl_module"
    assert ("not_a_metric", "log") in logged  # recorded; the index filters non-Lightning classes
    assert [(r.name, r.source) for r in facts.monitors] == [
        ("val_loss", "lr_scheduler"),
        ("val_acc", "EarlyStopping"),
        ("train_loss_epoch", "ModelCheckpoint"),
    ]
    trainer = next(c for c in facts.calls if c.callee == "Trainer")
    assert trainer.keyword("max_epochs").value == 3 and trainer.has_star_kwargs
    assert not trainer.keyword("callbacks").has_literal
    span = trainer.keyword("max_epochs").name_span
    line = FACTS_SRC.splitlines()[span.line]
    assert line[span.col : span.end_col] == "max_epochs"


def test_facts_columns_in_utf16_and_utf8():
    src = 'import lightning as L\nx = "😀"; t = L.Trainer(max_epochs=1)\n'
    for encoding, col in (("utf-16", 24), ("utf-8", 26), ("utf-32", 23)):
        facts = extract_facts(ast.parse(src), src, encoding=encoding)
        assert facts.calls[0].keyword("max_epochs").name_span.col == col


# ----------------------------------------------------------------------------------- cursor context
def _ctx(src: str):
    offset = src.index("|")
    text = src.replace("|", "", 1)
    return cursor_context(text, parse_tree(text), offset)


@pytest.mark.parametrize(
    ("src", "callee", "keyword", "in_value", "given"),
    [
        ("pl.Trainer(|", "pl.Trainer", None, False, ()),
        ("pl.Trainer(max_epochs=3, acc|", "pl.Trainer", None, False, ("max_epochs",)),
        ("pl.Trainer(max_epochs=3, |, devices=2)", "pl.Trainer", None, False, ("max_epochs", "devices")),
        ("pl.Trainer(precision=|", "pl.Trainer", "precision", True, ()),
        ('pl.Trainer(precision="16|', "pl.Trainer", "precision", True, ()),
        ("pl.Trainer(callbacks=[ModelCheckpoint(mode=|", "ModelCheckpoint", "mode", True, ()),
        ("pl . Trainer (\n    max_epochs=1,\n    |", "pl.Trainer", None, False, ("max_epochs",)),
        ("f(a == b, |", "f", None, False, ()),
        (
            "x = {'a': (1, 2)}\nL.Trainer(limit_val_batches=(1), |",
            "L.Trainer",
            None,
            False,
            ("limit_val_batches",),
        ),
    ],
)
def test_call_context(src, callee, keyword, in_value, given):
    ctx = _ctx(src)
    assert ctx.call is not None
    assert (ctx.call.callee, ctx.call.keyword, ctx.call.in_value, ctx.call.given) == (
        callee,
        keyword,
        in_value,
        given,
    )


@pytest.mark.parametrize(
    ("src", "klass", "function", "def_name", "member_line"),
    [
        ("class M(pl.LightningModule):\n    def con|", "M", None, "con", False),
        ("class M(pl.LightningModule):\n    def |", "M", None, "", False),
        ("class M(pl.LightningModule):\n    |", "M", None, None, True),
        ("class M(pl.LightningModule):\n    x = 1\n    tra|", "M", None, None, True),
        ("class M(\n    pl.LightningModule,\n):\n    def |", "M", None, "", False),
        ("class M(A, B, metaclass=X)\n    def |", "M", None, "", False),  # missing colon
        ("class M(A):\n    def f(self):\n        |", "M", "f", None, False),
        ("class M(A):\n    def f(self):\n        pass\n|", None, None, None, False),
        ("def f():\n    def |", None, "f", None, False),
    ],
)
def test_enclosing_context(src, klass, function, def_name, member_line):
    ctx = _ctx(src)
    assert (ctx.klass.name if ctx.klass else None) == klass
    assert (ctx.function, ctx.def_name, ctx.member_line) == (function, def_name, member_line)


def test_class_bases_and_strings_comments():
    assert _ctx("class M(\n    pl.LightningModule,\n):\n    def |").klass.bases == ("pl.LightningModule",)
    assert _ctx("class M(A, B, metaclass=X)\n    def |").klass.bases == ("A", "B")
    assert _ctx("x = 1  # pl.Trainer(|").in_comment
    s = _ctx('pl.Trainer(accelerator="cu|').string
    assert s is not None and s.prefix == "cu"
    assert _ctx('s = """\npl.Trainer(|').string is not None  # inside a docstring
    assert _ctx("self.lo|").member == ("self", "lo")
    assert _ctx('x = {"scheduler": s, "monitor": "va|').dict_key == "monitor"


def test_top_level_bindings_survive_broken_code():
    text = (
        "import lightning.pytorch as pl\ntry:\n    from torchbolt import Trainer as T\nexcept ImportError:\n"
        "    pass\nclass M(pl.LightningModule):\n    def con\n"
    )
    bindings = top_level_bindings(parse_tree(text), text.encode())
    assert bindings["pl"] == "lightning.pytorch" and bindings["T"] == "torchbolt.Trainer"


# ------------------------------------------------------------------------------------- the document
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
def test_positions_round_trip(encoding):
    text = "a😀b\r\nü\rx\n\tz"
    doc = Document("file:///t.py", text, 1, encoding)
    for offset in range(len(text) + 1):
        pos = doc.position_at(offset)
        if text[offset - 1 : offset + 1] == "\r\n":
            continue  # between \r and \n is not a position
        assert doc.offset_at(pos.line, pos.character) == offset
    assert doc.line_count() == 4
    assert doc.offset_at(99, 0) == len(text) and doc.offset_at(0, 999) == 3


@pytest.mark.parametrize(
    "edits",
    [
        [((0, 0), (0, 0), "x")],
        [((1, 4), (1, 7), "def training_step(self):\n        return 1\n")],
        [((0, 0), (2, 0), ""), ((0, 0), (0, 0), "class A:\n")],
        [((1, 2), (1, 2), "😀"), ((1, 3), (1, 5), "ü\r\n")],
        [((5, 0), (9, 0), "tail")],
    ],
)
def test_incremental_tree_equals_full_parse(edits):
    text = "import lightning as L\nclass M(L.LightningModule):\n    def f(self):\n        pass\n"
    doc = Document("file:///t.py", text, 1)
    changes = [
        types.TextDocumentContentChangePartial(
            range=types.Range(
                start=types.Position(line=a[0], character=a[1]), end=types.Position(line=b[0], character=b[1])
            ),
            text=new,
        )
        for a, b, new in edits
    ]
    doc.apply_changes(changes, 2)
    assert str(doc.tree.root_node) == str(parse_tree(doc.text).root_node)
    assert doc.version == 2


@pytest.mark.parametrize(
    ("text", "parses"),
    [
        ("class M:\n    def con\n    def f(self):\n        return 1\n", True),
        ("x = L.Trainer(max_epochs=3, acc\nprint(1)\n", True),
        ("def f(:\n", True),
        ("\x00\x01", False),
        ("(" * 200 + "\n", True),  # the offending line becomes `pass`
        ("x = (\n" * 3 + "\x00", False),
    ],
)
def test_parse_ast_repair(text, parses):
    assert (parse_ast(text) is not None) is parses


def test_ast_snapshot_keeps_last_good():
    doc = Document("file:///t.py", "class A:\n    pass\n", 1)
    good = doc.ast_module()
    assert good is not None and doc.ast_is_current
    doc.replace_text("\x00 broken (", 2)
    assert doc.ast_module() is good and not doc.ast_is_current


# ------------------------------------------------------------------------------------- the index
def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))


def test_index_cross_file_kinds(tmp_path):
    _write(
        tmp_path,
        {
            "src/proj/__init__.py": "from .base import Base\n",
            "src/proj/base.py": "import lightning.pytorch as pl\nclass Base(pl.LightningModule):\n    pass\n",
            "src/proj/mid.py": "from proj import Base\nclass Mid(Base):\n    def training_step(self, b, i):\n"
            "        self.log('m', 1)\n",
            "src/proj/leaf.py": "from .mid import Mid as M\nclass Leaf(M):\n    pass\n",
            "scripts/a.py": "from b import B\nclass A(B):\n    pass\n",
            "scripts/b.py": "from a import A\nclass B(A):\n    pass\n",  # a cycle: no kind, no hang
            "venv_like/pyvenv.cfg": "",
            "venv_like/lib/x.py": "class X: pass\n",
            "node_modules/y.py": "class Y: pass\n",
        },
    )
    (tmp_path / "venv_like" / "pyvenv.cfg").write_text("home=/usr\n")
    index = WorkspaceIndex([str(tmp_path)])
    index.scan()
    assert index.ready.is_set()
    files = {Path(p).relative_to(tmp_path).as_posix() for p in index.files()}
    assert "node_modules/y.py" not in files and "venv_like/lib/x.py" not in files
    leaf = str(tmp_path / "src/proj/leaf.py")
    assert index.class_kind(leaf, "Leaf") == "module"
    assert index.class_kind(str(tmp_path / "scripts/a.py"), "A") is None
    assert [m.name for _, m in index.logged_metrics()] == ["m"]
    assert index.inherited_methods(leaf, "Leaf") == {"training_step"}
    # the file changes on disk: kinds follow
    (tmp_path / "src/proj/base.py").write_text("class Base:\n    pass\n")
    index.update_from_disk(str(tmp_path / "src/proj/base.py"))
    assert index.class_kind(leaf, "Leaf") is None
    (tmp_path / "src/proj/mid.py").unlink()
    index.update_from_disk(str(tmp_path / "src/proj/mid.py"))
    assert index.get(str(tmp_path / "src/proj/mid.py")) is None


def test_index_listeners_and_open_documents(tmp_path):
    _write(tmp_path, {"m.py": "import lightning as L\nclass M(L.LightningModule):\n    pass\n"})
    index = WorkspaceIndex([str(tmp_path)])
    seen: list[set[str]] = []
    index.add_listener(seen.append)
    index.add_listener(lambda paths: 1 / 0)  # a failing listener does not stop the others
    index.scan()
    path = str(tmp_path / "m.py")
    index.put(path, index.facts_for_text(path, "class M:\n    pass\n"), from_open_document=True)
    index.update_from_disk(path)  # the open document wins over the disk
    assert index.class_kind(path, "M") is None
    index.notify({path})
    assert seen == [{path}]
    assert index.release_open(path) is True
    index.update_from_disk(path)
    assert index.class_kind(path, "M") == "module"


def test_iter_python_files_skips(tmp_path):
    _write(
        tmp_path,
        {"a.py": "", ".git/b.py": "", "pkg/__pycache__/c.py": "", "pkg/d.py": "", "e.egg-info/f.py": ""},
    )
    assert sorted(Path(p).name for p in iter_python_files([str(tmp_path)])) == ["a.py", "d.py"]


# ----------------------------------------------------------------------------------- client context
@pytest.mark.parametrize(
    ("profile", "snippets", "pull", "inlay"),
    [
        ("visual-studio-code", True, False, False),
        ("neovim@v0.11", True, True, True),
        ("neovim@v0.7", False, False, False),
    ],
)
def test_client_context_from_profiles(profile, snippets, pull, inlay):
    ctx = build_context(
        types.InitializeParams(capabilities=client_capabilities(profile), root_uri="file:///w")
    )
    assert (ctx.snippets, ctx.pull_diagnostics, ctx.inlay_hints) == (snippets, pull, inlay)
    assert ctx.root_paths == ("/w",)


@pytest.mark.parametrize(
    ("options", "trusted", "select", "hints", "interpreter"),
    [
        (None, False, (), True, None),
        (
            {"trusted": True, "settings": {"lint": {"select": ["TB1"], "ignore": "bad"}}},
            True,
            ("TB1",),
            True,
            None,
        ),
        (
            {"trusted": "yes", "settings": {"inlayHints": {"enable": False}, "run": {"interpreter": "/py"}}},
            False,
            (),
            False,
            "/py",
        ),
        ({"settings": []}, False, (), True, None),
    ],
)
def test_parse_settings(options, trusted, select, hints, interpreter):
    got_trusted, settings = parse_settings(options)
    assert got_trusted is trusted and settings.lint.select == select
    assert settings.inlay_hints_enabled is hints and settings.run.interpreter == interpreter
