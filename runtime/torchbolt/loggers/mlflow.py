"""MLFlowLogger: metrics, hyper-parameters and checkpoints to an MLflow tracking server or a local store.

`mlflow` (or `mlflow-skinny`) is optional: it is needed only when an MLFlowLogger is constructed.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import tempfile
import time
import warnings
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from torchbolt.loggers.logger import Logger, add_prefix, convert_params, flatten_dict, rank_zero_experiment

if TYPE_CHECKING:
    from torchbolt.callbacks.checkpoint import Checkpoint

log = logging.getLogger(__name__)

LOCAL_FILE_URI_PREFIX = "file:"


def require(module: str, logger: str, package: str) -> None:
    """Raise a clear install hint when an optional logger's package is missing (at construction, not mid-run)."""
    if module not in sys.modules and importlib.util.find_spec(module) is None:
        raise ModuleNotFoundError(
            f"{logger} needs the `{package}` package, which is not installed. Install it with `pip install "
            f"{package}` (or choose another logger)."
        )


def scan_checkpoints(checkpoint_callback: Any, logged: Mapping[str, float]) -> list[tuple[float, str, Any, str]]:
    """Checkpoints of `checkpoint_callback` not logged yet (or rewritten since): (mtime, path, score, tag),
    oldest first. `logged` maps paths to the mtime they had when logged."""
    found: dict[str, tuple[Any, str]] = {}
    last = getattr(checkpoint_callback, "last_model_path", "")
    if last:
        found[last] = (getattr(checkpoint_callback, "current_score", None), "latest")
    best = getattr(checkpoint_callback, "best_model_path", "")
    if best:
        found[best] = (getattr(checkpoint_callback, "best_model_score", None), "best")
    for path, score in (getattr(checkpoint_callback, "best_k_models", None) or {}).items():
        found[path] = (score, "best_k")
    rows = []
    for path, (score, tag) in found.items():
        if not os.path.isfile(path):
            continue
        mtime = os.path.getmtime(path)
        if path not in logged or logged[path] < mtime:
            rows.append((mtime, path, score, tag))
    return sorted(rows)


