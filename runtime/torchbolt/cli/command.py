"""The `torchbolt` command: run fit/validate/test/predict on a LightningModule from the shell, or `check`.

    torchbolt fit path/to/file.py::Model --data path/to/file.py::Data --trainer.max_epochs 3
    torchbolt fit package.module:Model --model.lr 0.01 --config run.yaml --print-config
    torchbolt lr-find path/to/file.py::Model --lr_find.num_training 50
    torchbolt check src/

The options are parsed by LightningCLI's parser (jsonargparse), built from the signatures of the Trainer,
the model and the datamodule, so this command and `LightningCLI` scripts read the same options and YAML.
`torchbolt --help` and `torchbolt check` never import torch. Configuration mistakes (a missing file or
class, an ambiguous choice, a bad value, a bad --config or --ckpt_path) are one-line errors with exit
status 2; a run that raises prints its traceback and exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import os
import re
import sys
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torchbolt.catalog import REMOVED_TRAINER_ARGS, did_you_mean
from torchbolt.compat.engine import (
    EngineError,
    activate,
    current_engine,
    deactivate,
    engine_mismatch_hint,
    split_engine_option,
)

PROG = "torchbolt"
RUN_COMMANDS = ("fit", "validate", "test", "predict")
#: Tuning commands and the Trainer method whose options they take (the same parser as that command).
TUNE_COMMANDS = {"lr-find": "fit"}
#: `torchbolt lr-find` options (`--lr_find.NAME`): Tuner.lr_find's arguments with its defaults.
LR_FIND_OPTIONS: dict[str, tuple[Any, Any, str]] = {
    "min_lr": (float, 1e-8, "the learning rate the range test starts at"),
    "max_lr": (float, 1.0, "the learning rate it ends at"),
    "num_training": (int, 100, "how many optimizer steps it takes"),
    "mode": (str, "exponential", "how the lr grows: exponential or linear"),
    "early_stop_threshold": (float | None, 4.0, "stop once the loss exceeds this times its best (null: never)"),
}
CONFIG_KEYS = ("seed_everything", "trainer", "model", "data", "ckpt_path", "optimizer", "lr_scheduler",
               "weights_only")
EVENTS_ENV = "TORCHBOLT_EVENTS"
EXIT_USAGE = 2
EXIT_FAILURE = 1


class UsageError(Exception):
    """A configuration mistake: reported as one line, exit status 2."""


# ----------------------------------------------------------------------------------------------------
# Values from text
# ----------------------------------------------------------------------------------------------------
_NONE_WORDS = ("none", "null", "~")
_BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False}


def parse_literal(text: str) -> Any:
    """A command-line value as Python data: None, bool, int, float, a YAML list/dict, else the string."""
    stripped = text.strip()
    low = stripped.lower()
    if low in _NONE_WORDS:
        return None
    if low in _BOOL_WORDS:
        return _BOOL_WORDS[low]
    for convert in (int, float):
        try:
            return convert(stripped)
        except ValueError:
            pass
    if stripped[:1] in ("[", "{"):
        import yaml

        try:
            return yaml.safe_load(stripped)
        except yaml.YAMLError as err:
            raise UsageError(f"{text!r} is not valid YAML: {str(err).splitlines()[0]}") from None
    return text


# ----------------------------------------------------------------------------------------------------
# Targets: path/to/file.py::Class, package.module:Class, or a file with a single candidate class
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """Where a class comes from, as written on the command line."""

    text: str
    module: str | None  # dotted module name, or None for a file
    path: str | None  # file path, or None for a module
    class_name: str | None


def parse_target(text: str) -> Target:
    """Splits 'file.py::Class', 'file.py', 'pkg.mod:Class' or 'pkg.mod' into its parts."""
    if "::" in text:
        path, _, name = text.partition("::")
        return Target(text, None, path, name or None)
    if text.endswith(".py") or os.sep in text or (os.altsep and os.altsep in text) or os.path.isfile(text):
        return Target(text, None, text, None)
    module, _, name = text.partition(":")
    return Target(text, module, None, name or None)


_loaded_files: dict[str, Any] = {}


def _import_file(path: str) -> Any:
    """Imports a Python file as a module, with its folder first on sys.path (so its siblings import)."""
    full = os.path.abspath(path)
    if full in _loaded_files:
        return _loaded_files[full]
    if not os.path.exists(full):
        raise UsageError(f"file not found: {path} (resolved to {full})")
    if not full.endswith(".py"):
        raise UsageError(f"{path} is not a Python file; write TARGET as path/to/file.py::ClassName")
    folder = os.path.dirname(full)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = os.path.splitext(os.path.basename(full))[0]
    existing = sys.modules.get(name)
    if existing is not None and os.path.abspath(getattr(existing, "__file__", "") or "") != full:
        name = f"_torchbolt_target_{name}"  # do not shadow an unrelated module of the same name
    spec = importlib.util.spec_from_file_location(name, full)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    _loaded_files[full] = module
    return module


def _import_module(name: str) -> Any:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name and name.startswith(err.name):
            raise UsageError(f"module not found: {name!r} (write a file as path/to/file.py::ClassName, "
                             "a module as package.module:ClassName)") from None
        raise


def resolve_class(text: str, base_name: str, option: str) -> type:
    """Loads the class a TARGET names; with no class named, the single `base_name` subclass in the file."""
    target = parse_target(text)
    module = _import_file(target.path) if target.path is not None else _import_module(target.module or "")
    from torchbolt.compat.engine import framework

    base = getattr(framework(), base_name)
    where = target.path or target.module
    if target.class_name:
        cls = getattr(module, target.class_name, None)
        if cls is None:
            names = [n for n, v in vars(module).items() if isinstance(v, type)]
            hint = did_you_mean(target.class_name, names)
            raise UsageError(f"{option}: no class {target.class_name!r} in {where}"
                             + (f"; did you mean {hint!r}?" if hint else ""))
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise UsageError(f"{option}: {target.class_name} in {where} is not a {current_engine()} {base_name}"
                             + engine_mismatch_hint(cls, base_name))
        return cls
    candidates = [v for v in vars(module).values()
                  if isinstance(v, type) and issubclass(v, base) and v is not base
                  and v.__module__ == module.__name__]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        foreign = [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module.__name__
                   and engine_mismatch_hint(v, base_name)]
        hint = engine_mismatch_hint(foreign[0], base_name) if foreign else ""
        raise UsageError(f"{option}: no {base_name} subclass defined in {where}{hint}")
    names = ", ".join(sorted(c.__name__ for c in candidates))
    raise UsageError(f"{option}: {where} defines several {base_name} classes ({names}); "
                     f"pick one with {target.path + '::' if target.path else where + ':'}ClassName")


# ----------------------------------------------------------------------------------------------------
# The command line before jsonargparse: TARGET, --data TARGET and --config files
# ----------------------------------------------------------------------------------------------------
_FLAGS = ("--print-config", "-h", "--help")
_VALUED = ("--ckpt_path", "--seed_everything", "--events", "--optimizer", "--lr_scheduler", "--trainer", "--model")
_ALIASES = {"--print_config": "--print-config", "--ckpt-path": "--ckpt_path",
            "--seed-everything": "--seed_everything"}


@dataclass
class _Scan:
    """What the command line names before it is parsed: the classes to load and the config files."""

    target: str | None = None
    data: str | None = None
    configs: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)  # last text given to each --name.x option
    rest: list[str] = field(default_factory=list)  # what jsonargparse parses (config files replaced later)
    help: bool = False


def _scan(argv: Sequence[str]) -> _Scan:
    """Takes the positional TARGET and `--data TARGET` out of `argv` and notes every option's value."""
    scan = _Scan()
    items = list(argv)
    i = 0
    while i < len(items):
        token = _ALIASES.get(items[i].split("=", 1)[0], items[i].split("=", 1)[0])
        inline = items[i].split("=", 1)[1] if "=" in items[i] and items[i].startswith("--") else None
        if not token.startswith("-"):
            if scan.target is not None:
                raise UsageError(f"unexpected argument {items[i]!r}: TARGET is already {scan.target!r} "
                                 "(options look like --trainer.NAME VALUE)")
            scan.target = items[i]
            i += 1
            continue
        if token in _FLAGS:
            scan.help = scan.help or token in ("-h", "--help")
            scan.rest.append(token)
            i += 1
            continue
        if inline is None and (i + 1 >= len(items) or items[i + 1].startswith("--")):
            if token in ("--data", "--config", "-c") or "." in token or token in _VALUED:
                raise UsageError(f"{token} needs a value")
            scan.rest.append(token)  # an unknown flag: the parser reports it with a did-you-mean
            i += 1
            continue
        if inline is None:
            value = items[i + 1]
            i += 2
        else:
            value = inline
            i += 1
        if token == "--data":
            scan.data = value
        elif token in ("--config", "-c"):
            scan.configs.append(value)
            scan.rest.extend(["--config", value])
        else:
            scan.options[token[2:]] = value
            scan.rest.extend([token, value])
    return scan


