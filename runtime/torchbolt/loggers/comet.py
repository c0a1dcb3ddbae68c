"""CometLogger: metrics, hyper-parameters and the model graph to Comet (`comet_ml`, optional)."""

from __future__ import annotations

import logging
import os
from argparse import Namespace
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from torchbolt.loggers.logger import Logger, convert_params, rank_zero_experiment
from torchbolt.loggers.mlflow import require

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

_RENAMED = {"experiment_name": "name", "project_name": "project", "offline": "online", "save_dir": "offline_directory"}


class CometLogger(Logger):
    """Logs to a Comet experiment started with `comet_ml.start` (`mode`: "get_or_create", "get" or
    "create"; `online=False` keeps it local in `offline_directory`). Other keyword arguments go to
    `comet_ml.ExperimentConfig`."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        workspace: str | None = None,
        project: str | None = None,
        experiment_key: str | None = None,
        mode: Literal["get_or_create", "get", "create"] | None = None,
        online: bool | None = None,
        prefix: str | None = None,
        **kwargs: Any,
    ) -> None:
        require("comet_ml", "CometLogger", "comet-ml")
        for old, new in _RENAMED.items():
            if old not in kwargs:
                continue
            log.warning("The parameter `%s` is deprecated, please use `%s` instead.", old, new)
            value = kwargs.pop(old)
            if old == "project_name":
                project = project if project is not None else value
            elif old == "offline":
                online = online if online is not None else not value
            else:
                kwargs.setdefault(new, value)
        self._api_key = api_key
        self._experiment: Any = None
        self._workspace = workspace
        self._mode = mode
        self._online = online
        self._project_name = project
        self._experiment_key = experiment_key
        self._prefix = prefix
        self._kwargs = kwargs
        # torch auto-logging would duplicate what the Trainer logs
        os.environ["COMET_DISABLE_AUTO_LOGGING"] = "1"
        import comet_ml

        config = dict(kwargs)
        if online is False:
            config["disabled"] = True
        self._comet_config = comet_ml.ExperimentConfig(**config)
        self._create_experiment()

    def _create_experiment(self) -> None:
        import comet_ml

        self._experiment = comet_ml.start(
            api_key=self._api_key, workspace=self._workspace, project=self._project_name,
            experiment_key=self._experiment_key, mode=self._mode, online=self._online,
            experiment_config=self._comet_config,
        )
        if self._experiment is None:
            raise RuntimeError("Failed to create Comet experiment.")
        self._experiment_key = self._experiment.get_key()
        self._project_name = self._experiment.project_name
        self._experiment.log_other("Created from", "torchbolt")

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is None:
            self._create_experiment()
        return self._experiment

    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        self.experiment.log_parameters(convert_params(params), nested_support=True)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        values = {k: (v.detach().cpu().item() if hasattr(v, "detach") else v) for k, v in metrics.items()}
        epoch = values.pop("epoch", None)
        self.experiment.log_metrics(values, step=step, epoch=epoch, prefix=self._prefix)

    def finalize(self, status: str) -> None:
        if self._experiment is not None:
            self._experiment.flush()

    @property
    def save_dir(self) -> str | None:
        return getattr(self._comet_config, "offline_directory", None)

    @property
    def name(self) -> str | None:
        return self._project_name

    @property
    def version(self) -> str | None:
        return self._experiment.get_key() if self._experiment is not None else None

    def log_graph(self, model: nn.Module, input_array: Any = None) -> None:
        if self._experiment is not None:
            self._experiment.set_model_graph(model)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_experiment_key"] = self._experiment.get_key() if self._experiment is not None else None
        state["_experiment"] = None
        return state