class MLFlowLogger(Logger):
    """Logs to MLflow: an experiment (`experiment_name`) and a run in it, created on first use.

    `tracking_uri` defaults to `$MLFLOW_TRACKING_URI` or a local file store `file:<save_dir>` (for which
    `MLFLOW_ALLOW_FILE_STORE=true` is set, as MLflow 3 asks). Pass
    `run_id` to keep logging into an existing run (resume). `log_model=True` uploads the checkpoints of
    ModelCheckpoint when training ends (right after each save when `save_top_k=-1`), `"all"` after every
    save, each under an artifact folder named after the file, with `metadata.yaml` and `aliases.txt`.
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        experiment_name: str = "lightning_logs",
        run_name: str | None = None,
        tracking_uri: str | None = os.getenv("MLFLOW_TRACKING_URI"),  # noqa: B008 - Lightning's default
        tags: dict[str, Any] | None = None,
        save_dir: str | None = "./mlruns",
        log_model: Literal[True, False, "all"] = False,
        prefix: str = "",
        artifact_location: str | None = None,
        run_id: str | None = None,
        synchronous: bool | None = None,
    ) -> None:
        require("mlflow", "MLFlowLogger", "mlflow")
        if log_model not in (True, False, "all"):
            raise ValueError(f"MLFlowLogger(log_model={log_model!r}) must be True, False or 'all'.")
        if not tracking_uri:
            tracking_uri = f"{LOCAL_FILE_URI_PREFIX}{save_dir}"
        if tracking_uri.startswith(LOCAL_FILE_URI_PREFIX):
            # MLflow 3 refuses file stores unless this opt-out is set; a `file:` URI (the default) asks for one
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self._experiment_name = experiment_name
        self._experiment_id: str | None = None
        self._tracking_uri = tracking_uri
        self._run_name = run_name
        self._run_id = run_id
        self.tags = tags
        self._log_model = log_model
        self._logged_model_time: dict[str, float] = {}
        self._checkpoint_callback: Any = None
        self._prefix = prefix
        self._artifact_location = artifact_location
        self._log_batch_kwargs = {} if synchronous is None else {"synchronous": synchronous}
        self._initialized = False
        from mlflow.tracking import MlflowClient

        self._mlflow_client = MlflowClient(tracking_uri)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The `MlflowClient`; the experiment and the run are created (or found) on first access."""
        if self._initialized:
            return self._mlflow_client
        import mlflow

        mlflow.set_tracking_uri(self._tracking_uri)
        client = self._mlflow_client
        if self._run_id is not None:
            self._experiment_id = client.get_run(self._run_id).info.experiment_id
            self._initialized = True
            return client
        if self._experiment_id is None:
            found = client.get_experiment_by_name(self._experiment_name)
            if found is not None and found.lifecycle_stage != "deleted":
                self._experiment_id = found.experiment_id
            else:
                log.info("Experiment with name %s not found. Creating it.", self._experiment_name)
                self._experiment_id = client.create_experiment(name=self._experiment_name,
                                                               artifact_location=self._artifact_location)
        tags = dict(self.tags or {})
        if self._run_name is not None:
            from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

            if MLFLOW_RUN_NAME in tags:
                warnings.warn(f"The tag {MLFLOW_RUN_NAME} is found in tags. The value will be overridden by "
                              f"{self._run_name}.", stacklevel=2)
            tags[MLFLOW_RUN_NAME] = self._run_name
        self.tags = tags
        try:
            from mlflow.tracking.context.registry import resolve_tags
        except ImportError:  # older mlflow
            def resolve_tags(t: Any = None) -> Any:
                return t
        run = client.create_run(experiment_id=self._experiment_id, tags=resolve_tags(tags))
        self._run_id = run.info.run_id
        self._initialized = True
        return client

    @property
    def run_id(self) -> str | None:
        _ = self.experiment
        return self._run_id

    @property
    def experiment_id(self) -> str | None:
        _ = self.experiment
        return self._experiment_id

    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        from mlflow.entities import Param

        flat = flatten_dict(convert_params(params))
        # MLflow caps parameter values (250 characters in older servers) and batches at 100 parameters
        items = [Param(key=k, value=str(v)[:250]) for k, v in flat.items()]
        for i in range(0, len(items), 100):
            self.experiment.log_batch(run_id=self.run_id, params=items[i:i + 100], **self._log_batch_kwargs)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        metrics = add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR)
        stamp = int(time.time() * 1000)
        items = []
        for key, value in metrics.items():
            if isinstance(value, str):
                log.warning("Discarding metric with string value %s=%s.", key, value)
                continue
            clean = re.sub(r"[^a-zA-Z0-9_/. -]+", "", key)
            if clean != key:
                warnings.warn(f"MLFlow only allows '_', '/', '.' and ' ' special characters in metric name. "
                              f"Replacing {key} with {clean}.", RuntimeWarning, stacklevel=2)
            items.append(Metric(key=clean, value=float(value), timestamp=stamp, step=step or 0))
        self.experiment.log_batch(run_id=self.run_id, metrics=items, **self._log_batch_kwargs)

    def finalize(self, status: str = "success") -> None:
        if not self._initialized:
            return
        status = {"success": "FINISHED", "finished": "FINISHED", "failed": "FAILED"}.get(status, status)
        if self._checkpoint_callback is not None:
            self._scan_and_log_checkpoints(self._checkpoint_callback)
        if self.experiment.get_run(self.run_id):
            self.experiment.set_terminated(self.run_id, status)

    @property
    def save_dir(self) -> str | None:
        """The local store's folder for a `file:` tracking URI, else None."""
        if self._tracking_uri.startswith(LOCAL_FILE_URI_PREFIX):
            return self._tracking_uri[len(LOCAL_FILE_URI_PREFIX):]
        return None

    @property
    def name(self) -> str | None:
        return self.experiment_id

    @property
    def version(self) -> str | None:
        return self.run_id

    def after_save_checkpoint(self, checkpoint_callback: Checkpoint) -> None:
        every_save = self._log_model == "all" or (
            self._log_model is True and getattr(checkpoint_callback, "save_top_k", None) == -1)
        if every_save:
            self._scan_and_log_checkpoints(checkpoint_callback)
        elif self._log_model is True:
            self._checkpoint_callback = checkpoint_callback

    def _scan_and_log_checkpoints(self, checkpoint_callback: Any) -> None:
        for mtime, path, score, _tag in scan_checkpoints(checkpoint_callback, self._logged_model_time):
            settings = {k: getattr(checkpoint_callback, k) for k in (
                "monitor", "mode", "save_last", "save_top_k", "save_weights_only", "_every_n_train_steps",
                "_every_n_val_epochs") if hasattr(checkpoint_callback, k)}
            metadata = {"score": score.item() if hasattr(score, "item") else score,
                        "original_filename": Path(path).name, "Checkpoint": settings}
            aliases = ["latest", "best"] if path == getattr(checkpoint_callback, "best_model_path", None) \
                else ["latest"]
            folder = Path(path).stem
            self.experiment.log_artifact(self._run_id, path, folder)
            with tempfile.TemporaryDirectory() as tmp:
                Path(tmp, "metadata.yaml").write_text(yaml.dump(metadata, default_flow_style=False))
                Path(tmp, "aliases.txt").write_text(str(aliases))
                self.experiment.log_artifacts(self._run_id, tmp, folder)
            self._logged_model_time[path] = mtime
