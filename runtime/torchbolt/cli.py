"""The `torchbolt` command: run fit/validate/test/predict on a LightningModule from the shell, or `check`.

    torchbolt fit path/to/file.py::Model --data path/to/file.py::Data --trainer.max_epochs 3
    torchbolt fit package.module:Model --model.lr 0.01 --config run.yaml --print-config
    torchbolt check src/

Trainer options, their types and defaults come from the torch-free catalog, so `torchbolt --help`,
`torchbolt fit --help` and `torchbolt check` never import torch. Configuration mistakes (a missing
file or class, an ambiguous choice, a bad value) are one-line errors with exit status 2; a run that
raises prints its traceback and exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
import typing
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torchbolt.catalog import (
    CALLBACKS_BY_NAME,
    LOGGERS,
    REMOVED_TRAINER_ARGS,
    TRAINER_ARGS,
    TRAINER_ARGS_BY_NAME,
    Arg,
    did_you_mean,
)
from torchbolt.compat.engine import (
    ENGINES,
    EngineError,
    activate,
    current_engine,
    deactivate,
    engine_mismatch_hint,
    split_engine_option,
)

PROG = "torchbolt"
RUN_COMMANDS = ("fit", "validate", "test", "predict")
CONFIG_KEYS = ("seed_everything", "trainer", "model", "data", "ckpt_path")
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


_KIND_CHECKS: dict[str, Any] = {
    "none": lambda v: v is None,
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, float),
    "str": lambda v: isinstance(v, str),
    "path": lambda v: isinstance(v, str),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
    "timedelta": lambda v: isinstance(v, (str, dict)),
    "object": lambda v: isinstance(v, (dict, list, str)),
    "callable": lambda v: isinstance(v, str),
}


def coerce_trainer_value(arg: Arg, value: Any, origin: str) -> Any:
    """Checks a parsed value against the catalog's accepted kinds for `arg` (converting text when needed)."""
    if isinstance(value, str) and arg.types and not any(k in arg.types for k in ("str", "path", "object")):
        value = parse_literal(value)  # values from YAML files arrive typed; text from the shell does not
    if any(_KIND_CHECKS[k](value) for k in arg.types if k in _KIND_CHECKS):
        return value
    if isinstance(value, (bool, int, float)) and "str" in arg.types and not isinstance(value, bool):
        return str(value)
    if isinstance(value, bool) and "str" in arg.types and "bool" not in arg.types:
        return str(value).lower()
    allowed = ", ".join(arg.types)
    choices = f" (e.g. {', '.join(repr(c) for c in arg.choices)})" if arg.choices else ""
    raise UsageError(f"{origin}: {value!r} is not a valid value for Trainer({arg.name}=...); "
                     f"accepted: {allowed}{choices}")


def _kinds_of(annotation: Any) -> tuple[type, ...]:
    """The plain classes an init annotation accepts (Optional/Union unpacked); empty when unknown."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or (origin is not None and origin.__class__.__name__ == "UnionType"):
        return tuple(k for a in typing.get_args(annotation) for k in _kinds_of(a))
    if annotation is type(None):
        return (type(None),)
    if origin in (list, tuple, dict):
        return (origin,)
    if isinstance(annotation, type):
        return (annotation,)
    return ()


def coerce_init_value(param: inspect.Parameter, annotation: Any, value: Any, origin: str) -> Any:
    """Fits a parsed value to a constructor parameter's annotation or default (int→float, text→str)."""
    kinds = _kinds_of(annotation)
    if not kinds and param.default is not inspect.Parameter.empty and param.default is not None:
        kinds = (type(param.default),)
    if not kinds or any(isinstance(value, k) and not (k is int and isinstance(value, bool)) for k in kinds):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and float in kinds:
        return float(value)
    if str in kinds and not isinstance(value, (list, dict)):
        return value if isinstance(value, str) else str(value)
    if tuple in kinds and isinstance(value, list):
        return tuple(value)
    names = " or ".join(getattr(k, "__name__", str(k)) for k in kinds)
    raise UsageError(f"{origin}: {value!r} is not a valid {param.name} (expects {names})")


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
# Constructor arguments of the model/datamodule
# ----------------------------------------------------------------------------------------------------
def init_params(cls: type) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    """(named parameters, resolved annotations, accepts **kwargs) of `cls.__init__`."""
    sig = inspect.signature(cls.__init__)
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable string annotations: fall back to defaults' types
        hints = {}
    params = {}
    var_kw = False
    for i, (name, p) in enumerate(sig.parameters.items()):
        if i == 0 and name == "self":
            continue
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind is not p.VAR_POSITIONAL:
            params[name] = p
    return params, hints, var_kw


