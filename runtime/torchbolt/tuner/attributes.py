"""Find and set a hyper-parameter (`lr`, `batch_size`) where Lightning code keeps it: an attribute of the
module, its `hparams`, the DataModule, or the DataModule's `hparams`."""

from __future__ import annotations

from typing import Any

from torchbolt.utilities.exceptions import MisconfigurationException


def _holders(model: Any, attribute: str) -> list[Any]:
    """Every object holding `attribute`, in the order Lightning looks: module, hparams, datamodule, its hparams."""
    found: list[Any] = []
    if attribute in getattr(model, "__dict__", {}) or (hasattr(model, attribute) and not callable(
            getattr(type(model), attribute, None))):
        found.append(model)
    hparams = getattr(model, "hparams", None)
    if hparams is not None and attribute in hparams:
        found.append(hparams)
    trainer = getattr(model, "_trainer", None)
    dm = getattr(trainer, "datamodule", None) if trainer is not None else None
    if dm is not None:
        if hasattr(dm, attribute):
            found.append(dm)
        dm_hparams = getattr(dm, "hparams", None)
        if dm_hparams is not None and attribute in dm_hparams:
            found.append(dm_hparams)
    return found


def lightning_hasattr(model: Any, attribute: str) -> bool:
    return bool(_holders(model, attribute))


def lightning_getattr(model: Any, attribute: str) -> Any:
    """The value of `attribute` from the first place that holds it."""
    holders = _holders(model, attribute)
    if not holders:
        raise AttributeError(
            f"{attribute} is neither stored in the model namespace nor the `hparams` namespace/dict, nor the "
            "datamodule: add it as an attribute or to save_hyperparameters()."
        )
    holder = holders[0]
    return holder[attribute] if isinstance(holder, dict) else getattr(holder, attribute)


def lightning_setattr(model: Any, attribute: str, value: Any) -> None:
    """Set `attribute` everywhere it is held (module, hparams, datamodule), as Lightning does."""
    holders = _holders(model, attribute)
    if not holders:
        raise AttributeError(
            f"{attribute} is neither stored in the model namespace nor the `hparams` namespace/dict, nor the "
            "datamodule: add it as an attribute or to save_hyperparameters()."
        )
    for holder in holders:
        if isinstance(holder, dict):
            holder[attribute] = value
        else:
            setattr(holder, attribute, value)


def lr_attr_name(model: Any, attr_name: str = "") -> str:
    """The learning-rate field to update: `attr_name`, else `lr` or `learning_rate`."""
    if attr_name:
        if not lightning_hasattr(model, attr_name):
            raise AttributeError(
                f"The attribute name for the learning rate was set to {attr_name}, but could not find this as a "
                "field in `model` or `model.hparams`."
            )
        return attr_name
    for name in ("lr", "learning_rate"):
        if lightning_hasattr(model, name):
            return name
    raise AttributeError(
        "When using the learning rate finder either specify a `attr_name` or make sure that your model has a field "
        "named `lr` or `learning_rate`."
    )


def check_batch_arg(model: Any, batch_arg_name: str) -> None:
    if not lightning_hasattr(model, batch_arg_name):
        raise MisconfigurationException(
            f"Field {batch_arg_name} not found in `model`, `datamodule`, nor their `hparams` attributes: the batch "
            "size finder changes this field, so the dataloaders must read it (e.g. DataLoader(..., "
            f"batch_size=self.{batch_arg_name}))."
        )