def _read_config_text(path: str) -> str:
    if not os.path.isfile(path):
        raise UsageError(f"--config: file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise UsageError(f"--config {path}: not a text file (it is not UTF-8); pass a YAML file such as "
                         "the output of --print-config") from None
    except OSError as err:
        raise UsageError(f"--config {path}: cannot read it ({err.strerror})") from None
    if "\x00" in text:
        raise UsageError(f"--config {path}: not a text file (it contains NUL bytes); pass a YAML file such as "
                         "the output of --print-config")
    return text


def _load_config_file(path: str) -> dict[str, Any]:
    """A --config file as a mapping of the command's keys (checked, with did-you-mean on typos)."""
    import yaml

    text = _read_config_text(path)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise UsageError(f"--config {path}: invalid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: expected a mapping with keys {', '.join(CONFIG_KEYS)}")
    for key in data:
        if key not in CONFIG_KEYS:
            hint = did_you_mean(str(key), CONFIG_KEYS)
            raise UsageError(f"--config {path}: unknown key {key!r}"
                             + (f"; did you mean {hint!r}?" if hint else f" (allowed: {', '.join(CONFIG_KEYS)})"))
    return data


def _class_section(value: Any, origin: str) -> tuple[str | None, dict[str, Any]]:
    """(class_path, init_args) from a config 'model'/'data' entry (either form, or a bare mapping)."""
    if value is None:
        return None, {}
    if isinstance(value, str):
        return value, {}
    if not isinstance(value, dict):
        raise UsageError(f"{origin}: expected a mapping, got {type(value).__name__}")
    if "class_path" in value or "init_args" in value:
        extra = set(value) - {"class_path", "init_args"}
        if extra:
            raise UsageError(f"{origin}: unexpected keys {sorted(extra)} next to class_path/init_args")
        args = value.get("init_args") or {}
        if not isinstance(args, dict):
            raise UsageError(f"{origin}.init_args: expected a mapping")
        return value.get("class_path"), dict(args)
    return None, dict(value)


