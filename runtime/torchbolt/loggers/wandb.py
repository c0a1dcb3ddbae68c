"""WandbLogger: metrics, hyper-parameters and checkpoints to Weights & Biases (`wandb`, optional)."""

from __future__ import annotations

import os
import warnings
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from torchbolt.loggers.logger import Logger, add_prefix, convert_params, rank_zero_experiment
from torchbolt.loggers.mlflow import require, scan_checkpoints
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torch import nn

    from torchbolt.callbacks.checkpoint import Checkpoint


class WandbLogger(Logger):
    """Logs to a W&B run, created by `wandb.init` on first use (or `experiment`, an existing run).

    `offline=True` writes the run locally (sync it later with `wandb sync`); it cannot upload models.
    `log_model=True` uploads the checkpoints as "model" artifacts at the end of training (after each save
    when `save_top_k=-1`), `"all"` after every save. Extra keyword arguments go to `wandb.init`.
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        name: str | None = None,
        save_dir: str | os.PathLike[str] = ".",
        version: str | None = None,
        offline: bool = False,
        dir: str | os.PathLike[str] | None = None,  # noqa: A002 - Lightning's (and wandb's) name
        id: str | None = None,  # noqa: A002
        anonymous: bool | None = None,
        project: str | None = None,
        log_model: Literal["all"] | bool = False,
        experiment: Any = None,
        prefix: str = "",
        checkpoint_name: str | None = None,
        add_file_policy: Literal["mutable", "immutable"] = "mutable",
        **kwargs: Any,
    ) -> None:
        require("wandb", "WandbLogger", "wandb")
        if offline and log_model:
            raise MisconfigurationException(
                f"Providing log_model={log_model} and offline={offline} is an invalid configuration since model "
                "checkpoints cannot be uploaded in offline mode.\nHint: Set `offline=False` to log your model."
            )
        self._offline = offline
        self._log_model = log_model
        self._prefix = prefix
        self._experiment = experiment
        self._logged_model_time: dict[str, float] = {}
        self._checkpoint_callbacks: dict[int, Any] = {}
        self.add_file_policy = add_file_policy
        folder = os.fspath(save_dir) if save_dir is not None else (os.fspath(dir) if dir is not None else None)
        self._wandb_init: dict[str, Any] = {
            "name": name, "project": project or os.environ.get("WANDB_PROJECT", "lightning_logs"), "dir": folder,
            "id": version or id, "resume": "allow", "anonymous": "allow" if anonymous else None, **kwargs,
        }
        self._project = self._wandb_init.get("project")
        self._save_dir = self._wandb_init.get("dir")
        self._name = self._wandb_init.get("name")
        self._id = self._wandb_init.get("id")
        self._checkpoint_name = checkpoint_name

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The W&B run (created on first access)."""
        if self._experiment is None:
            import wandb

            if self._offline:
                os.environ["WANDB_MODE"] = "offline"
            if wandb.run is not None:
                warnings.warn(
                    "There is a wandb run already in progress and newly created instances of `WandbLogger` will reuse "
                    "this run. If this is not desired, call `wandb.finish()` before instantiating `WandbLogger`.",
                    stacklevel=2,
                )
                self._experiment = wandb.run
            else:
                self._experiment = wandb.init(**self._wandb_init)
                define = getattr(self._experiment, "define_metric", None)
                if callable(define):
                    if self._wandb_init.get("sync_tensorboard"):
                        define("*", step_metric="global_step")
                    else:
                        define("trainer/global_step")
                        define("*", step_metric="trainer/global_step", step_sync=True)
        return self._experiment

    def watch(self, model: nn.Module, log: str | None = "gradients", log_freq: int = 100, log_graph: bool = True) -> None:
        """Log the model's gradients/parameters with `wandb.watch`."""
        self.experiment.watch(model, log=log, log_freq=log_freq, log_graph=log_graph)

    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        plain = {}
        for key, value in convert_params(params).items():
            # callables become their names; values W&B's config cannot hold become strings
            value = getattr(value, "__name__", value) if callable(value) else value
            plain[key] = value if isinstance(value, (int, float, str, bool, type(None), list, dict)) else str(value)
        self.experiment.config.update(plain, allow_val_change=True)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        metrics = add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR)
        if step is not None and not self._wandb_init.get("sync_tensorboard"):
            self.experiment.log({**metrics, "trainer/global_step": step})
        else:
            self.experiment.log(dict(metrics))

    def log_table(self, key: str, columns: list[str] | None = None, data: list[list[Any]] | None = None,
                  dataframe: Any = None, step: int | None = None) -> None:
        import wandb

        self.log_metrics({key: wandb.Table(columns=columns, data=data, dataframe=dataframe)}, step)

    def log_text(self, key: str, columns: list[str] | None = None, data: list[list[str]] | None = None,
                 dataframe: Any = None, step: int | None = None) -> None:
        self.log_table(key, columns, data, dataframe, step)

    def log_image(self, key: str, images: list[Any], step: int | None = None, **kwargs: Any) -> None:
        import wandb

        self.log_metrics({key: self._media(wandb.Image, images, kwargs, "images")}, step)

    def log_audio(self, key: str, audios: list[Any], step: int | None = None, **kwargs: Any) -> None:
        import wandb

        self.log_metrics({key: self._media(wandb.Audio, audios, kwargs, "audios")}, step)

    def log_video(self, key: str, videos: list[Any], step: int | None = None, **kwargs: Any) -> None:
        import wandb

        self.log_metrics({key: self._media(wandb.Video, videos, kwargs, "videos")}, step)

    @staticmethod
    def _media(kind: Any, items: list[Any], kwargs: dict[str, list[Any]], what: str) -> list[Any]:
        if not isinstance(items, list):
            raise TypeError(f'Expected a list as "{what}", found {type(items)}')
        for k, v in kwargs.items():
            if len(v) != len(items):
                raise ValueError(f"Expected {len(items)} items but only found {len(v)} for {k}")
        return [kind(item, **{k: kwargs[k][i] for k in kwargs}) for i, item in enumerate(items)]

    @property
    def save_dir(self) -> str | None:
        return self._save_dir

    @property
    def name(self) -> str | None:
        return self._project

    @property
    def version(self) -> str | None:
        return self._experiment.id if self._experiment is not None else self._id

    def after_save_checkpoint(self, checkpoint_callback: Checkpoint) -> None:
        if self._log_model == "all" or (self._log_model is True
                                        and getattr(checkpoint_callback, "save_top_k", None) == -1):
            self._scan_and_log_checkpoints(checkpoint_callback)
        elif self._log_model is True:
            self._checkpoint_callbacks[id(checkpoint_callback)] = checkpoint_callback

    def use_artifact(self, artifact: str, artifact_type: str | None = None) -> Any:
        return self.experiment.use_artifact(artifact, type=artifact_type)

    def finalize(self, status: str) -> None:
        if status != "success" or self._experiment is None:
            return
        for callback in self._checkpoint_callbacks.values():
            self._scan_and_log_checkpoints(callback)

    def _scan_and_log_checkpoints(self, checkpoint_callback: Any) -> None:
        import wandb

        for mtime, path, score, _tag in scan_checkpoints(checkpoint_callback, self._logged_model_time):
            settings = {k: getattr(checkpoint_callback, k) for k in (
                "monitor", "mode", "save_last", "save_top_k", "save_weights_only", "_every_n_train_steps")
                if hasattr(checkpoint_callback, k)}
            metadata = {"score": score.item() if hasattr(score, "item") else score,
                        "original_filename": Path(path).name, type(checkpoint_callback).__name__: settings}
            if not self._checkpoint_name:
                self._checkpoint_name = f"model-{self.experiment.id}"
            artifact = wandb.Artifact(name=self._checkpoint_name, type="model", metadata=metadata)
            artifact.add_file(path, name="model.ckpt", policy=self.add_file_policy)
            aliases = ["latest", "best"] if path == getattr(checkpoint_callback, "best_model_path", None) \
                else ["latest"]
            self.experiment.log_artifact(artifact, aliases=aliases)
            self._logged_model_time[path] = mtime

    def __getstate__(self) -> dict[str, Any]:
        # the live run cannot be pickled; keep its id so a copy can resume it
        state = self.__dict__.copy()
        if self._experiment is not None:
            state["_id"] = getattr(self._experiment, "id", None)
        state["_experiment"] = None
        return state