def resolve_init_args(cls: type, given: dict[str, Any], option: str) -> dict[str, Any]:
    """Every constructor argument of `cls`: defaults overlaid with `given` (checked and coerced)."""
    params, hints, var_kw = init_params(cls)
    out: dict[str, Any] = {}
    for name, value in given.items():
        p = params.get(name)
        if p is None:
            if var_kw:
                out[name] = value
                continue
            hint = did_you_mean(name, params)
            known = ", ".join(params) or "none"
            raise UsageError(f"{option}.{name}: {cls.__name__} has no argument {name!r}"
                             + (f"; did you mean {hint!r}?" if hint else f" (its arguments: {known})"))
        out[name] = coerce_init_value(p, hints.get(name), value, f"{option}.{name}")
    resolved = {}
    for name, p in params.items():
        if name in out:
            resolved[name] = out[name]
        elif p.default is inspect.Parameter.empty:
            raise UsageError(f"{cls.__name__} needs a value for {name!r}: pass {option}.{name} VALUE")
        else:
            resolved[name] = p.default
    resolved.update({k: v for k, v in out.items() if k not in params})
    return resolved


# ----------------------------------------------------------------------------------------------------
# The argument parser (torch-free)
# ----------------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of usage + message."""

    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _type_text(arg: Arg) -> str:
    return "|".join(arg.types) if arg.types else "value"


def _indent(command: str) -> str:
    return " " * len(f"usage: {PROG} {command} ")


def build_parser(command: str) -> argparse.ArgumentParser:
    """The parser of `torchbolt <command>`; Trainer options are generated from the catalog."""
    parser = _Parser(
        prog=f"{PROG} {command}", allow_abbrev=False,
        usage=f"%(prog)s [TARGET] [--data TARGET] [--config FILE] [--print-config] [--events TARGET]\n"
              f"{_indent(command)}[--ckpt_path PATH] [--seed_everything INT]\n"
              f"{_indent(command)}[--trainer.ARG VALUE ...] [--model.ARG VALUE ...] [--data.ARG VALUE ...]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"Run Trainer.{command} on a LightningModule.\n\n"
                    "TARGET is path/to/file.py::ClassName or package.module:ClassName; with no class\n"
                    "named, the single LightningModule (for --data: LightningDataModule) in the file.\n"
                    "Values are parsed as None/true/false/int/float/[list]/{dict}, else text.\n"
                    "Precedence: defaults < --config file < command-line options.",
        epilog="Model and DataModule constructor arguments: --model.NAME VALUE, --data.NAME VALUE\n"
               "(see `torchbolt " + command + " TARGET --print-config` for the resolved list).",
    )
    parser.add_argument("target", nargs="?", metavar="TARGET", help="the LightningModule to run")
    parser.add_argument("--data", metavar="TARGET", help="a LightningDataModule to take the data from")
    parser.add_argument("--config", metavar="FILE", action="append", default=[],
                        help="YAML file with keys seed_everything, trainer, model, data, ckpt_path "
                             "(repeatable; later files win)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved configuration as YAML and exit")
    parser.add_argument("--engine", choices=ENGINES, default=argparse.SUPPRESS,
                        help="run on torchbolt (default) or on the real Lightning, when installed, to compare")
    parser.add_argument("--events", metavar="TARGET",
                        help=f"stream run events as JSON lines to a file or fd:N (default: ${EVENTS_ENV})")
    parser.add_argument("--ckpt_path", "--ckpt-path", dest="ckpt_path", metavar="PATH", default=argparse.SUPPRESS,
                        help="checkpoint to resume from / evaluate ('best', 'last' or a path)")
    parser.add_argument("--seed_everything", "--seed-everything", dest="seed_everything", metavar="INT",
                        default=argparse.SUPPRESS, help="seed every random generator before building the model")
    group = parser.add_argument_group("Trainer arguments (types and defaults from torchbolt.catalog)")
    for arg in TRAINER_ARGS:
        help_text = f"{arg.doc} [{_type_text(arg)}; default: {arg.default_text()}"
        if arg.effective_default:
            help_text += f", meaning {arg.effective_default}"
        if arg.choices:
            help_text += f"; {'e.g.' if arg.choices_open else 'one of'} " + ", ".join(map(str, arg.choices[:8]))
            help_text += ", ..." if len(arg.choices) > 8 else ""
        help_text += "]"
        group.add_argument(f"--trainer.{arg.name}", dest=f"trainer.{arg.name}", metavar=_type_text(arg).upper(), default=argparse.SUPPRESS, help=help_text.replace("%", "%%"))
    return parser