@dataclass
class _Config:
    """A --config file with its model/data class targets split off, as jsonargparse will read it."""

    path: str
    model_target: str | None
    data_target: str | None
    values: dict[str, Any]


def _normalize_config(path: str) -> _Config:
    """Reads a config file; `model`/`data` entries in class_path/init_args form become init arguments
    (the classes themselves are the command's TARGETs, which may be files, not import paths)."""
    data = _load_config_file(path)
    values = {k: v for k, v in data.items() if k not in ("model", "data")}
    trainer = values.get("trainer")
    if trainer is not None and not isinstance(trainer, dict):
        raise UsageError(f"--config {path}: 'trainer' must be a mapping of Trainer arguments")
    for name in trainer or {}:
        problem = _unknown_trainer_arg(str(name))
        if problem:
            raise UsageError(problem.replace(f"--trainer.{name}", f"--config {path}: trainer.{name}"))
    model_target, model_args = _class_section(data.get("model"), f"--config {path}: model")
    data_target, data_args = _class_section(data.get("data"), f"--config {path}: data")
    if model_args:
        values["model"] = model_args
    if data_args:
        values["data"] = data_args
    return _Config(path, model_target, data_target, values)


def _trainer_parameters() -> dict[str, inspect.Parameter]:
    from torchbolt.trainer.trainer import Trainer

    return {name: p for name, p in inspect.signature(Trainer.__init__).parameters.items()
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def _unknown_trainer_arg(name: str) -> str | None:
    """The error for a Trainer argument that does not exist (with its 2.x replacement or a did-you-mean)."""
    known = _trainer_parameters()
    if name in known:
        return None
    removed = REMOVED_TRAINER_ARGS.get(name)
    if removed is not None:
        return (f"--trainer.{name}: Trainer({name}=...) was removed in Lightning {removed.removed_in}; "
                f"{removed.replacement}")
    hint = did_you_mean(name, known)
    return f"--trainer.{name}: Trainer has no argument {name!r}" + (
        f"; did you mean --trainer.{hint}?" if hint else " (see --help for the list)")


def _check_option_names(scan: _Scan, model_cls: type | None, data_cls: type | None) -> None:
    """Unknown --trainer.X/--model.X/--data.X names, reported with a did-you-mean before parsing (the
    parser would otherwise accept an unambiguous prefix such as --trainer.max_epoch)."""
    for option in scan.options:
        section, _, name = option.partition(".")
        if not name:
            continue
        name = name.split(".", 1)[0]
        if section == "trainer":
            problem = _unknown_trainer_arg(name)
            if problem:
                raise UsageError(problem)
        elif section == "lr_find":
            if name not in LR_FIND_OPTIONS:
                hint = did_you_mean(name, LR_FIND_OPTIONS)
                raise UsageError(f"--lr_find.{name}: Tuner.lr_find has no option {name!r}"
                                 + (f"; did you mean --lr_find.{hint}?" if hint else
                                    f" (its options: {', '.join(LR_FIND_OPTIONS)})"))
        elif section in ("model", "data"):
            cls = model_cls if section == "model" else data_cls
            if cls is None:
                raise UsageError("--data.* options need a DataModule: pass --data TARGET")
            params = inspect.signature(cls.__init__).parameters
            if any(p.kind is p.VAR_KEYWORD for p in params.values()) or name in params:
                continue
            names = [n for n in params if n != "self"]
            hint = did_you_mean(name, names)
            raise UsageError(f"--{section}.{name}: {cls.__name__} has no argument {name!r}"
                             + (f"; did you mean {hint!r}?" if hint else f" (its arguments: "
                                                                          f"{', '.join(names) or 'none'})"))


# ----------------------------------------------------------------------------------------------------
# The parser: LightningCLI's, with the command's extras (--events, --print-config)
# ----------------------------------------------------------------------------------------------------
class _Printed(Exception):
    """Raised after --print-config has printed: nothing is built or run."""


def _command_cli_class() -> type:
    """LightningCLI specialised for the `torchbolt` command (defined on demand: it imports torch). Under
    `--engine lightning` it derives from the real Lightning's LightningCLI, so that run is Lightning's."""
    if current_engine() == "lightning":
        from torchbolt.compat.engine import framework

        LightningCLI = importlib.import_module(f"{framework().__name__}.cli").LightningCLI  # noqa: N806
    else:
        from torchbolt.cli.lightning_cli import LightningCLI

    class CommandCLI(LightningCLI):  # type: ignore[valid-type,misc]
        """The `torchbolt` command: LightningCLI plus --events, --print-config and one-line errors."""

        def __init__(self, command: str, targets: dict[str, str | None], action: str | None = None,
                     **kwargs: Any) -> None:
            self.command = command
            self.action = action or command  # `lr-find` parses as `fit`, then tunes instead of fitting
            self.targets = targets
            self.result: Any = None
            super().__init__(**kwargs)

        def subcommands(self) -> dict[str, set[str]]:  # type: ignore[override]
            # Only the command being run: building each subcommand's parser from the signatures costs time.
            return {self.command: LightningCLI.subcommands()[self.command]}

        def _current_config(self) -> Any:
            sub = self.config.get("subcommand")
            return self.config[sub] if sub else self.config

        def add_arguments_to_parser(self, parser: Any) -> None:
            parser.add_argument("--events", type=str | None, default=None, metavar="TARGET",
                                help=f"stream run events as JSON lines to a file or fd:N (default: ${EVENTS_ENV})")
            parser.add_argument("--print-config", dest="print_only", action="store_true",
                                help="print the resolved configuration as YAML and exit (feed it back "
                                     "with --config)")
            if self.action == "lr-find":
                for name, (kind, default, text) in LR_FIND_OPTIONS.items():
                    parser.add_argument(f"--lr_find.{name}", type=kind, default=default,
                                        help=f"Tuner.lr_find: {text}")

        def _parse_ckpt_path(self) -> None:
            from torchbolt.checkpoint import CheckpointError

            sub = self.config.get("subcommand")
            _check_ckpt_path(self.config[sub].get("ckpt_path") if sub else None)
            try:
                super()._parse_ckpt_path()
            except CheckpointError as err:
                raise UsageError(f"--ckpt_path: {' '.join(str(err).split())}") from None

        def _set_seed(self) -> None:
            if not self._current_config().get("print_only"):  # printing the config seeds nothing
                super()._set_seed()

        def before_instantiate_classes(self) -> None:
            if self._current_config().get("print_only"):
                sys.stdout.write(self.printable_config())
                raise _Printed

        def printable_config(self) -> str:
            """The resolved run as YAML, model and data in class_path/init_args form with their TARGETs."""
            import yaml

            sub = self._current_config().clone()
            for key in ("config", "print_only", "events", "__path__"):
                if key in sub:
                    del sub[key]
            data = yaml.safe_load(self._parser(self.subcommand).dump(sub, skip_unset=False,
                                                                     skip_validation=True)) or {}
            out: dict[str, Any] = {"seed_everything": data.pop("seed_everything", None),
                                   "trainer": data.pop("trainer", {})}
            for key in ("model", "data"):
                args = data.pop(key, None)
                out[key] = ({"class_path": self.targets[key], "init_args": args or {}}
                            if self.targets[key] else None)
            out["ckpt_path"] = data.pop("ckpt_path", None)
            out.update({k: v for k, v in data.items() if v is not None})
            return yaml.safe_dump(out, sort_keys=False, default_flow_style=False)

        def instantiate_trainer(self, **kwargs: Any) -> Any:
            from torchbolt.utilities.exceptions import MisconfigurationException

            events = self._current_config().get("events") or os.environ.get(EVENTS_ENV) or None
            if events:
                from torchbolt.callbacks.event_stream import EventStreamCallback
                from torchbolt.compat.engine import callback_for_engine

                try:
                    self.trainer_defaults["callbacks"] = [callback_for_engine(
                        EventStreamCallback(events, target_name=self.targets["model"] or ""))]
                except (OSError, ValueError) as err:
                    raise UsageError(f"--events {events}: {err}") from None
            try:
                with warnings.catch_warnings():
                    if self.command != "fit":
                        # Only fit has epochs; the "max_epochs was not set" notice would be noise here.
                        warnings.filterwarnings("ignore", message="`max_epochs` was not set")
                    return super().instantiate_trainer(**kwargs)
            except (ValueError, TypeError, MisconfigurationException) as err:
                # The Trainer checks its arguments; its message names the argument and the fix.
                raise UsageError(" ".join(str(err).split())) from None

        def _run_subcommand(self, subcommand: str) -> Any:
            if self.action == "lr-find":
                self.result = self._lr_find()
                return self.result
            self.result = super()._run_subcommand(subcommand)
            if subcommand == "fit":
                print(_fit_summary(self.trainer))
            elif subcommand == "predict" and self.result is not None:
                result = self.result
                batches = result if result and not isinstance(result[0], list) else [b for r in result for b in r]
                print(f"Predicted {len(batches)} batches.")
            return self.result

        def _lr_find(self) -> Any:
            """`Tuner(trainer).lr_find(model, datamodule=...)` with the --lr_find.* options; prints the
            suggestion. The model is not changed (update_attr=False): the result is what matters."""
            from torchbolt.compat.engine import framework

            section = self._current_config().get("lr_find")
            values = section.as_dict() if hasattr(section, "as_dict") else dict(section or {})
            options = {name: values.get(name, default) for name, (_, default, _) in LR_FIND_OPTIONS.items()}
            if options["mode"] not in ("exponential", "linear"):
                raise UsageError(f"--lr_find.mode: {options['mode']!r} is not a mode (use exponential or linear)")
            tuner_cls = importlib.import_module(f"{framework().__name__}.tuner").Tuner
            result = tuner_cls(self.trainer).lr_find(self.model, datamodule=self.datamodule, update_attr=False,
                                                     **options)
            if result is None:  # fast_dev_run: the Tuner skips the search
                print("Learning rate finder skipped (fast_dev_run).")
                return None
            suggestion = result.suggestion()
            summary = os.environ.get(LR_FIND_SUMMARY_ENV)
            if summary and not hasattr(result, "write_summary"):  # --engine lightning: write it here
                _write_lr_find_summary(summary, result, suggestion)
            points = len(result.results.get("lr", []))
            print(f"Suggested learning rate: {suggestion} ({points} points)" if suggestion is not None
                  else f"No learning rate suggested: {points} points are too few (raise --lr_find.num_training "
                       "or give more training batches).")
            return result

    return CommandCLI


#: Where the runtime writes the lr_find summary (torchbolt.tuner.lr_finder.SUMMARY_ENV; not imported here:
#: that module imports torch).
LR_FIND_SUMMARY_ENV = "TORCHBOLT_LR_FIND_SUMMARY"


def _write_lr_find_summary(path: str, result: Any, suggestion: float | None) -> None:
    """The summary torchbolt's finder writes itself, for a result of another engine (Lightning's)."""
    import json

    data = {"suggested_lr": suggestion, "mode": getattr(result, "mode", None),
            "lr": [float(x) for x in result.results.get("lr", [])],
            "loss": [float(x) for x in result.results.get("loss", [])]}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f)


