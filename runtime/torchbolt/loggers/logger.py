"""The `Logger` base class that custom loggers subclass, and the helpers the built-in loggers share.

The Trainer calls, in this order: `log_hyperparams(params)` and `log_graph(model)` at fit start,
`log_metrics(metrics, step)` every `log_every_n_steps` and at epoch end, `save()` at epoch end,
`after_save_checkpoint(checkpoint_callback)` after each checkpoint, and `finalize(status)` at the end
("success" or "failed").
"""

from __future__ import annotations

import functools
import os
import re
from abc import ABC, abstractmethod
from argparse import Namespace
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import asdict, is_dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr

if TYPE_CHECKING:
    from torch import nn

    from torchbolt.callbacks.checkpoint import Checkpoint


class Logger(ABC):
    """Base class of experiment loggers: subclass it and implement `name`, `version`, `log_metrics` and
    `log_hyperparams`; the other members have working defaults."""

    @property
    @abstractmethod
    def name(self) -> str | None:
        """Experiment name."""

    @property
    @abstractmethod
    def version(self) -> int | str | None:
        """Experiment version (an int becomes the folder `version_N`)."""

    @property
    def save_dir(self) -> str | None:
        """Root folder the logger writes into, or None for loggers that write nowhere local."""
        return None

    @property
    def root_dir(self) -> str | None:
        """Folder holding all versions of this experiment."""
        return None

    @property
    def log_dir(self) -> str | None:
        """Folder of this run (a version of the experiment)."""
        return None

    @property
    def group_separator(self) -> str:
        """Separator that groups metric names in the logger's UI."""
        return "/"

    @abstractmethod
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Record scalar metrics at a step."""

    @abstractmethod
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """Record the run's hyper-parameters."""

    def log_graph(self, model: nn.Module, input_array: Any = None) -> None:
        """Record the model's graph; the default does nothing."""
        return None

    def save(self) -> None:
        """Flush what was recorded to storage; called at each epoch end."""
        return None

    def finalize(self, status: str) -> None:
        """Run is over ("success" or "failed"): flush and close. The default calls `save()`."""
        self.save()

    def after_save_checkpoint(self, checkpoint_callback: Checkpoint) -> None:
        """A checkpoint was written by `checkpoint_callback`; the default does nothing."""
        return None


class DummyExperiment:
    """What `logger.experiment` is on every process but global rank 0: any call or item does nothing, so
    `self.logger.experiment.add_image(...)` in a module runs unchanged under DDP."""

    def nop(self, *args: Any, **kwargs: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return self.nop

    def __getitem__(self, idx: Any) -> DummyExperiment:
        return self

    def __setitem__(self, key: Any, value: Any) -> None:
        return None


def rank_zero_experiment(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Decorator for a logger's `experiment`: only global rank 0 creates the real one (and its folders or
    remote run); other ranks get a DummyExperiment."""

    @functools.wraps(fn)
    def experiment(self: Any) -> Any:
        from torchbolt.utilities.rank_zero import rank_zero_only

        if rank_zero_only.rank:
            return DummyExperiment()
        return fn(self)

    return experiment


class DummyLogger(Logger):
    """A logger that records nothing (used by `fast_dev_run`); any method call is accepted."""

    @property
    def name(self) -> str:
        return ""

    @property
    def version(self) -> str:
        return ""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        return None

    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        return None

    def __getitem__(self, idx: int) -> DummyLogger:
        return self

    def __getattr__(self, name: str) -> Any:
        def method(*args: Any, **kwargs: Any) -> None:
            return None

        return method


# --------------------------------------------------------------------------------------------------
# Helpers shared by the built-in loggers
# --------------------------------------------------------------------------------------------------
def convert_params(params: Mapping[str, Any] | Namespace | None) -> dict[str, Any]:
    """Hyper-parameters as a plain dict (a Namespace becomes its vars, None an empty dict)."""
    if params is None:
        return {}
    if isinstance(params, Namespace):
        return dict(vars(params))
    if isinstance(params, Mapping):
        return dict(params)
    raise TypeError(
        f"Hyper-parameters must be a dict or an argparse.Namespace, got {type(params).__name__}. "
        "Pass a dict, e.g. logger.log_hyperparams({'lr': 0.1})."
    )


def flatten_dict(params: MutableMapping[Any, Any] | Mapping[Any, Any], delimiter: str = "/",
                 parent_key: str = "") -> dict[str, Any]:
    """Nested dicts (and dataclasses, Namespaces, lists of dicts) become `a/b` keys."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        full = f"{parent_key}{delimiter}{key}" if parent_key else str(key)
        if is_dataclass(value) and not isinstance(value, type):
            value = asdict(value)
        elif isinstance(value, Namespace):
            value = vars(value)
        if isinstance(value, Mapping):
            flat.update(flatten_dict(value, delimiter, full))
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Mapping) for v in value):
            flat.update(flatten_dict({str(i): v for i, v in enumerate(value)}, delimiter, full))
        else:
            flat[full] = value
    return flat