def _split_dotted(argv: Sequence[str]) -> tuple[list[str], dict[str, dict[str, str]]]:
    """Takes --model.X / --data.X options (space or '=' separated) out of `argv` before argparse sees it.

    Done first so that their values are never mistaken for the positional TARGET; unknown
    --trainer.X options are reported here too, with the catalog's did-you-mean or 1.x replacement.
    """
    found: dict[str, dict[str, str]] = {"model": {}, "data": {}}
    rest: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        token = items[i]
        if token == "--":
            rest.extend(items[i:])
            break
        if token.startswith("--trainer."):
            name = token[len("--trainer."):].split("=", 1)[0]
            if name not in TRAINER_ARGS_BY_NAME:
                raise UsageError(_unknown_trainer_arg(name))
        prefix = next((p for p in found if token.startswith(f"--{p}.")), None)
        if prefix is None:
            rest.append(token)
            i += 1
            continue
        key = token[len(prefix) + 3:]
        if "=" in key:
            key, value = key.split("=", 1)
        else:
            if i + 1 >= len(items):
                raise UsageError(f"{token} needs a value")
            i += 1
            value = items[i]
        if not key.isidentifier():
            raise UsageError(f"{token}: {key!r} is not an argument name")
        found[prefix][key] = value
        i += 1
    return rest, found


def _reject_extra(extra: Sequence[str]) -> None:
    """Reports the first argument argparse did not recognise, with a did-you-mean."""
    if not extra:
        return
    token = extra[0]
    hint = did_you_mean(token.split("=", 1)[0], ["--data", "--config", "--print-config", "--events",
                                                 "--ckpt_path", "--seed_everything"])
    raise UsageError(f"unrecognized argument {token!r}" + (f"; did you mean {hint!r}?" if hint else "")
                     + " (options look like --trainer.NAME VALUE, --model.NAME VALUE)")


def _unknown_trainer_arg(name: str) -> str:
    removed = REMOVED_TRAINER_ARGS.get(name)
    if removed is not None:
        return (f"--trainer.{name}: Trainer({name}=...) was removed in Lightning {removed.removed_in}; "
                f"{removed.replacement}")
    hint = did_you_mean(name, TRAINER_ARGS_BY_NAME)
    return f"--trainer.{name}: Trainer has no argument {name!r}" + (
        f"; did you mean --trainer.{hint}?" if hint else " (see --help for the list)")