_CKPT_WORDS = ("best", "last", "hpc", "registry")


def _check_ckpt_path(path: Any) -> None:
    """A --ckpt_path that is not a keyword must be a readable checkpoint file (checked before the run)."""
    if path is None or (isinstance(path, str) and (path in _CKPT_WORDS or path.startswith("registry:"))):
        return
    text = os.fspath(path)
    if "://" in text:
        return  # a remote URL: the loader reports problems with it
    if not os.path.exists(text):
        raise UsageError(f"--ckpt_path: file not found: {text} (pass a .ckpt file, 'best' or 'last')")
    if not os.path.isfile(text):
        raise UsageError(f"--ckpt_path: {text} is not a file (pass a .ckpt file, 'best' or 'last')")
    with open(text, "rb") as f:
        head = f.read(4)
    # torch.save writes a zip archive (PK..), older files a pickle (0x80 protocol byte).
    if not (head.startswith(b"PK") or head[:1] == b"\x80"):
        raise UsageError(f"--ckpt_path: {text} is not a checkpoint (not written by torch.save / "
                         "trainer.save_checkpoint)")


_KEY_RE = re.compile(r'[Kk]ey "([\w.\-]+)"')


def _translate_parse_error(message: str, scan: _Scan, classes: dict[str, type | None]) -> str:
    """jsonargparse's multi-line message as one line that names the option, the value and what it takes."""
    first = message.strip().splitlines()[0] if message.strip() else message
    low = first.lower()
    if low.startswith("unrecognized arguments:"):
        token = first.split(":", 1)[1].split()[0]
        hint = did_you_mean(token.split("=", 1)[0], ["--data", "--config", "--print-config", "--events",
                                                     "--ckpt_path", "--seed_everything"])
        return (f"unrecognized argument {token!r}" + (f"; did you mean {hint!r}?" if hint else "")
                + " (options look like --trainer.NAME VALUE, --model.NAME VALUE)")
    match = _KEY_RE.search(first)
    if match is None:
        return " ".join(message.split())
    key = match.group(1)
    section, _, name = key.partition(".")
    if "is required" in low:
        cls = classes.get(section)
        owner = cls.__name__ if cls is not None else section
        return f"{owner} needs a value for {name!r}: pass --{key} VALUE (or set it in --config)"
    expects = _expected_type(message)
    value = scan.options.get(key)
    shown = repr(value) if value is not None else "the value from --config"
    if section == "trainer":
        what = f"a valid value for Trainer({name}=...)"
    else:
        what = f"a valid {name or key}"
    return f"--{key}: {shown} is not {what}" + (f" (expects {expects})" if expects else "")