def sanitize_params(params: dict[str, Any]) -> dict[str, Any]:
    """Values TensorBoard's hparams plugin accepts: numbers, strings and bools stay, the rest become text."""
    clean: dict[str, Any] = {}
    for key, value in params.items():
        if hasattr(value, "item") and getattr(value, "ndim", 0) == 0 and not isinstance(value, (str, bytes)):
            value = value.item()  # numpy / torch scalars
        if isinstance(value, Enum):
            value = value.name
        if isinstance(value, type):
            value = value.__name__
        elif callable(value):
            value = getattr(value, "__name__", repr(value))
        if value is None or not isinstance(value, (bool, int, float, str)):
            value = str(value)
        clean[key] = value
    return clean


def add_prefix(metrics: Mapping[str, Any], prefix: str, separator: str) -> dict[str, Any]:
    """`{prefix}{separator}{name}` for every metric when a prefix is set."""
    if not prefix:
        return dict(metrics)
    return {f"{prefix}{separator}{k}": v for k, v in metrics.items()}


def to_float(value: Any) -> float:
    """A logged value as a Python float (one-element tensors and numpy scalars included)."""
    try:
        if hasattr(value, "item"):
            value = value.item()
        return float(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"Cannot log {value!r} ({type(value).__name__}) as a metric: loggers accept numbers and one-element "
            "tensors. Log a scalar, e.g. self.log('loss', loss.mean())."
        ) from err


def to_scalar(value: Any) -> int | float:
    """A logged value as a Python number, keeping ints as ints (as Lightning's CSV rows show them)."""
    if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    return to_float(value)


_VERSION_DIR = re.compile(r"^version_(\d+)$")


class FolderLogger(Logger):
    """A logger that writes under `save_dir/name/version_N`: the folder layout CSV and TensorBoard share."""

    _save_dir: str
    _name: str
    _version: int | str | None

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> int | str:
        if self._version is None:
            self._version = next_version(self.root_dir)
        return self._version

    @property
    def save_dir(self) -> str:
        return self._save_dir

    @property
    def root_dir(self) -> str:
        return os.path.join(self._save_dir, self._name)


def next_version(root_dir: str | os.PathLike[str]) -> int:
    """One more than the highest `version_N` folder inside `root_dir`, or 0 when there is none."""
    root = Path(root_dir)
    if not root.is_dir():
        return 0
    found = [int(m.group(1)) for p in root.iterdir() if p.is_dir() and (m := _VERSION_DIR.match(p.name))]
    return max(found) + 1 if found else 0


def version_folder(version: int | str) -> str:
    """`version_N` for an int version; a string version names the folder itself."""
    return version if isinstance(version, str) else f"version_{version}"


def hparams_to_yaml_data(params: Mapping[str, Any]) -> dict[str, Any]:
    """Hyper-parameters as data that `yaml.safe_dump` writes and `yaml.safe_load` reads back.

    Containers are kept; paths, enums and anything else become their text so the file never needs
    Python-specific YAML tags to load.
    """

    def plain(value: Any) -> Any:
        if isinstance(value, Namespace):
            value = vars(value)
        if is_dataclass(value) and not isinstance(value, type):
            value = asdict(value)
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [plain(v) for v in value]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            return value.item()
        if isinstance(value, Enum):
            return value.name
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, type):
            return f"{value.__module__}.{value.__qualname__}"
        return str(value)

    return {str(k): plain(v) for k, v in params.items()}


def save_hparams_to_yaml(path: str | os.PathLike[str], params: Mapping[str, Any]) -> None:
    """Write hyper-parameters as plain YAML (see `hparams_to_yaml_data`)."""
    import yaml

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", encoding="utf-8") as f:
        yaml.safe_dump(hparams_to_yaml_data(params), f, sort_keys=False)


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
