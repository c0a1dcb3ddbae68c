"""The catalog must describe the runtime exactly: hook signatures, Trainer/callback/logger arguments."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest
from torchbolt import catalog
from torchbolt.catalog import REQUIRED

_KIND = {
    inspect.Parameter.VAR_POSITIONAL: "var_positional",
    inspect.Parameter.VAR_KEYWORD: "var_keyword",
}


def _owner_class(owner: str) -> type:
    from torchbolt.callbacks.callback import Callback
    from torchbolt.core.datamodule import LightningDataModule
    from torchbolt.core.module import LightningModule

    return {"module": LightningModule, "datamodule": LightningDataModule, "callback": Callback}[owner]


def _hooks() -> list[catalog.Hook]:
    return [*catalog.MODULE_HOOKS, *catalog.DATAMODULE_HOOKS, *catalog.CALLBACK_HOOKS]


@pytest.mark.parametrize("hook", _hooks(), ids=lambda h: f"{h.owner}.{h.name}")
def test_catalog_hook_exists_with_same_parameters(hook: catalog.Hook) -> None:
    cls = _owner_class(hook.owner)
    fn = getattr(cls, hook.name, None)
    assert callable(fn), f"{cls.__name__} has no {hook.name}"
    params = list(inspect.signature(fn).parameters.values())[1:]  # without self
    runtime = [(p.name, _KIND.get(p.kind, "positional"),
                None if p.default is inspect.Parameter.empty else repr(p.default)) for p in params]
    if hook.owner == "module" and hook.name in ("training_step", "validation_step", "test_step", "predict_step"):
        # Lightning declares step methods as (*args, **kwargs); the catalog documents the user form.
        assert [r[1] for r in runtime] == ["var_positional", "var_keyword"]
        return
    expected = [(p.name, p.kind, p.default) for p in hook.params]
    assert runtime == expected


@pytest.mark.parametrize("owner", ["module", "datamodule", "callback"])
def test_every_overridable_hook_of_the_runtime_is_in_the_catalog(owner: str) -> None:
    # Hooks the runtime dispatches by name must all be catalogued (so the server can complete them).
    names = set(catalog.HOOKS_BY_OWNER[owner])
    for point, spec in catalog.HOOK_POINTS.items():
        if owner == "module" and spec.module:
            assert point in names
        if owner == "callback" and spec.callbacks:
            assert point in names
        if owner == "datamodule" and spec.datamodule:
            assert point in names


def test_trainer_arguments_match_the_catalog() -> None:
    from torchbolt.trainer.trainer import Trainer

    params = {
        name: p for name, p in inspect.signature(Trainer.__init__).parameters.items()
        if name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD
    }
    assert [a.name for a in catalog.TRAINER_ARGS] == list(params)
    for arg in catalog.TRAINER_ARGS:
        assert params[arg.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert params[arg.name].default == arg.default, arg.name


def test_trainer_arguments_match_lightning_names_and_defaults() -> None:
    lightning = pytest.importorskip("lightning.pytorch")
    theirs = {n: p.default for n, p in inspect.signature(lightning.Trainer.__init__).parameters.items() if n != "self"}
    for arg in catalog.TRAINER_ARGS:
        assert arg.name in theirs, arg.name
        assert theirs[arg.name] == arg.default, arg.name


@pytest.mark.parametrize("spec", [*catalog.CALLBACKS, *catalog.LOGGERS, *catalog.PROFILER_CLASSES,
                                  *catalog.TUNER_METHODS], ids=lambda s: s.name)
def test_callback_and_logger_arguments_match_their_constructors(spec: catalog.CallbackSpec) -> None:
    module = importlib.import_module(spec.module)
    if spec in catalog.TUNER_METHODS:
        fn, skipped = getattr(module.Tuner, spec.name), {"self", "model"}
    else:
        cls = getattr(module, spec.name, None)
        if cls is None:
            pytest.skip(f"{spec.module}.{spec.name} does not exist yet")
        fn, skipped = cls.__init__, {"self"}
    signature = inspect.signature(fn).parameters
    assert spec.extra_kwargs == any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.values()), spec.name
    params = {
        n: p for n, p in signature.items()
        if n not in skipped and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    }
    assert [a.name for a in spec.args] == list(params), spec.name
    for arg in spec.args:
        default = params[arg.name].default
        if arg.default is REQUIRED:
            assert default is inspect.Parameter.empty, arg.name
        elif isinstance(arg.default, str) and not isinstance(default, str) and default is not None:
            # a default the torch-free catalog cannot hold (a function, torch.device, a theme object) is
            # written as its name, its str() or "Class()"
            assert arg.default in (getattr(default, "__name__", None), str(default),
                                   f"{type(default).__name__}()"), arg.name
        else:
            assert default == arg.default, arg.name


def test_log_arguments_match_the_module_methods() -> None:
    from torchbolt.core.module import LightningModule

    for method, args in (("log", catalog.LOG_ARGS), ("log_dict", catalog.LOG_DICT_ARGS)):
        params = list(inspect.signature(getattr(LightningModule, method)).parameters.values())[1:]
        assert [p.name for p in params] == [a.name for a in args]
        for p, a in zip(params, args, strict=True):
            expected = inspect.Parameter.empty if a.default is REQUIRED else a.default
            assert p.default == expected, (method, a.name)


def test_module_members_exist() -> None:
    from torchbolt.core.module import LightningModule

    for member in catalog.MODULE_MEMBERS:
        assert hasattr(LightningModule, member.name), member.name


def test_log_rules_cover_only_known_hooks() -> None:
    known = set(catalog.HOOKS_BY_OWNER["module"]) | set(catalog.HOOKS_BY_OWNER["callback"]) | {
        "clip_gradients", *catalog.REMOVED_HOOKS}
    assert set(catalog.LOG_RULES) <= known
    assert not set(catalog.LOG_RULES) & catalog.LOG_FORBIDDEN


@pytest.mark.parametrize("statement", ["import torchbolt.catalog", "import torchbolt",
                                        "import torchbolt.callbacks", "import torchbolt.utilities"])
def test_imports_do_not_import_torch(statement: str) -> None:
    code = f"import sys; {statement}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_lazy_attributes_resolve() -> None:
    code = ("import sys, torchbolt; assert 'torch' not in sys.modules; "
            "from torchbolt import Trainer, LightningModule, LightningDataModule, Callback, seed_everything; "
            "print(Trainer.__module__, LightningModule.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["torchbolt.trainer.trainer", "torchbolt.core.module"]