def _expected_type(message: str) -> str:
    """The accepted types named in a jsonargparse message ('int or None'), else ''."""
    names = re.findall(r"Expected a <class '([\w.]+)'>", message)
    names = [("None" if n == "NoneType" else n.rsplit(".", 1)[-1]) for n in dict.fromkeys(names)]
    return " or ".join(names)


def _command_usage(command: str) -> tuple[str, str]:
    """(usage, description) of `torchbolt <command> --help`."""
    if command == "lr-find":
        usage = (f"{PROG} lr-find TARGET [--data TARGET] [--config FILE] [--events TARGET] "
                 "[--lr_find.ARG VALUE ...] [--trainer.ARG VALUE ...] [--model.ARG VALUE ...]")
        description = (
            "Run the learning-rate range test (Tuner.lr_find) on a LightningModule and print the suggested "
            "learning rate. TARGET, --data, --config, --trainer.* and --model.* are those of `fit`; "
            "--lr_find.min_lr/max_lr/num_training/mode/early_stop_threshold are Tuner.lr_find's arguments. "
            f"With ${LR_FIND_SUMMARY_ENV} set, the result is also written there as JSON.")
        return usage, description
    usage = (f"{PROG} {command} TARGET [--data TARGET] [--config FILE] [--print-config] [--events TARGET]\n"
             f"{' ' * len(f'usage: {PROG} {command} ')}[--engine torchbolt|lightning] [--ckpt_path PATH] "
             "[--seed_everything INT] "
             "[--trainer.ARG VALUE ...] [--model.ARG VALUE ...] [--data.ARG VALUE ...]")
    description = (
        f"Run Trainer.{command} on a LightningModule. TARGET is path/to/file.py::ClassName or "
        "package.module:ClassName; with no class named, the single LightningModule (for --data: "
        "LightningDataModule) in the file. Options come from the signatures of the Trainer, the model and "
        "the datamodule (the parser of LightningCLI). Precedence: defaults < --config files (in order) < "
        "command-line options.")
    return usage, description


