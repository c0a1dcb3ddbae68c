"""`LightningCLI`: build a Trainer, a LightningModule and a DataModule from the command line and YAML files.

Built on jsonargparse, so the options come from the classes' own signatures and type hints:

    cli = LightningCLI(MyModel, MyData)          # python train.py fit --trainer.max_epochs 3 --config a.yaml

Subcommands `fit`, `validate`, `test` and `predict` call the Trainer method of that name; `run=False` only
builds the objects. `--optimizer`/`--lr_scheduler` choose the optimizer and scheduler from the command line
when the model does not pick them itself.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable
from functools import partial, update_wrapper
from types import MethodType
from typing import Any

import torch
from jsonargparse import ActionConfigFile, ArgumentParser, Namespace
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

import torchbolt.callbacks as _callbacks
import torchbolt.loggers  # noqa: F401  (short logger names on the command line resolve once imported)
from torchbolt.callbacks.callback import Callback
from torchbolt.core.datamodule import LightningDataModule
from torchbolt.core.module import LightningModule
from torchbolt.trainer.dispatch import is_overridden
from torchbolt.trainer.trainer import Trainer
from torchbolt.utilities.exceptions import MisconfigurationException
from torchbolt.utilities.seed import seed_everything

for _name in _callbacks.__all__:  # `--trainer.callbacks+=EarlyStopping` finds imported subclasses only
    getattr(_callbacks, _name)


class ReduceLROnPlateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
    """torch's ReduceLROnPlateau plus the metric it watches, so it can be chosen from the command line."""

    def __init__(self, optimizer: Optimizer, monitor: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(optimizer, *args, **kwargs)
        self.monitor = monitor


ArgsType = list[str] | dict[str, Any] | Namespace | None
OptimizerCallable = Callable[[Iterable], Optimizer]
LRSchedulerCallable = Callable[[Optimizer], LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau]
LRSchedulerTypeTuple = (LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
LRSchedulerTypeUnion = LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau
LRSchedulerType = type[LRScheduler] | type[torch.optim.lr_scheduler.ReduceLROnPlateau]
#: Subcommands and the Trainer-method parameters that are not options (the CLI passes them itself).
SUBCOMMANDS: dict[str, set[str]] = {
    "fit": {"model", "train_dataloaders", "val_dataloaders", "datamodule"},
    "validate": {"model", "dataloaders", "datamodule"},
    "test": {"model", "dataloaders", "datamodule"},
    "predict": {"model", "dataloaders", "datamodule"},
}
_SUBCOMMAND_HELP = {
    "fit": "Train the model (Trainer.fit).",
    "validate": "Run one validation epoch (Trainer.validate).",
    "test": "Run one test epoch (Trainer.test).",
    "predict": "Run predictions (Trainer.predict).",
}


class LightningArgumentParser(ArgumentParser):
    """A jsonargparse parser that knows Lightning classes, optimizers and learning-rate schedulers."""

    def __init__(self, *args: Any, description: str = "torchbolt command line", **kwargs: Any) -> None:
        kwargs.setdefault("env_prefix", "PL")
        kwargs.setdefault("default_env", False)
        super().__init__(*args, description=description, **kwargs)
        #: nested key -> (allowed classes, where to link: "AUTOMATIC" or an init-arg key)
        self._optimizers: dict[str, tuple[Any, str]] = {}
        self._lr_schedulers: dict[str, tuple[Any, str]] = {}
        #: nested keys holding callbacks added with add_lightning_class_args (appended to the Trainer's)
        self.callback_keys: list[str] = []
        self.trainer_defaults: dict[str, Any] = {}

    def add_lightning_class_args(self, lightning_class: Any, nested_key: str, subclass_mode: bool = False,
                                 required: bool = True) -> list[str]:
        """Adds the init arguments of `lightning_class` (a class, a tuple of classes, or a function
        returning one) under `nested_key`; `subclass_mode` takes a class_path choosing any subclass."""
        if callable(lightning_class) and not isinstance(lightning_class, type):
            return self.add_function_arguments(lightning_class, nested_key, fail_untyped=False)
        classes = lightning_class if isinstance(lightning_class, tuple) else (lightning_class,)
        known = (Trainer, LightningModule, LightningDataModule, Callback)
        if not all(isinstance(c, type) and issubclass(c, known) for c in classes):
            names = ", ".join(getattr(c, "__name__", repr(c)) for c in classes)
            raise MisconfigurationException(
                f"add_lightning_class_args({nested_key!r}): {names} is not a Trainer, LightningModule, "
                "LightningDataModule or Callback subclass; use add_class_arguments for other classes")
        if all(issubclass(c, Callback) for c in classes):
            self.callback_keys.append(nested_key)
        if subclass_mode:
            return self.add_subclass_arguments(lightning_class, nested_key, fail_untyped=False, required=required)
        # The Trainer is built last, by instantiate_trainer, so that extra callbacks can join it.
        return self.add_class_arguments(lightning_class, nested_key, fail_untyped=False,
                                        instantiate=not issubclass(classes[0], Trainer), sub_configs=True)

    def add_optimizer_args(self, optimizer_class: Any = (Optimizer,), nested_key: str = "optimizer",
                           link_to: str = "AUTOMATIC") -> None:
        """`--optimizer NAME --optimizer.lr X`: an optimizer chosen on the command line. With
        link_to="AUTOMATIC" the CLI gives the model a configure_optimizers that builds it."""
        classes = optimizer_class if isinstance(optimizer_class, tuple) else (optimizer_class,)
        if not all(isinstance(c, type) and issubclass(c, Optimizer) for c in classes):
            raise MisconfigurationException(f"add_optimizer_args: {optimizer_class} is not an Optimizer class")
        self._add_step_class(classes, nested_key, {"params"}, link_to)
        self._optimizers[nested_key] = (optimizer_class, link_to)

    def add_lr_scheduler_args(self, lr_scheduler_class: Any = LRSchedulerTypeTuple,
                              nested_key: str = "lr_scheduler", link_to: str = "AUTOMATIC") -> None:
        """`--lr_scheduler NAME --lr_scheduler.X V`: a learning-rate scheduler chosen on the command line."""
        classes = lr_scheduler_class if isinstance(lr_scheduler_class, tuple) else (lr_scheduler_class,)
        if not all(isinstance(c, type) and issubclass(c, LRSchedulerTypeTuple) for c in classes):
            raise MisconfigurationException(
                f"add_lr_scheduler_args: {lr_scheduler_class} is not a learning-rate scheduler class")
        self._add_step_class(classes, nested_key, {"optimizer"}, link_to)
        self._lr_schedulers[nested_key] = (lr_scheduler_class, link_to)

    def _add_step_class(self, classes: tuple[type, ...], nested_key: str, skip: set[str], link_to: str) -> None:
        if len(classes) == 1 and not inspect.isabstract(classes[0]) and classes[0] not in (Optimizer, *LRSchedulerTypeTuple):
            self.add_class_arguments(classes[0], nested_key, fail_untyped=False, instantiate=False, skip=skip)
        else:
            # Not instantiated here: the optimizer needs the model's parameters, the scheduler the optimizer.
            self.add_subclass_arguments(classes, nested_key, fail_untyped=False, instantiate=False, skip=skip)


class SaveConfigCallback(Callback):
    """Writes the run's parsed configuration to `config_filename` in the Trainer's log folder at setup.

    An existing file is an error unless `overwrite=True` (it would belong to another run); override
    `save_config` to also send the configuration somewhere else (e.g. a logger).
    """

    def __init__(self, parser: LightningArgumentParser, config: Namespace, config_filename: str = "config.yaml",
                 overwrite: bool = False, multifile: bool = False, save_to_log_dir: bool = True) -> None:
        self.parser = parser
        self.config = config
        self.config_filename = config_filename
        self.overwrite = overwrite
        self.multifile = multifile
        self.save_to_log_dir = save_to_log_dir
        self.already_saved = False
        if not save_to_log_dir and not is_overridden(self, "save_config", SaveConfigCallback):
            raise ValueError("SaveConfigCallback(save_to_log_dir=False) writes nothing unless a subclass "
                             "overrides save_config(trainer, pl_module, stage)")

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.already_saved:
            return
        if self.save_to_log_dir:
            log_dir = trainer.log_dir or trainer.default_root_dir
            path = os.path.join(log_dir, self.config_filename)
            if not self.overwrite and os.path.isfile(path) and trainer.is_global_zero:
                raise RuntimeError(
                    f"SaveConfigCallback: {path} already exists, so this run would overwrite another run's "
                    "configuration. Log to a new folder (a new logger version or default_root_dir), or pass "
                    "save_config_kwargs={'overwrite': True} to LightningCLI to replace it.")
            if trainer.is_global_zero:
                os.makedirs(log_dir, exist_ok=True)
                self.parser.save(self.config, path, skip_unset=False, overwrite=self.overwrite,
                                 multifile=self.multifile)
        if trainer.is_global_zero:
            self.save_config(trainer, pl_module, stage)
        self.already_saved = True

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Called on rank 0 after the file is written; override to log the configuration elsewhere."""


class LightningCLI:
    """Parses the command line (and `--config` YAML files) into a Trainer, a model and a datamodule,
    then runs the chosen subcommand.

    `model_class`/`datamodule_class` None means any subclass chosen with `--model CLASS` (`--data CLASS`),
    as does `subclass_mode_model=True`. `args` replaces `sys.argv[1:]` (a list, or a dict/Namespace of
    already parsed values). Override `add_arguments_to_parser` to add options and links, and the
    `before_*`/`after_*` methods to run code around instantiation and the subcommand.
    """

    def __init__(
        self,
        model_class: type[LightningModule] | Callable[..., LightningModule] | None = None,
        datamodule_class: type[LightningDataModule] | Callable[..., LightningDataModule] | None = None,
        save_config_callback: type[SaveConfigCallback] | None = SaveConfigCallback,
        save_config_kwargs: dict[str, Any] | None = None,
        trainer_class: type[Trainer] | Callable[..., Trainer] = Trainer,
        trainer_defaults: dict[str, Any] | None = None,
        seed_everything_default: bool | int = True,
        parser_kwargs: dict[str, Any] | dict[str, dict[str, Any]] | None = None,
        subclass_mode_model: bool = False,
        subclass_mode_data: bool = False,
        args: ArgsType = None,
        run: bool = True,
        auto_configure_optimizers: bool = True,
        load_from_checkpoint_support: bool = True,
    ) -> None:
        self.save_config_callback = save_config_callback
        self.save_config_kwargs = save_config_kwargs or {}
        self.trainer_class = trainer_class
        self.trainer_defaults = trainer_defaults or {}
        self.seed_everything_default = seed_everything_default
        self.parser_kwargs = parser_kwargs or {}
        self.auto_configure_optimizers = auto_configure_optimizers
        self.load_from_checkpoint_support = load_from_checkpoint_support
        self.model_class = model_class
        self._model_class = model_class or LightningModule
        self.subclass_mode_model = model_class is None or subclass_mode_model
        self.datamodule_class = datamodule_class
        self._datamodule_class = datamodule_class or LightningDataModule
        self.subclass_mode_data = datamodule_class is None or subclass_mode_data

        main_kwargs, subparser_kwargs = self._split_parser_kwargs(self.parser_kwargs)
        self.setup_parser(run, main_kwargs, subparser_kwargs)
        self.parse_arguments(self.parser, args)
        self._parse_ckpt_path()
        self.subcommand: str | None = self.config["subcommand"] if run else None
        self._set_seed()
        self._instantiators = self._module_instantiators() if load_from_checkpoint_support else []
        self.before_instantiate_classes()
        self.instantiate_classes()
        self.after_instantiate_classes()
        if self.subcommand is not None:
            self._run_subcommand(self.subcommand)

    # ---- the parser --------------------------------------------------------------------------------
    @staticmethod
    def _split_parser_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """parser_kwargs: keys named after a subcommand go to that subcommand's parser, the rest to the
        main parser; how errors and environment variables are handled applies to every parser."""
        main = {k: v for k, v in kwargs.items() if k not in SUBCOMMANDS}
        shared = {k: v for k, v in main.items() if k in ("exit_on_error", "parser_mode", "default_env", "env_prefix")}
        return main, {name: {**shared, **kwargs.get(name, {})} for name in SUBCOMMANDS}

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        """A parser with the options every run has (`--config`, `--seed_everything`)."""
        kwargs.setdefault("dump_header", [f"torchbolt LightningCLI ({type(self).__name__})"])
        parser = LightningArgumentParser(**kwargs)
        parser.add_argument("-c", "--config", action=ActionConfigFile,
                            help="A YAML configuration file; repeat it to merge several (later wins).")
        return parser

    def setup_parser(self, add_subcommands: bool, main_kwargs: dict[str, Any],
                     subparser_kwargs: dict[str, Any]) -> None:
        self.parser = self.init_parser(**main_kwargs)
        if add_subcommands:
            self._subcommand_parsers: dict[str, LightningArgumentParser] = {}
            self._add_subcommands(self.parser, **subparser_kwargs)
        else:
            self._add_arguments(self.parser)

    def add_default_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--seed_everything", type=bool | int, default=self.seed_everything_default,
            help="Seed for random, NumPy and torch: an integer, true for a random seed (recorded in the "
                 "saved configuration), false for none.")

    def add_core_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """The Trainer's, the model's and the datamodule's init arguments."""
        parser.add_lightning_class_args(self.trainer_class, "trainer")
        parser.set_defaults({f"trainer.{k}": v for k, v in self.trainer_defaults.items() if k != "callbacks"})
        parser.trainer_defaults = self.trainer_defaults
        parser.add_lightning_class_args(self._model_class, "model", subclass_mode=self.subclass_mode_model)
        if self.datamodule_class is not None or self.subclass_mode_data:
            parser.add_lightning_class_args(self._datamodule_class, "data", subclass_mode=self.subclass_mode_data,
                                            required=self.datamodule_class is not None)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Override to add options, links (`parser.link_arguments`) or optimizer choices."""

    def link_optimizers_and_lr_schedulers(self, parser: LightningArgumentParser) -> None:
        """Links explicit (non-automatic) optimizer/scheduler keys to the init argument they feed."""
        for key, (_, link_to) in {**parser._optimizers, **parser._lr_schedulers}.items():
            if link_to != "AUTOMATIC":
                parser.link_arguments(key, link_to, compute_fn=_as_class_dict)

    def _add_arguments(self, parser: LightningArgumentParser) -> None:
        self.add_default_arguments_to_parser(parser)
        self.add_core_arguments_to_parser(parser)
        self.add_arguments_to_parser(parser)
        if self.auto_configure_optimizers:
            if not parser._optimizers:
                parser.add_optimizer_args((Optimizer,))
            if not parser._lr_schedulers:
                parser.add_lr_scheduler_args(LRSchedulerTypeTuple)
        self.link_optimizers_and_lr_schedulers(parser)

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Subcommand names and the Trainer-method arguments that are not options."""
        return {name: set(skip) for name, skip in SUBCOMMANDS.items()}

    def _add_subcommands(self, parser: LightningArgumentParser, **kwargs: Any) -> None:
        subcommands = parser.add_subcommands(required=True, dest="subcommand")
        for name, skip in self.subcommands().items():
            method = getattr(self.trainer_class, name)
            help_text = _SUBCOMMAND_HELP.get(name) or (inspect.getdoc(method) or "").split("\n")[0]
            sub = self.init_parser(**{"description": help_text, **kwargs.get(name, {})})
            self._add_arguments(sub)
            sub.add_method_arguments(self.trainer_class, name, skip=skip, fail_untyped=False)
            self._subcommand_parsers[name] = sub
            subcommands.add_subcommand(name, sub, help=help_text)

    def _parser(self, subcommand: str | None) -> LightningArgumentParser:
        return self.parser if subcommand is None else self._subcommand_parsers[subcommand]

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        if isinstance(args, (dict, Namespace)):
            self.config = parser.parse_object(args)
        else:
            self.config = parser.parse_args(args)

    def _parse_ckpt_path(self) -> None:
        """With a subcommand's --ckpt_path file, the model is configured from the hyper-parameters saved in
        it (command-line options given after still apply where they were parsed first)."""
        if not self.config.get("subcommand"):
            return
        ckpt_path = self.config[self.config["subcommand"]].get("ckpt_path")
        if not ckpt_path or not os.path.isfile(ckpt_path):
            return
        from torchbolt.checkpoint.io import safe_load

        hparams = dict(safe_load(ckpt_path, map_location="cpu").get("hyper_parameters") or {})
        hparams.pop("_instantiator", None)
        if not hparams:
            return
        if "_class_path" in hparams:
            hparams = {"class_path": hparams.pop("_class_path"), "dict_kwargs": hparams}
        self.config = self.parser.parse_object({self.config["subcommand"]: {"model": hparams}}, self.config)

    # ---- instantiation -----------------------------------------------------------------------------
    def before_instantiate_classes(self) -> None:
        """Runs after parsing, before anything is built."""

    def after_instantiate_classes(self) -> None:
        """Runs once the model, datamodule and Trainer exist, before the subcommand."""

    def _set_seed(self) -> None:
        config = self._current_config()
        seed = config.get("seed_everything")
        if seed is None or seed is False:
            return
        if seed is True:
            # A random seed, written back so the saved config.yaml reproduces this run.
            config["seed_everything"] = seed_everything(None if os.environ.get("PL_GLOBAL_SEED") else
                                                        int.from_bytes(os.urandom(4), "little") % (2**31),
                                                        workers=True)
        else:
            seed_everything(int(seed), workers=True)

    def _current_config(self) -> Namespace:
        return self.config[self.subcommand] if self.subcommand is not None else self.config

    def instantiate_classes(self) -> None:
        """Builds the model, datamodule and Trainer from the parsed configuration."""
        self.config_init = _instantiate(self.parser, self.config, getattr(self, "_instantiators", []))
        self.datamodule = self._get(self.config_init, "data")
        self.model = self._get(self.config_init, "model")
        self._add_configure_optimizers_method_to_model(self.subcommand)
        self.trainer = self.instantiate_trainer()

    def _module_instantiators(self) -> list[tuple[Any, type, bool]]:
        """The model and datamodule are built with their parsed configuration as hyper-parameters, so
        `load_from_checkpoint` can rebuild them (the subclass chosen with --model CLASS included)."""
        return [(_Instantiator(self, key), cls, subclasses)
                for key, cls, subclasses in (("model", self._model_class, self.subclass_mode_model),
                                             ("data", self._datamodule_class, self.subclass_mode_data))
                if isinstance(cls, type)]

    def config_dump_of(self, key: str) -> dict[str, Any]:
        """The parsed configuration of `key` ("model", "data") as plain YAML data."""
        if not hasattr(self, "_config_dump"):
            import yaml

            dump = yaml.safe_load(self.parser.dump(self.config, skip_link_targets=False, skip_unset=False,
                                                   skip_validation=True)) or {}
            self._config_dump = dump.get(self.config["subcommand"], {}) if "subcommand" in self.config else dump
        return self._config_dump.get(key) or {}

    def _get(self, config: Namespace, key: str, default: Any = None) -> Any:
        if self.subcommand is not None:
            return config[self.subcommand].get(key, default)
        return config.get(key, default)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The Trainer from the `trainer` config, `trainer_defaults` and `kwargs`, with the extra callbacks
        (callback keys added with add_lightning_class_args, and SaveConfigCallback)."""
        extra = [self._get(self.config_init, key) for key in self._parser(self.subcommand).callback_keys]
        trainer_ns = self._get(self.config_init, "trainer", default=None)
        given = vars(trainer_ns) if isinstance(trainer_ns, Namespace) else dict(trainer_ns or {})
        trainer_config = {**given, **kwargs}
        return self._instantiate_trainer(trainer_config, extra)

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Trainer:
        given = config.get("callbacks")
        merged: list[Any] = [] if given is None else list(given) if isinstance(given, (list, tuple)) else [given]
        merged.extend(callbacks)
        defaults = self.trainer_defaults.get("callbacks")
        if defaults is not None:
            merged.extend(defaults if isinstance(defaults, (list, tuple)) else [defaults])
        if self.save_config_callback is not None and not config.get("fast_dev_run", False):
            merged.append(self.save_config_callback(
                self._parser(self.subcommand), self.config.get(str(self.subcommand), self.config),
                **self.save_config_kwargs))
        config["callbacks"] = merged
        return self.trainer_class(**config)

    # ---- optimizers from the command line ----------------------------------------------------------
    def _add_configure_optimizers_method_to_model(self, subcommand: str | None) -> None:
        """Gives the model a configure_optimizers building `--optimizer`/`--lr_scheduler`, when given."""
        if not self.auto_configure_optimizers:
            return
        parser = self._parser(subcommand)

        def chosen(table: dict[str, tuple[Any, str]], kind: str) -> tuple[str | None, Any]:
            keys = [k for k, (_, link) in table.items() if link == "AUTOMATIC"]
            if len(keys) > 1:
                raise MisconfigurationException(
                    f"{len(keys)} {kind} keys ({', '.join(keys)}) are linked to configure_optimizers "
                    "automatically; add them with link_to=<init argument> or override configure_optimizers")
            key = keys[0] if keys else None
            return key, (self._get(self.config_init, key) if key else None)

        optimizer_key, optimizer_init = chosen(parser._optimizers, "optimizer")
        scheduler_key, scheduler_init = chosen(parser._lr_schedulers, "lr_scheduler")
        if optimizer_init is None:
            if scheduler_init is not None:
                raise MisconfigurationException(
                    f"--{scheduler_key} was given without --{optimizer_key or 'optimizer'}: a scheduler needs "
                    "an optimizer chosen on the command line too")
            return
        optimizer_init = _as_class_dict(optimizer_init)
        scheduler_init = _as_class_dict(scheduler_init) if scheduler_init is not None else None
        if is_overridden(self.model, "configure_optimizers", LightningModule):
            import warnings

            warnings.warn(f"{type(self.model).__name__}.configure_optimizers is replaced by the optimizer "
                          f"given with --{optimizer_key} (LightningCLI.configure_optimizers)", stacklevel=2)
        fn = partial(self.configure_optimizers, optimizer_init=optimizer_init, lr_scheduler_init=scheduler_init)
        update_wrapper(fn, self.configure_optimizers)
        self.model.configure_optimizers = MethodType(fn, self.model)  # type: ignore[method-assign]

    @staticmethod
    def configure_optimizers(lightning_module: LightningModule, optimizer_init: dict[str, Any],
                             lr_scheduler_init: dict[str, Any] | None = None) -> Any:
        """Builds the chosen optimizer (and scheduler) for `lightning_module`, in configure_optimizers form."""
        optimizer = instantiate_class(lightning_module.parameters(), optimizer_init)
        if lr_scheduler_init is None:
            return optimizer
        scheduler = instantiate_class(optimizer, lr_scheduler_init)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            monitor = getattr(scheduler, "monitor", None)
            if monitor is None:
                raise MisconfigurationException(
                    "ReduceLROnPlateau needs the metric it watches: choose torchbolt.cli.ReduceLROnPlateau "
                    "with --lr_scheduler.monitor NAME")
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": monitor}}
        return [optimizer], [scheduler]

    # ---- running -----------------------------------------------------------------------------------
    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
        """The subcommand's Trainer-method arguments: model, datamodule and the parsed options."""
        kwargs: dict[str, Any] = {"model": self.model}
        if self.datamodule is not None:
            kwargs["datamodule"] = self.datamodule
        config = self.config_init[subcommand]
        for name in inspect.signature(getattr(self.trainer_class, subcommand)).parameters:
            if name in config and name not in kwargs and name not in ("self", "model", "datamodule"):
                kwargs[name] = config[name]
        return kwargs

    def _run_subcommand(self, subcommand: str) -> Any:
        before = getattr(self, f"before_{subcommand}", None)
        if callable(before):
            before()
        result = getattr(self.trainer, subcommand)(**self._prepare_subcommand_kwargs(subcommand))
        after = getattr(self, f"after_{subcommand}", None)
        if callable(after):
            after()
        return result


class _Instantiator:
    """jsonargparse instantiator: builds the model/datamodule with its configuration given as the
    hyper-parameters `save_hyperparameters` records (`_class_path` names the subclass, if chosen)."""

    def __init__(self, cli: LightningCLI, key: str) -> None:
        self.cli = cli
        self.key = key

    def __call__(self, class_type: type, *args: Any, applied_instantiation_links: dict[str, Any] | None = None,
                 **kwargs: Any) -> Any:
        from torchbolt.utilities.hparams import given_hyperparameters

        hparams = dict(self.cli.config_dump_of(self.key))
        if "class_path" in hparams:
            hparams = {"_class_path": hparams["class_path"], **(hparams.get("init_args") or {}),
                       **(hparams.get("dict_kwargs") or {})}
        for key, value in (applied_instantiation_links or {}).items():  # linked values are known only now
            prefix = f"{self.key}."
            if key.startswith(prefix):
                name = key[len(prefix):].removeprefix("init_args.")
                target = hparams
                *parents, last = name.split(".")
                for part in parents:
                    target = target.setdefault(part, {})
                target[last] = value
        with given_hyperparameters(hparams, instantiator="torchbolt.cli.instantiate_module"):
            return class_type(*args, **kwargs)


def instantiate_module(class_type: type, config: dict[str, Any]) -> Any:
    """Rebuilds a module from hyper-parameters LightningCLI recorded (`_class_path` picks the subclass);
    `load_from_checkpoint` calls it for checkpoints written by a LightningCLI run."""
    parser = ArgumentParser(exit_on_error=False)
    if "_class_path" in config:
        parser.add_subclass_arguments(class_type, "module", fail_untyped=False)
        config = {"class_path": config["_class_path"],
                  "dict_kwargs": {k: v for k, v in config.items() if k != "_class_path"}}
    else:
        parser.add_class_arguments(class_type, "module", fail_untyped=False)
    return _instantiate(parser, parser.parse_object({"module": config}), []).module


def _instantiate(parser: ArgumentParser, config: Namespace, instantiators: list[tuple[Any, type, bool]]) -> Namespace:
    """`parser.instantiate(config, instantiators=...)` (jsonargparse >= 4.49), or the older
    add_instantiator + instantiate_classes."""
    if hasattr(parser, "instantiate"):
        return parser.instantiate(config, instantiators=instantiators)
    for instantiator, cls, subclasses in instantiators:
        parser.add_instantiator(instantiator, cls, subclasses=subclasses)
    return parser.instantiate_classes(config)


def _as_class_dict(value: Any) -> Any:
    """A {'class_path', 'init_args'} entry as a plain dict (jsonargparse hands back Namespaces)."""
    if isinstance(value, Namespace):
        value = value.as_dict()
    return value


def instantiate_class(args: Any, init: dict[str, Any]) -> Any:
    """Builds `init['class_path'](*args, **init['init_args'])`; `args` is one value or a tuple."""
    init = _as_class_dict(init)
    module_name, _, class_name = init["class_path"].rpartition(".")
    import importlib

    cls = getattr(importlib.import_module(module_name), class_name)
    positional = args if isinstance(args, tuple) else (args,)
    return cls(*positional, **(init.get("init_args") or {}))
