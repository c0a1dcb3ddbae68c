"""Where Lightning's module paths live in torchbolt (torch-free data shared by the import hook and tools).

Lightning module names are written relative to `lightning.pytorch` ("" is the package itself). Most map
one to one (`callbacks.early_stopping` -> `torchbolt.callbacks.early_stopping`); `MOVED` lists the ones
that live elsewhere in torchbolt, `PACKAGE_LIKE` the Lightning packages whose torchbolt counterpart is a
plain module (so `lightning.pytorch.callbacks.progress.tqdm_progress` still resolves).
"""

from __future__ import annotations

#: The top-level names under which Lightning's PyTorch part is imported.
PYTORCH_ROOTS = ("lightning.pytorch", "pytorch_lightning")

#: Lightning path (relative to lightning.pytorch) -> torchbolt path (relative to torchbolt).
MOVED: dict[str, str] = {
    "trainer.states": "trainer.state",
    "callbacks.progress.progress_bar": "callbacks.progress",
    "callbacks.progress.tqdm_progress": "callbacks.progress",
    "core.mixins": "utilities",
    "core.mixins.hparams_mixin": "utilities.hparams",
    "utilities.model_summary.model_summary": "utilities.model_summary",
    "utilities.parsing": "utilities.hparams",
}

#: Lightning packages whose torchbolt counterpart is a module: they get an empty `__path__` when aliased.
PACKAGE_LIKE = frozenset({"callbacks.progress", "core.mixins", "utilities.model_summary"})

#: Lightning packages beside `lightning.pytorch` that torchbolt does not provide, with what to use instead.
OTHER_LIGHTNING_PACKAGES: dict[str, str] = {
    "fabric": "Lightning Fabric is not part of torchbolt; write the loop with a torchbolt Trainer, or run "
              "the script with the real Lightning (`torchbolt run --engine lightning SCRIPT`)",
    "app": "Lightning Apps are not part of torchbolt (nor of Lightning 2.x's PyTorch package)",
    "data": "use `torch.utils.data` (or the `litdata` package) for datasets",
    "store": "save checkpoints with `trainer.save_checkpoint` / ModelCheckpoint",
}


def torchbolt_path(lightning_rel: str) -> str:
    """The torchbolt module name for a module path relative to `lightning.pytorch`."""
    rel = MOVED.get(lightning_rel, lightning_rel)
    return f"torchbolt.{rel}" if rel else "torchbolt"


def lightning_relative(fullname: str) -> str | None:
    """`fullname` relative to lightning.pytorch ("" for the root), or None when it is not under it."""
    for root in PYTORCH_ROOTS:
        if fullname == root:
            return ""
        if fullname.startswith(root + "."):
            return fullname[len(root) + 1:]
    return None