def run_command(command: str, argv: Sequence[str]) -> Any:
    """Parses `torchbolt <command> argv` and runs it (or prints the config); returns the CommandCLI."""
    scan = _scan(argv)
    configs = [_normalize_config(path) for path in scan.configs]
    model_target = scan.target or next((c.model_target for c in reversed(configs) if c.model_target), None)
    data_target = scan.data or next((c.data_target for c in reversed(configs) if c.data_target), None)
    if not model_target and not scan.help:
        raise UsageError(f"missing TARGET: write `{PROG} {command} path/to/file.py::ClassName` "
                         "(or set model.class_path in --config)")
    model_cls = resolve_class(model_target, "LightningModule", "TARGET") if model_target else None
    data_cls = resolve_class(data_target, "LightningDataModule", "--data") if data_target else None
    _check_option_names(scan, model_cls, data_cls)

    import yaml

    # Config files reach jsonargparse as YAML text, in their command-line order, after normalisation.
    rest = list(scan.rest)
    by_path = iter(configs)
    for i, token in enumerate(rest):
        if token == "--config" and i + 1 < len(rest):
            rest[i + 1] = yaml.safe_dump(next(by_path).values, sort_keys=False)
    cli_class = _command_cli_class()
    usage, description = _command_usage(command)
    parse_as = TUNE_COMMANDS.get(command, command)
    # Python hides DeprecationWarning outside __main__; torchbolt's (1.x hooks it still runs, with their
    # 2.x replacement) are meant to be read, so show each once.
    warnings.filterwarnings("default", category=DeprecationWarning, module=r"torchbolt(\.|$)")
    try:
        return cli_class(parse_as, {"model": model_target, "data": data_target}, action=command,
                         model_class=model_cls, datamodule_class=data_cls, save_config_callback=None,
                         seed_everything_default=None, args=[parse_as, *rest],
                         parser_kwargs={"prog": PROG, "exit_on_error": False,
                                        parse_as: {"usage": usage, "description": description,
                                                   "exit_on_error": False}})
    except _Printed:
        return None
    except argparse.ArgumentError as err:
        raise UsageError(_translate_parse_error(str(err), scan, {"model": model_cls, "data": data_cls})) from None