# ----------------------------------------------------------------------------------------------------
# Configuration: defaults < config files < command line
# ----------------------------------------------------------------------------------------------------
def _load_config_file(path: str) -> dict[str, Any]:
    import yaml

    if not os.path.isfile(path):
        raise UsageError(f"--config: file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
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
class RunConfig:
    """The resolved run: what `--print-config` prints and what the run uses."""

    command: str
    model_target: str
    model_args: dict[str, Any]
    data_target: str | None
    data_args: dict[str, Any]
    trainer_args: dict[str, Any]  # only the ones set (defaults come from the Trainer itself)
    ckpt_path: str | None
    seed: int | None
    events: str | None
    print_only: bool = False

    def to_dict(self) -> dict[str, Any]:
        trainer = {a.name: (None if a.required else a.default) for a in TRAINER_ARGS}
        trainer.update(self.trainer_args)
        return {
            "seed_everything": self.seed,
            "trainer": trainer,
            "model": {"class_path": self.model_target, "init_args": self.model_args},
            "data": ({"class_path": self.data_target, "init_args": self.data_args}
                     if self.data_target else None),
            "ckpt_path": self.ckpt_path,
        }


def resolve_config(command: str, argv: Sequence[str]) -> RunConfig:
    """Parses `argv` (after the command) into a RunConfig, loading the target classes to check init args."""
    parser = build_parser(command)
    rest, dotted = _split_dotted(argv)
    ns, extra = parser.parse_known_args(rest)
    _reject_extra(extra)
    opts = vars(ns)

    merged: dict[str, Any] = {"trainer": {}, "model": (None, {}), "data": (None, {}), "ckpt_path": None,
                              "seed_everything": None}
    for path in opts["config"]:
        data = _load_config_file(path)
        trainer_part = data.get("trainer") or {}
        if not isinstance(trainer_part, dict):
            raise UsageError(f"--config {path}: 'trainer' must be a mapping of Trainer arguments")
        for name, value in trainer_part.items():
            arg = TRAINER_ARGS_BY_NAME.get(name)
            if arg is None:
                raise UsageError(_unknown_trainer_arg(name).replace(f"--trainer.{name}", f"--config {path}: "
                                                                                      f"trainer.{name}"))
            if value == arg.default and name not in merged["trainer"]:
                continue  # a printed config lists every default; keep only what differs
            merged["trainer"][name] = coerce_trainer_value(arg, value, f"--config {path}: trainer.{name}")
        for section in ("model", "data"):
            if section in data:
                cls_path, args = _class_section(data[section], f"--config {path}: {section}")
                old_path, old_args = merged[section]
                merged[section] = (cls_path or old_path, {**old_args, **args})
        for key in ("ckpt_path", "seed_everything"):
            if key in data:
                merged[key] = data[key]

    for key, value in opts.items():
        if key.startswith("trainer."):
            name = key[len("trainer."):]
            arg = TRAINER_ARGS_BY_NAME[name]
            merged["trainer"][name] = coerce_trainer_value(arg, parse_literal(value) if not _is_texty(arg)
                                                           else _texty(arg, value), f"--trainer.{name}")

    model_target = opts["target"] or merged["model"][0]
    if not model_target:
        raise UsageError(f"missing TARGET: write `{PROG} {command} path/to/file.py::ClassName` "
                         "(or set model.class_path in --config)")
    data_target = opts["data"] or merged["data"][0]
    if dotted["data"] and not data_target:
        raise UsageError("--data.* options need a DataModule: pass --data TARGET")

    model_cls = resolve_class(model_target, "LightningModule", "TARGET")
    model_given = {**merged["model"][1], **{k: parse_literal(v) for k, v in dotted["model"].items()}}
    model_args = resolve_init_args(model_cls, model_given, "--model")
    data_args: dict[str, Any] = {}
    if data_target:
        data_cls = resolve_class(data_target, "LightningDataModule", "--data")
        data_given = {**merged["data"][1], **{k: parse_literal(v) for k, v in dotted["data"].items()}}
        data_args = resolve_init_args(data_cls, data_given, "--data")

    ckpt_path = opts.get("ckpt_path", merged["ckpt_path"])
    seed = opts.get("seed_everything", merged["seed_everything"])
    if seed is not None:
        try:
            seed = int(seed)
        except (TypeError, ValueError):
            raise UsageError(f"--seed_everything: {seed!r} is not an integer") from None
    events = opts["events"] or os.environ.get(EVENTS_ENV) or None
    return RunConfig(command, model_target, model_args, data_target, data_args, merged["trainer"], ckpt_path,
                     seed, events, print_only=bool(opts["print_config"]))


def _is_texty(arg: Arg) -> bool:
    """Args whose values stay text even when they look numeric (a 'DD:HH:MM:SS' or a folder name)."""
    return "path" in arg.types or arg.types == ("str", "none") or arg.name == "max_time"


def _texty(arg: Arg, value: str) -> Any:
    low = value.strip().lower()
    if low in _NONE_WORDS and "none" in arg.types:
        return None
    if value.strip()[:1] == "{" and "dict" in arg.types:
        return parse_literal(value)
    return value


# ----------------------------------------------------------------------------------------------------
# Instantiation and the run (imports torch)
# ----------------------------------------------------------------------------------------------------
def _instantiate(value: Any, origin: str) -> Any:
    """Builds objects from {'class_path': ..., 'init_args': {...}} entries (lists too); other values pass."""
    if isinstance(value, list):
        return [_instantiate(v, f"{origin}[{i}]") for i, v in enumerate(value)]
    if not (isinstance(value, dict) and "class_path" in value):
        return value
    path = value["class_path"]
    spec = CALLBACKS_BY_NAME.get(path) or next((lg for lg in LOGGERS if lg.name == path), None)
    if spec is not None:
        path = f"{spec.module}.{spec.name}"
    module_name, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        raise UsageError(f"{origin}: cannot import class_path {value['class_path']!r}") from None
    return cls(**(value.get("init_args") or {}))


def print_config(config: RunConfig) -> None:
    import yaml

    sys.stdout.write(yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=False))


