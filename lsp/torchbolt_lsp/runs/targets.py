"""What can be run from a file: LightningModule / LightningDataModule classes and `trainer.fit(` calls in
scripts, plus the static "where does the data come from" check done before launching.

Works on the workspace index's per-file facts (`analysis.facts`), never by importing user code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from torchbolt.catalog import MODULE_HOOKS

from ..analysis.facts import ClassFacts, FileFacts


def needed_loader(fn: str) -> str:
    """The dataloader hook an entry point cannot do without, from the catalog: among the module's
    `*_dataloader` hooks that `fn` calls, the one specific to it (fit also asks for val_dataloader, but
    only train_dataloader is required)."""
    loaders = [h for h in MODULE_HOOKS if h.name.endswith("_dataloader") and fn in h.entry_points]
    if not loaders:
        raise ValueError(f"no dataloader hook runs in {fn!r}")
    return min(loaders, key=lambda h: len(h.entry_points)).name

RUN_FNS = ("fit", "validate", "test")


@dataclass(frozen=True)
class Target:
    """A runnable thing at a line: a Lightning class (`kind` module/datamodule) or a script call."""

    kind: str  # "module" | "datamodule" | "script"
    name: str  # class name, or the call text for a script (`trainer.fit`)
    path: str
    line: int  # 0-based line of the anchor (class name / call)
    col: int
    end_col: int
    fn: str | None = None  # for script calls: which entry point the call runs

    @property
    def key(self) -> str:
        """Identity of the target: one active run per key."""
        return f"{self.path}::{self.name}" if self.kind != "script" else f"{self.path}::<script>"


def class_targets(facts: FileFacts, kind_of: Callable[[ClassFacts], str | None]) -> list[Target]:
    """Every LightningModule / LightningDataModule class defined in the file, in source order."""
    out = []
    for cls in facts.classes:
        kind = kind_of(cls)
        if kind in ("module", "datamodule"):
            out.append(Target(kind, cls.name, facts.path, cls.span.line, cls.span.col, cls.span.end_col))
    return out


def script_calls(facts: FileFacts, trainer_names: Iterable[str] = ("trainer",)) -> list[Target]:
    """`X.fit(` / `X.validate(` / `X.test(` calls anywhere in the file (top level, `if __name__ ==
    "__main__":`, functions), where X was assigned from a `Trainer(...)` call or is named `trainer`; read
    from the file's facts (`FileFacts.run_calls`), in source order."""
    receivers = {*trainer_names, *facts.trainer_vars}
    out = [Target("script", f"{call.receiver}.{call.fn}", facts.path, call.span.line, call.span.col,
                  call.span.end_col, fn=call.fn)
           for call in facts.run_calls if call.fn in RUN_FNS and call.receiver in receivers]
    out.sort(key=lambda t: (t.line, t.col))
    return out


def missing_data_message(class_name: str, methods: set[str], fn: str, data: str | None,
                         file_name: str = "") -> str | None:
    """Why `fn` cannot get data for the module (no dataloader hook and no DataModule), or None when it can.

    `methods` are the names defined by the class and its workspace bases.
    """
    if data:
        return None
    hook = needed_loader(fn)
    if hook in methods:
        return None
    where = f"{file_name}::DataModuleClass" if file_name else "file.py::DataModuleClass"
    return (f"{class_name} has no {hook}() and no LightningDataModule is configured, so {fn} has no data. "
            f"Add `def {hook}(self)` returning a torch.utils.data.DataLoader to {class_name}, or set "
            f"`data = \"{where}\"` under [tool.torchbolt.run] in pyproject.toml "
            f"(or pass overrides {{\"data\": ...}} with the command).")


def relative_target(path: str, name: str, folder: str) -> str:
    """`rel/path.py::Class` as the CLI takes it (relative to the workspace folder when inside it)."""
    rel = os.path.relpath(path, folder)
    return f"{path if rel.startswith('..') else rel}::{name}"