def _fit_summary(trainer: Any) -> str:
    """One closing line after fit: how far it got and where its logs and checkpoint are."""
    parts = [f"Finished fit: {trainer.current_epoch} epoch(s), {trainer.global_step} step(s)."]
    if trainer.loggers:
        parts.append(f"Logs: {trainer.log_dir}.")
    ckpt = getattr(trainer.checkpoint_callback, "best_model_path", "") or getattr(
        trainer.checkpoint_callback, "last_model_path", "")
    if ckpt:
        parts.append(f"Checkpoint: {ckpt}.")
    return " ".join(parts)



# ----------------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------------
_TOP_HELP = f"""usage: {PROG} {{fit,validate,test,predict}} TARGET [options]
       {PROG} lr-find TARGET [options]
       {PROG} run [--engine ENGINE] SCRIPT [ARGS ...]
       {PROG} check [PATHS ...] [options]

torchbolt: a fast training runtime with Lightning 2.x's API.

commands:
  fit        train a LightningModule (Trainer.fit)
  validate   run the validation loop (Trainer.validate)
  test       run the test loop (Trainer.test)
  predict    run the predict loop (Trainer.predict)
  lr-find    find a learning rate (Tuner.lr_find) with fit's options plus --lr_find.*
  run        run a Lightning script's __main__ on torchbolt (its Lightning imports resolve to torchbolt)
  check      lint Lightning code for 1.x leftovers and mistakes (no torch import)

Run `{PROG} COMMAND --help` for the options of a command (fit lists every Trainer argument).
`--engine lightning` (fit/validate/test/predict/run) runs on the real Lightning instead, when installed.
"""