def run(config: RunConfig) -> Any:
    """Builds the Trainer, model and datamodule from `config` and calls the entry point."""
    from torchbolt.compat.engine import callback_for_engine, framework

    torchbolt = framework()

    if config.seed is not None:
        torchbolt.seed_everything(config.seed)
    trainer_kwargs = {k: _instantiate(v, f"trainer.{k}") for k, v in config.trainer_args.items()}
    if config.events:
        try:
            from torchbolt.callbacks.event_stream import EventStreamCallback
        except ImportError as err:
            raise UsageError(f"--events needs torchbolt.callbacks.event_stream, which failed to import: {err}") from None
        callbacks = trainer_kwargs.get("callbacks") or []
        callbacks = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
        try:
            callbacks.append(callback_for_engine(EventStreamCallback(config.events, target_name=config.model_target)))
        except (OSError, ValueError) as err:
            raise UsageError(f"--events {config.events}: {err}") from None
        trainer_kwargs["callbacks"] = callbacks
    from torchbolt.utilities.exceptions import MisconfigurationException

    try:
        with warnings.catch_warnings():
            if config.command != "fit":
                # Only fit has epochs; the "max_epochs was not set" notice would be noise here.
                warnings.filterwarnings("ignore", message="`max_epochs` was not set")
            trainer = torchbolt.Trainer(**trainer_kwargs)
    except (ValueError, TypeError, MisconfigurationException) as err:
        # The Trainer validates every argument from the catalog; its message names argument and fix.
        raise UsageError(" ".join(str(err).split())) from None
    model_cls = resolve_class(config.model_target, "LightningModule", "TARGET")
    model = model_cls(**config.model_args)
    datamodule = None
    if config.data_target:
        data_cls = resolve_class(config.data_target, "LightningDataModule", "--data")
        datamodule = data_cls(**config.data_args)
    entry = getattr(trainer, config.command)
    kwargs: dict[str, Any] = {"datamodule": datamodule}
    if config.ckpt_path is not None:
        kwargs["ckpt_path"] = config.ckpt_path
    if config.command == "fit":
        result = entry(model, **kwargs)
        print(_fit_summary(trainer))
        return result
    result = entry(model, **kwargs)
    if config.command == "predict" and result is not None:
        batches = result if result and not isinstance(result[0], list) else [b for r in result for b in r]
        print(f"Predicted {len(batches)} batches.")
    return result


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
       {PROG} run [--engine ENGINE] SCRIPT [ARGS ...]
       {PROG} check [PATHS ...] [options]

torchbolt: a fast training runtime with Lightning 2.x's API.

commands:
  fit        train a LightningModule (Trainer.fit)
  validate   run the validation loop (Trainer.validate)
  test       run the test loop (Trainer.test)
  predict    run the predict loop (Trainer.predict)
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
    if command not in RUN_COMMANDS:
        hint = did_you_mean(command, (*RUN_COMMANDS, "run", "check"))
        print(f"{PROG}: error: unknown command {command!r}"
              + (f"; did you mean {hint!r}?" if hint else f" (use one of {', '.join(RUN_COMMANDS)}, run, check)"),
              file=sys.stderr)
        return EXIT_USAGE
    # Python hides DeprecationWarning outside __main__; torchbolt's (1.x hooks it still runs, with their
    # 2.x replacement) are meant to be read, so show each once.
    warnings.filterwarnings("default", category=DeprecationWarning, module=r"torchbolt(\.|$)")
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
    try:
        config = resolve_config(command, rest)
        if config.print_only:
            print_config(config)
            return 0
        run(config)
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
