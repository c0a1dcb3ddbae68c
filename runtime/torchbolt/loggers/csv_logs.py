"""`CSVLogger`: `metrics.csv` (one row per logging call, a `step` column, sorted columns) and `hparams.yaml`
in `save_dir/name/version_N`."""

from __future__ import annotations

import csv
import os
import warnings
from argparse import Namespace
from typing import Any

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr
from torchbolt.loggers.logger import (
    FolderLogger,
    add_prefix,
    convert_params,
    rank_zero_experiment,
    save_hparams_to_yaml,
    to_scalar,
    version_folder,
)


class CSVExperimentWriter:
    """Buffers metric rows and appends them to `metrics.csv`; rewrites the file when new columns appear."""

    NAME_METRICS_FILE = "metrics.csv"
    NAME_HPARAMS_FILE = "hparams.yaml"

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir
        self.metrics_file_path = os.path.join(log_dir, self.NAME_METRICS_FILE)
        self.metrics: list[dict[str, Any]] = []
        self.metrics_keys: list[str] = []
        self.hparams: dict[str, Any] = {}
        if os.path.isdir(log_dir) and os.listdir(log_dir):
            warnings.warn(
                f"Experiment logs directory {log_dir} exists and is not empty; its metrics.csv will be replaced.",
                stacklevel=3,
            )
            if os.path.isfile(self.metrics_file_path):
                os.remove(self.metrics_file_path)
        os.makedirs(log_dir, exist_ok=True)

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Buffer one row (values as numbers, plus the `step` column)."""
        row: dict[str, Any] = {k: to_scalar(v) for k, v in metrics.items()}
        row["step"] = len(self.metrics) if step is None else step
        self.metrics.append(row)

    def log_hparams(self, params: dict[str, Any]) -> None:
        """Merge hyper-parameters and rewrite hparams.yaml."""
        self.hparams.update(params)
        save_hparams_to_yaml(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE), self.hparams)

    def save(self) -> None:
        """Append the buffered rows to metrics.csv (rewriting it under a wider header if needed)."""
        if not self.metrics:
            return
        seen = set(self.metrics_keys)
        new_keys = {k for row in self.metrics for k in row} - seen
        self.metrics_keys = sorted(seen | new_keys)
        exists = os.path.isfile(self.metrics_file_path)
        if new_keys and exists:
            with open(self.metrics_file_path, newline="", encoding="utf-8") as f:
                previous = list(csv.DictReader(f))
            with open(self.metrics_file_path, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(previous)
        with open(self.metrics_file_path, "a" if exists else "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=self.metrics_keys)
            if not exists:
                writer.writeheader()
            writer.writerows(self.metrics)
            f.flush()
        self.metrics = []


class CSVLogger(FolderLogger):
    """Logs metrics to `metrics.csv` and hyper-parameters to `hparams.yaml`, locally.

    Rows are buffered and written every `flush_logs_every_n_steps` logging calls, at each epoch end
    (`save`) and when the run ends or fails (`finalize`).
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        save_dir: str | os.PathLike[str],
        name: str | None = "lightning_logs",
        version: int | str | None = None,
        prefix: str = "",
        flush_logs_every_n_steps: int = 100,
    ) -> None:
        if not isinstance(save_dir, (str, os.PathLike)):
            raise TypeError(f"CSVLogger(save_dir=...) must be a folder path, got {type(save_dir).__name__}.")
        if not isinstance(flush_logs_every_n_steps, int) or flush_logs_every_n_steps < 1:
            raise ValueError(
                f"CSVLogger(flush_logs_every_n_steps={flush_logs_every_n_steps!r}) must be an int >= 1."
            )
        self._save_dir = os.fspath(save_dir)
        self._name = name or ""
        self._version = version
        self._prefix = prefix
        self._flush_logs_every_n_steps = flush_logs_every_n_steps
        self._experiment: CSVExperimentWriter | None = None

    @property
    def log_dir(self) -> str:
        return os.path.join(self.root_dir, version_folder(self.version))

    @property
    @rank_zero_experiment
    def experiment(self) -> CSVExperimentWriter:
        """The writer behind this logger, created (with its folder) on first use."""
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = CSVExperimentWriter(self.log_dir)
        return self._experiment

    def log_hyperparams(self, params: dict[str, Any] | Namespace | None = None, *args: Any, **kwargs: Any) -> None:
        self.experiment.log_hparams(convert_params(params))

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        experiment = self.experiment
        experiment.log_metrics(add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR), step)
        effective_step = experiment.metrics[-1]["step"]
        if (effective_step + 1) % self._flush_logs_every_n_steps == 0:
            self.save()

    def save(self) -> None:
        if self._experiment is not None:
            self._experiment.save()

    def finalize(self, status: str) -> None:
        """Write whatever is buffered, whatever the status."""
        self.save()


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
