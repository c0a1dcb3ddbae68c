"""Every Trainer argument is validated: wrong types, out-of-range values, removed and misspelled names."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from torchbolt import catalog
from torchbolt.trainer.args import satisfies
from torchbolt.trainer.trainer import Trainer
from torchbolt.utilities.exceptions import (
    MisconfigurationException,
    TrainerArgumentError,
    UnsupportedHardwareError,
)

QUIET = dict(logger=False, enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False)


def _accepts(types: tuple[str, ...], value: object) -> bool:
    simple = (bool, int, float, str, dict, list, tuple, type(None))
    checks = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, float),
        "str": isinstance(value, str),
        "none": value is None,
        "timedelta": isinstance(value, dt.timedelta),
        "dict": isinstance(value, dict),
        "list": isinstance(value, (list, tuple)),
        "path": isinstance(value, os.PathLike),
        "callable": callable(value),
        "object": not isinstance(value, simple),
    }
    return any(checks[t] for t in types)


_CANDIDATES: list[object] = [1.5, "nonsense", {"a": 1}, 3, [1, 2], True, object()]


def _wrong_type_value(arg: catalog.Arg) -> object:
    for value in _CANDIDATES:
        if not _accepts(arg.types, value):
            return value
    raise AssertionError(f"no wrong-typed candidate for {arg.name}")


@pytest.mark.parametrize("arg", catalog.TRAINER_ARGS, ids=lambda a: a.name)
def test_wrong_type_names_argument_value_and_expected_types(arg: catalog.Arg) -> None:
    value = _wrong_type_value(arg)
    with pytest.raises(TrainerArgumentError) as info:
        Trainer(**{arg.name: value})
    text = str(info.value)
    assert f"{arg.name}=" in text
    assert repr(value)[:20] in text
    assert "expected" in text
    if arg.choices:
        assert "Allowed values" in text


_OUT_OF_RANGE = {
    "num_nodes": 0, "fast_dev_run": -1, "max_epochs": -2, "min_epochs": -1, "max_steps": -2, "min_steps": -1,
    "limit_train_batches": 1.5, "limit_val_batches": -0.5, "limit_test_batches": -1, "limit_predict_batches": 2.5,
    "overfit_batches": 1.5, "val_check_interval": 0, "check_val_every_n_epoch": 0, "num_sanity_val_steps": -2,
    "log_every_n_steps": -1, "accumulate_grad_batches": 0, "gradient_clip_val": -1.0,
    "reload_dataloaders_every_n_epochs": -1,
}


@pytest.mark.parametrize("arg", [a for a in catalog.TRAINER_ARGS if a.constraint and a.name != "devices"],
                         ids=lambda a: a.name)
def test_out_of_range_names_the_constraint(arg: catalog.Arg) -> None:
    value = _OUT_OF_RANGE[arg.name]
    assert not satisfies(arg.constraint, value)
    with pytest.raises(TrainerArgumentError) as info:
        Trainer(**{arg.name: value})
    text = str(info.value)
    assert f"{arg.name}={value!r}" in text
    assert arg.constraint in text


@pytest.mark.parametrize("arg", [a for a in catalog.TRAINER_ARGS if a.choices and not a.choices_open
                                 and a.name not in ("accelerator", "strategy", "precision", "profiler")],
                         ids=lambda a: a.name)
def test_value_outside_choices_lists_the_allowed_values(arg: catalog.Arg) -> None:
    with pytest.raises(TrainerArgumentError) as info:
        Trainer(**{arg.name: "bogus"})
    text = str(info.value)
    assert f"{arg.name}='bogus'" in text
    for choice in arg.choices:
        assert repr(choice) in text


# amp_backend/amp_level map to native AMP with a warning (test_hw_plan.py), like old tutorials expect.
@pytest.mark.parametrize("name", sorted(set(catalog.REMOVED_TRAINER_ARGS) - {"amp_backend", "amp_level"}))
def test_removed_arguments_state_the_replacement(name: str) -> None:
    removed = catalog.REMOVED_TRAINER_ARGS[name]
    with pytest.raises(TypeError) as info:  # TrainerArgumentError is a TypeError, like Python's own
        Trainer(**{name: 1})
    text = str(info.value)
    assert name in text and "removed" in text
    assert removed.replacement in text


@pytest.mark.parametrize(("typo", "suggestion"), [("max_epoch", "max_epochs"), ("gradient_clip", "gradient_clip_val"),
                                                  ("acumulate_grad_batches", "accumulate_grad_batches"),
                                                  ("limit_val_batch", "limit_val_batches")])
def test_misspelled_argument_gets_did_you_mean(typo: str, suggestion: str) -> None:
    with pytest.raises(TrainerArgumentError, match=f"Did you mean `{suggestion}`"):
        Trainer(**{typo: 1})


def test_unknown_argument_without_close_match_lists_valid_names() -> None:
    with pytest.raises(TrainerArgumentError) as info:
        Trainer(zzzqqq=1)
    assert "Did you mean" not in str(info.value)
    assert "max_epochs" in str(info.value)


def test_accepted_values_resolve_to_lightning_defaults() -> None:
    with pytest.warns(UserWarning, match="max_epochs"):
        trainer = Trainer(**QUIET)
    assert trainer.max_epochs == 1000 and trainer.min_epochs == 0
    assert trainer.limit_train_batches == 1.0 and trainer.val_check_interval == 1.0
    assert trainer.num_sanity_val_steps == 2 and trainer.log_every_n_steps == 50
    assert trainer.precision == "32-true"
    assert Trainer(max_steps=10, **QUIET).max_epochs == -1
    assert Trainer(max_epochs=1, min_steps=5, **QUIET).min_epochs == 1
    assert Trainer(max_epochs=1, limit_train_batches=10.0, **QUIET).limit_train_batches == 10
    assert Trainer(max_epochs=1, num_sanity_val_steps=-1, **QUIET).num_sanity_val_steps == float("inf")
    assert Trainer(max_epochs=1, gradient_clip_algorithm="VALUE", **QUIET).gradient_clip_algorithm == "value"


def test_config_is_a_frozen_pydantic_model() -> None:
    trainer = Trainer(max_epochs=3, **QUIET)
    dumped = trainer.config.model_dump()
    assert dumped["max_epochs"] == 3 and set(dumped) == {a.name for a in catalog.TRAINER_ARGS}
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        trainer.config.max_epochs = 4


@pytest.mark.parametrize("kwargs", [
    dict(barebones=True, enable_checkpointing=True), dict(barebones=True, enable_progress_bar=True),
    dict(barebones=True, enable_model_summary=True), dict(barebones=True, logger=True),
    dict(barebones=True, fast_dev_run=True), dict(barebones=True, detect_anomaly=True),
    dict(barebones=True, log_every_n_steps=5), dict(barebones=True, num_sanity_val_steps=2),
])
def test_barebones_conflicts_name_the_conflicting_argument(kwargs: dict[str, object]) -> None:
    other = next(k for k in kwargs if k != "barebones")
    with pytest.raises(TrainerArgumentError, match=other):
        Trainer(**kwargs)


def test_barebones_turns_features_off() -> None:
    trainer = Trainer(barebones=True, max_epochs=1)
    assert trainer.loggers == [] and trainer.callbacks == []
    assert trainer.log_every_n_steps == 0 and trainer.num_sanity_val_steps == 0


def test_max_time_formats() -> None:
    assert Trainer(max_time="00:01:00:00", **QUIET).max_time == dt.timedelta(hours=1)
    assert Trainer(max_time={"minutes": 5}, **QUIET).max_time == dt.timedelta(minutes=5)
    with pytest.raises(TrainerArgumentError, match="DD:HH:MM:SS"):
        Trainer(max_time="1 hour", **QUIET)
    with pytest.raises(TrainerArgumentError, match="timedelta arguments"):
        Trainer(max_time={"fortnights": 1}, **QUIET)


def test_callbacks_and_loggers_must_have_the_right_kind() -> None:
    with pytest.raises(MisconfigurationException, match="not a Callback"):
        Trainer(callbacks=[object()], max_epochs=1)
    with pytest.raises(MisconfigurationException, match="not a logger"):
        Trainer(logger=object(), max_epochs=1)


def _object_arg_cases() -> list[tuple[dict[str, object], str]]:
    from torchbolt.callbacks import ModelCheckpoint, TQDMProgressBar

    return [
        ({"callbacks": [object()]}, "object, which is not a Callback"),
        ({"callbacks": object()}, "object, which is not a Callback"),
        ({"logger": [object()]}, "not a logger"),
        ({"enable_checkpointing": False, "callbacks": [ModelCheckpoint()]}, "enable_checkpointing=False"),
        ({"enable_progress_bar": False, "callbacks": TQDMProgressBar()}, "enable_progress_bar=False"),
        ({"callbacks": [TQDMProgressBar(), TQDMProgressBar()]}, "multiple progress bar"),
    ]


@pytest.mark.parametrize("case", range(6))
def test_object_arguments_are_checked_with_the_other_arguments(case: int) -> None:
    from torchbolt.trainer.args import validate_trainer_args

    kwargs, message = _object_arg_cases()[case]
    values = {a.name: a.default for a in catalog.TRAINER_ARGS}
    with pytest.raises(TrainerArgumentError, match=message):
        validate_trainer_args({**values, **kwargs}, {})  # the same check Trainer(...) runs
    with pytest.raises(TrainerArgumentError, match=message):
        Trainer(max_epochs=1, **kwargs)


def test_manual_optimization_refuses_automatic_clipping_and_accumulation() -> None:
    from torchbolt.trainer.args import check_manual_optimization

    check_manual_optimization(None, 1)
    check_manual_optimization(0.0, 1)
    with pytest.raises(TrainerArgumentError, match="gradient_clip_val=0.5"):
        check_manual_optimization(0.5, 1)
    with pytest.raises(TrainerArgumentError, match="accumulate_grad_batches=4"):
        check_manual_optimization(None, 4)


def test_limits_resolve_to_their_catalog_effective_default() -> None:
    from torchbolt.trainer.args import effective_value

    assert effective_value("limit_train_batches", None) == 1.0
    assert effective_value("limit_val_batches", 10.0) == 10 and isinstance(effective_value("limit_val_batches", 10.0), int)
    assert effective_value("val_check_interval", 0.25) == 0.25


# ------------------------------------------------------------------------------------------------
# Hardware plan: a pure function, tested as a table
# ------------------------------------------------------------------------------------------------
# The table itself (every accelerator/devices/strategy/precision/plugin/environment input and error) is
# tests/runtime/test_hw_plan.py.


def test_trainer_uses_the_plan() -> None:
    with pytest.raises(UnsupportedHardwareError):
        Trainer(accelerator="gpu", max_epochs=1)
    assert Trainer(accelerator="auto", devices="auto", max_epochs=1, **QUIET).precision == "32-true"
    assert type(Trainer(profiler="simple", max_epochs=1, **QUIET).profiler).__name__ == "SimpleProfiler"
    with pytest.raises(MisconfigurationException, match="not a Profiler"):
        Trainer(profiler=object(), max_epochs=1)


@pytest.mark.parametrize("rich", [True, False])
def test_default_callbacks_and_max_time_timer(monkeypatch: pytest.MonkeyPatch, rich: bool) -> None:
    from torchbolt.callbacks import (
        ModelCheckpoint,
        ModelSummary,
        RichModelSummary,
        RichProgressBar,
        Timer,
        TQDMProgressBar,
    )

    # as Lightning: the rich bar and summary when rich is installed, the plain ones when it is not
    monkeypatch.setattr("torchbolt.trainer.trainer._rich_default", lambda: rich)
    trainer = Trainer(max_time={"seconds": 30}, logger=False)
    kinds = [type(cb) for cb in trainer.callbacks]
    assert kinds == ([Timer, RichProgressBar, RichModelSummary, ModelCheckpoint] if rich
                     else [Timer, TQDMProgressBar, ModelSummary, ModelCheckpoint])
    assert trainer.max_epochs == -1  # a Timer bounds the run, so no 1000-epoch default
    assert trainer.checkpoint_callback is trainer.callbacks[-1]
    assert trainer.progress_bar_callback is trainer.callbacks[1]
    with pytest.raises(MisconfigurationException, match="enable_checkpointing=False"):
        Trainer(callbacks=[ModelCheckpoint()], enable_checkpointing=False, max_epochs=1)


def test_environment_variables_give_defaults_and_keywords_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PL_TRAINER_MAX_EPOCHS", "7")
    monkeypatch.setenv("PL_TRAINER_DEFAULT_ROOT_DIR", "/tmp/somewhere")
    trainer = Trainer(**QUIET)
    assert trainer.max_epochs == 7 and trainer.default_root_dir == "/tmp/somewhere"
    assert Trainer(max_epochs=2, **QUIET).max_epochs == 2
    monkeypatch.setenv("PL_TRAINER_MAX_EPOCHS", "many")
    with pytest.raises(TrainerArgumentError, match="max_epochs='many'"):
        Trainer(**QUIET)


def test_positional_arguments_are_validated_like_keywords() -> None:
    with pytest.raises(TrainerArgumentError, match="accelerator=1"):
        Trainer(1)  # type: ignore[misc]