def _check(argv: list[str]) -> int:
    try:
        from torchbolt_lsp.lint.cli import main as check_main
    except ImportError as err:
        print(f"{PROG} check: error: the checker (torchbolt_lsp.lint.cli) is not available: {err}. "
              "Reinstall torchbolt with its language-server package (pip install -e .).", file=sys.stderr)
        return EXIT_USAGE
    return int(check_main(argv) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (0 ok, 1 run failed, 2 usage error)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_TOP_HELP, end="")
        return 0 if args else EXIT_USAGE
    if args[0] in ("-V", "--version"):
        from torchbolt import __version__

        print(f"{PROG} {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command == "check":
        return _check(rest)
    if command == "run":
        from torchbolt.compat.script import main as run_main

        return run_main(rest)
    if command not in RUN_COMMANDS and command not in TUNE_COMMANDS:
        hint = did_you_mean(command, (*RUN_COMMANDS, *TUNE_COMMANDS, "run", "check"))
        print(f"{PROG}: error: unknown command {command!r}"
              + (f"; did you mean {hint!r}?" if hint else f" (use one of {', '.join(RUN_COMMANDS)}, run, check)"),
              file=sys.stderr)
        return EXIT_USAGE
    try:
        # Lightning imports in the user's code resolve to torchbolt (or stay Lightning's with --engine
        # lightning): decided before the target file is imported.
        engine, rest = split_engine_option(rest)
        activate(engine)
    except (EngineError, RuntimeError) as err:
        print(f"{PROG} {command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _run_command(command, rest)
    finally:
        deactivate()


def _run_command(command: str, rest: list[str]) -> int:
    """One fit/validate/test/predict/lr-find command after the engine is chosen; returns the exit status."""
    try:
        run_command(command, rest)
    except UsageError as err:
        print(f"{PROG} {command}: error: {err}", file=sys.stderr)
        _report_to_event_stream(rest, err)
        return EXIT_USAGE
    except SystemExit as err:  # argparse --help, or the Trainer's graceful stop after a signal
        code = err.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_FAILURE)
    except KeyboardInterrupt:
        print(f"{PROG} {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        traceback.print_exc()
        print(f"{PROG} {command}: error: the run failed (traceback above)", file=sys.stderr)
        _report_to_event_stream(rest, err)
        return EXIT_FAILURE
    return 0


def _report_to_event_stream(argv: Sequence[str], err: BaseException) -> None:
    """Send a failure to the run's event stream (--events / $TORCHBOLT_EVENTS), also when it happened
    before the Trainer existed (import error, bad argument), so editors can show it at the line (L3)."""
    target = os.environ.get(EVENTS_ENV) or None
    for i, token in enumerate(argv):
        if token == "--events" and i + 1 < len(argv):
            target = argv[i + 1]
        elif token.startswith("--events="):
            target = token.split("=", 1)[1]
    if not target:
        return
    from torchbolt.callbacks.event_stream import report_failure

    report_failure(target, err, target_name=next((a for a in argv if not a.startswith("-")), ""))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
