"""`TensorBoardLogger`: TensorBoard event files in `save_dir/name/version_N[/sub_dir]`."""

from __future__ import annotations

import os
import warnings
from argparse import Namespace
from typing import TYPE_CHECKING, Any

from torchbolt.loggers.logger import (
    FolderLogger,
    add_prefix,
    convert_params,
    flatten_dict,
    rank_zero_experiment,
    sanitize_params,
    save_hparams_to_yaml,
    to_float,
    version_folder,
)

if TYPE_CHECKING:
    from torch import nn
    from torch.utils.tensorboard import SummaryWriter


class TensorBoardLogger(FolderLogger):
    """Writes scalars, hyper-parameters (with `hp_metric`) and optionally the model graph as TensorBoard
    event files. Extra keyword arguments go to `torch.utils.tensorboard.SummaryWriter`."""

    NAME_HPARAMS_FILE = "hparams.yaml"
    LOGGER_JOIN_CHAR = "-"
    _hparams_file_seen = False

    def __init__(
        self,
        save_dir: str | os.PathLike[str],
        name: str | None = "lightning_logs",
        version: int | str | None = None,
        log_graph: bool = False,
        default_hp_metric: bool = True,
        prefix: str = "",
        sub_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(save_dir, (str, os.PathLike)):
            raise TypeError(
                f"TensorBoardLogger(save_dir=...) must be a folder path, got {type(save_dir).__name__}."
            )
        self._save_dir = os.fspath(save_dir)
        self._name = name or ""
        self._version = version
        self._log_graph = log_graph
        self._default_hp_metric = default_hp_metric
        self._prefix = prefix
        self._sub_dir = None if sub_dir is None else os.fspath(sub_dir)
        self._kwargs = kwargs
        self._experiment: SummaryWriter | None = None
        self.hparams: dict[str, Any] = {}
        self._hparams_file_seen = False  # hparams.yaml known to exist in log_dir (see save)

    @property
    def log_dir(self) -> str:
        path = os.path.join(self.root_dir, version_folder(self.version))
        if self._sub_dir is not None:
            path = os.path.join(path, self._sub_dir)
        return os.path.expanduser(os.path.expandvars(path))

    @property
    def sub_dir(self) -> str | None:
        return self._sub_dir

    @property
    @rank_zero_experiment
    def experiment(self) -> SummaryWriter:
        """The underlying `SummaryWriter`, created on first use (TensorBoard is imported only then)."""
        if self._experiment is None:
            from torch.utils.tensorboard import SummaryWriter

            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = SummaryWriter(log_dir=self.log_dir, **self._kwargs)
        return self._experiment

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """One scalar per metric; a dict value becomes a group of scalars (`add_scalars`)."""
        for key, value in add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR).items():
            if isinstance(value, dict):
                self.experiment.add_scalars(key, {k: to_float(v) for k, v in value.items()}, step)
            else:
                self.experiment.add_scalar(key, to_float(value), step)

    def log_hyperparams(
        self,
        params: dict[str, Any] | Namespace,
        metrics: dict[str, Any] | float | None = None,
        step: int | None = None,
    ) -> None:
        """Record hyper-parameters for TensorBoard's HPARAMS tab, with `hp_metric` = -1 unless
        `default_hp_metric=False` or `metrics` are given."""
        params = convert_params(params)
        self.hparams.update(params)
        flat = sanitize_params(flatten_dict(params))
        if metrics is None:
            metrics = {"hp_metric": -1} if self._default_hp_metric else None
        elif not isinstance(metrics, dict):
            metrics = {"hp_metric": metrics}
        if not metrics:
            return
        self.log_metrics(metrics, step)
        from torch.utils.tensorboard.summary import hparams

        experiment, session_start, session_end = hparams(flat, {k: to_float(v) for k, v in metrics.items()})
        writer = self.experiment._get_file_writer()
        for summary in (experiment, session_start, session_end):
            writer.add_summary(summary, step)

    def log_graph(self, model: nn.Module, input_array: Any = None) -> None:
        """Trace `model` with `input_array` (default: `model.example_input_array`) when `log_graph=True`."""
        if not self._log_graph:
            return
        if input_array is None:
            input_array = getattr(model, "example_input_array", None)
        if input_array is None:
            warnings.warn(
                "TensorBoardLogger(log_graph=True) could not log the graph: set `self.example_input_array` in "
                "your LightningModule or pass `input_array`.",
                stacklevel=2,
            )
            return
        if not isinstance(input_array, tuple) and not hasattr(input_array, "shape"):
            warnings.warn(
                f"TensorBoardLogger could not trace an input of type {type(input_array).__name__}: use a tensor or "
                "a tuple of the positional arguments of forward().",
                stacklevel=2,
            )
            return
        device = next((p.device for p in model.parameters()), None)
        if device is not None:
            import torch

            def move(x: Any) -> Any:
                return x.to(device) if isinstance(x, torch.Tensor) else x

            input_array = tuple(move(x) for x in input_array) if isinstance(input_array, tuple) else move(input_array)
        self.experiment.add_graph(model, input_array)

    def save(self) -> None:
        """Flush the event file; write hparams.yaml once the run folder exists."""
        if self._experiment is not None:
            self._experiment.flush()
        if not self._hparams_file_seen:
            # The Trainer calls save() after every logging step: once the file is there (written now or
            # before), skip the path building and two filesystem checks. finalize() checks again.
            self._save_hparams_file()

    def _save_hparams_file(self) -> None:
        log_dir = self.log_dir
        hparams_file = os.path.join(log_dir, self.NAME_HPARAMS_FILE)
        if os.path.isdir(log_dir):
            if not os.path.isfile(hparams_file):
                save_hparams_to_yaml(hparams_file, self.hparams)
            self._hparams_file_seen = True

    def finalize(self, status: str) -> None:
        """Flush and close the event file; hparams.yaml is written on success."""
        if self._experiment is not None:
            self._experiment.flush()
            self._experiment.close()
        if status == "success":
            self._hparams_file_seen = False  # look again: the file may have been removed during the run
            self.save()

    def __getstate__(self) -> dict[str, Any]:
        # a SummaryWriter holds threads and file handles; a copy reopens its own
        state = self.__dict__.copy()
        state["_experiment"] = None
        return state
