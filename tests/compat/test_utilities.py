"""torchbolt.utilities and torchbolt.demos at Lightning's paths, checked against Lightning where it has them."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torchbolt
from torch import nn
from torch.utils.data import DataLoader
from torchbolt.utilities.combined_loader import MODES, CombinedLoader

ROOT = Path(__file__).resolve().parents[2]


def _plain(item):  # type: ignore[no-untyped-def]
    batch, batch_idx, dataloader_idx = item
    if isinstance(batch, dict):
        batch = {k: None if v is None else v.tolist() for k, v in batch.items()}
    elif isinstance(batch, (list, tuple)):
        batch = [None if v is None else v.tolist() for v in batch]
    else:
        batch = batch.tolist()
    return batch, batch_idx, dataloader_idx


COLLECTIONS = {
    "dict": lambda: {"a": DataLoader(range(6), batch_size=4), "b": DataLoader(range(15), batch_size=5)},
    "list": lambda: [DataLoader(range(7), batch_size=2), DataLoader(range(3), batch_size=2),
                     DataLoader(range(10), batch_size=3)],
    "single": lambda: DataLoader(range(5), batch_size=2),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", sorted(COLLECTIONS))
@pytest.mark.parametrize("limits", [None, 2, "per-loader"])
def test_combined_loader_matches_lightning(mode: str, shape: str, limits: object) -> None:
    lightning_cl = pytest.importorskip("lightning.pytorch.utilities.combined_loader")
    loaders = COLLECTIONS[shape]()
    if limits == "per-loader":  # 1, 3, 1, ... one limit per loader
        limits = [1 + 2 * (i % 2) for i in range(len(loaders) if isinstance(loaders, (list, dict)) else 1)]
    ours, theirs = CombinedLoader(loaders, mode), lightning_cl.CombinedLoader(loaders, mode)
    ours.limits, theirs.limits = limits, limits
    iter(ours), iter(theirs)
    assert len(ours) == len(theirs)
    assert [_plain(i) for i in ours] == [_plain(i) for i in theirs]
    assert [_plain(i) for i in ours] == [_plain(i) for i in theirs]  # a second pass starts over
    assert ours.sampler.__class__ is theirs.sampler.__class__


def test_combined_loader_errors_and_collections() -> None:
    with pytest.raises(ValueError, match="unsupported mode 'zip'; choose one of min_size, max_size_cycle"):
        CombinedLoader([], "zip")  # type: ignore[arg-type]
    combined = CombinedLoader({"x": range(1, 4), "y": (DataLoader(range(2)), DataLoader(range(4)))}, "max_size")
    with pytest.raises(RuntimeError, match="call iter"):
        len(combined)
    assert len(combined.flattened) == 3
    with pytest.raises(ValueError, match="expected 3 limits"):
        combined.limits = [1, 2]
    iter(combined)
    first = next(combined)[0]
    assert first["x"] == 1 and isinstance(first["y"], tuple) and len(first["y"]) == 2
    combined.flattened = [range(9, 10), DataLoader(range(1)), DataLoader(range(1))]
    assert combined.iterables["x"] == range(9, 10)
    combined.reset()
    assert combined._dataset_length() == 1  # noqa: SLF001 - max of the datasets' lengths


def test_rank_zero_reads_the_launcher_environment_and_is_settable() -> None:
    code = ("from torchbolt.utilities import rank_zero_only, rank_zero_warn\n"
            "import warnings\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    rank_zero_warn('hello')\n"
            "print(rank_zero_only.rank, len(w))\n")
    env_base = {k: v for k, v in os.environ.items()
                if k not in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")}
    env_base["PYTHONPATH"] = str(ROOT / "runtime")
    cases = [({}, "0 1"), ({"LOCAL_RANK": "2", "SLURM_PROCID": "5"}, "2 0"), ({"SLURM_PROCID": "3"}, "3 0"),
             ({"RANK": "0", "LOCAL_RANK": "1"}, "0 1"), ({"JSM_NAMESPACE_RANK": "1"}, "1 0")]
    for extra, expected in cases:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**env_base, **extra}, timeout=60)
        assert out.stdout.split() == expected.split(), (extra, out.stderr)

    from torchbolt.utilities.rank_zero import rank_zero_only

    calls = []
    fn = rank_zero_only(lambda: calls.append(1) or "ran", default="skipped")
    old = rank_zero_only.rank
    try:
        rank_zero_only.rank = 1
        assert fn() == "skipped" and calls == []
        rank_zero_only.rank = 0
        assert fn() == "ran" and calls == [1]
    finally:
        rank_zero_only.rank = old


def test_rank_zero_deprecation_category_and_possible_user_warnings() -> None:
    from torchbolt.utilities import disable_possible_user_warnings
    from torchbolt.utilities.rank_zero import LightningDeprecationWarning, WarningCache, rank_zero_deprecation
    from torchbolt.utilities.warnings import PossibleUserWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rank_zero_deprecation("old")
        cache = WarningCache()
        cache.warn("once")
        cache.warn("once")
        disable_possible_user_warnings()
        warnings.warn("maybe", PossibleUserWarning, stacklevel=1)
    assert [type(w.message) for w in caught] == [LightningDeprecationWarning, UserWarning]


def test_grad_norm_matches_lightning() -> None:
    lightning_grads = pytest.importorskip("lightning.pytorch.utilities.grads")
    from torchbolt.utilities import grad_norm

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    model[2].bias.requires_grad_(False)
    model(torch.randn(5, 3)).sum().backward()
    for norm in (1, 2.0, "inf"):
        ours, theirs = grad_norm(model, norm), lightning_grads.grad_norm(model, norm)
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert torch.allclose(torch.as_tensor(ours[key]), torch.as_tensor(theirs[key]))
    with pytest.raises(ValueError, match="positive number or 'inf'"):
        grad_norm(model, 0)


def test_measure_flops_matches_lightning() -> None:
    fabric_throughput = pytest.importorskip("lightning.fabric.utilities.throughput")
    from torchbolt.utilities import measure_flops

    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
        x = torch.randn(8, 16)
    for loss_fn in (None, lambda y: y.sum()):
        ours = measure_flops(model, lambda: model(x), loss_fn)
        theirs = fabric_throughput.measure_flops(model, lambda: model(x), loss_fn)
        assert ours == theirs > 0


def test_small_helpers() -> None:
    from torchbolt.utilities import is_picklable, move_data_to_device, suggested_max_num_workers
    from torchbolt.utilities.memory import get_model_size_mb, is_oom_error, recursive_detach
    from torchbolt.utilities.parameter_tying import find_shared_parameters, set_shared_parameters

    assert is_picklable({"a": 1}) and not is_picklable(lambda: 0)
    assert move_data_to_device({"x": torch.ones(1)}, "cpu")["x"].device.type == "cpu"
    assert suggested_max_num_workers(1) >= 1
    with pytest.raises(ValueError, match="local_world_size must be >= 1"):
        suggested_max_num_workers(0)
    assert is_oom_error(RuntimeError("CUDA out of memory. Tried to allocate"))
    assert is_oom_error(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried"))
    assert not is_oom_error(RuntimeError("shape mismatch"))
    t = torch.ones(2, requires_grad=True) * 2
    assert not recursive_detach({"t": [t]})["t"][0].requires_grad
    assert get_model_size_mb(nn.Linear(10, 10)) == pytest.approx(110 * 4 / 1e6)
    model = nn.Module()
    model.a, model.b = nn.Linear(2, 2), nn.Linear(2, 2)
    model.b.weight = model.a.weight
    shared = find_shared_parameters(model)
    assert shared == [["a.weight", "b.weight"]]
    model.b.weight = nn.Parameter(torch.zeros(2, 2))
    assert set_shared_parameters(model, shared).b.weight is model.a.weight


def test_types_model_summary_and_imports() -> None:
    from torchbolt.utilities import imports, types
    from torchbolt.utilities.model_summary import ModelSummary, get_human_readable_count, summarize

    assert type(None) in types.STEP_OUTPUT.__args__ and torch.Tensor in types.STEP_OUTPUT.__args__
    assert torch.optim.lr_scheduler.ReduceLROnPlateau in types.LRSchedulerTypeTuple
    assert types.LRSchedulerConfig.__required_keys__ == frozenset({"scheduler"})
    assert imports._TORCH_GREATER_EQUAL_2_8 and imports.package_available("torch")  # noqa: SLF001
    assert not imports.package_available("no_such_package_xyz")
    model = torchbolt.demos.BoringModel()
    summary = summarize(model)
    assert isinstance(summary, ModelSummary)
    assert summary.layer_names == ["layer"] and summary.layer_types == ["Linear"] and summary.param_nums == [66]
    assert summary.total_parameters == summary.trainable_parameters == 66
    assert "Total params" in str(summary) and ModelSummary(model, max_depth=0).layer_names == []
    assert [get_human_readable_count(n) for n in (0, 999, 1234, 2_000_000, 3e9)] == \
        ["0", "999", "1.2 K", "2.0 M", "3.0 B"]


def test_lazy_subpackages_and_not_provided_names() -> None:
    import torchbolt as pl

    assert pl.callbacks.ModelCheckpoint.__name__ == "ModelCheckpoint"
    assert pl.loggers.CSVLogger.__name__ == "CSVLogger" and pl.utilities.CombinedLoader is CombinedLoader
    assert pl.demos.BoringModel.__name__ == "BoringModel"
    for name in ("callbacks", "loggers", "utilities", "demos", "core", "trainer"):
        assert name in dir(pl) or getattr(pl, name)
    with pytest.raises(AttributeError, match=r"DeepSpeedStrategy \(DeepSpeed training\) is not "
                                             r"provided by torchbolt; nearest supported alternative: FSDPStrategy"):
        pl.strategies.DeepSpeedStrategy  # noqa: B018
    assert not hasattr(pl.strategies, "DeepSpeedStrategy")  # probing code keeps working
    assert getattr(pl.loggers, "NeptuneLogger", None) is None
    with pytest.raises(ImportError, match="NeptuneLogger.*CSVLogger or TensorBoardLogger"):
        from torchbolt.loggers import NeptuneLogger  # noqa: F401
    with pytest.raises(AttributeError, match="has no attribute 'ModelCheckpont'"):
        pl.callbacks.ModelCheckpont  # noqa: B018
    assert not hasattr(pl, "no_such_thing")


def test_a_lazy_name_whose_module_fails_to_import_reports_the_failure(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # An AttributeError inside the imported module must surface as that import's failure, not as
    # "X is not provided by torchbolt" (which once hid a typo in the loops behind `torchbolt.Trainer`).
    from torchbolt._lazy import lazy_getattr

    (tmp_path / "broken_impl.py").write_text("import os\nos.no_such_function\nclass Trainer: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict[str, object] = {}
    getter = lazy_getattr("torchbolt", {"Trainer": "broken_impl"}, namespace)
    with pytest.raises(ImportError, match=r"importing broken_impl \(for torchbolt.Trainer\) failed: .*no_such_function"):
        getter("Trainer")
    assert "Trainer" not in namespace


def test_import_torchbolt_stays_torch_free() -> None:
    code = ("import sys, torchbolt, torchbolt.utilities, torchbolt.demos, torchbolt.compat\n"
            "torchbolt.utilities.rank_zero_only\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "runtime")})
    assert out.stdout.strip() == "False", out.stderr


def test_demos_draw_the_same_numbers_as_lightning() -> None:
    lightning_demos = pytest.importorskip("lightning.pytorch.demos.boring_classes")
    from torchbolt.demos import BoringDataModule, BoringModel, DemoModel, RandomDataset

    for ours_cls, theirs_cls in ((BoringModel, lightning_demos.BoringModel),
                                 (DemoModel, lightning_demos.DemoModel)):
        torch.manual_seed(3)
        ours = ours_cls().state_dict()
        torch.manual_seed(3)
        theirs = theirs_cls().state_dict()
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    torch.manual_seed(4)
    a = RandomDataset(32, 8).data
    torch.manual_seed(4)
    assert torch.equal(a, lightning_demos.RandomDataset(32, 8).data)
    torch.manual_seed(5)
    dm = BoringDataModule()
    dm.setup("fit")
    torch.manual_seed(5)
    theirs_dm = lightning_demos.BoringDataModule()
    theirs_dm.setup("fit")
    assert torch.equal(next(iter(dm.train_dataloader())), next(iter(theirs_dm.train_dataloader())))
    assert len(dm.val_dataloader()) == 64


def test_demo_datasets_fail_clearly_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request

    from torchbolt.demos import MNIST, WikiText2

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv("PL_USE_MOCKED_MNIST", "1")
    with pytest.raises(RuntimeError, match=r"WikiText2: could not download .* place it at .*wikitext-2.txt"):
        WikiText2(data_dir=tmp_path)
    with pytest.raises(RuntimeError, match=r"MNIST: could not download .* place it at .*training.pt"):
        MNIST(str(tmp_path), train=True, download=True)
    (tmp_path / "wikitext-2.txt").write_text("a b c a\nb c d\n" * 40)
    data = WikiText2(data_dir=tmp_path, block_size=5, download=False)
    inputs, target = data[0]
    assert data.vocab_size == 5 and torch.equal(inputs[1:], target[:-1])
    model = torchbolt.demos.Transformer(vocab_size=data.vocab_size, ninp=8, nhead=2, nhid=8, nlayers=1)
    assert model(inputs[None], target[None]).shape == (5, data.vocab_size)


def test_isolate_rng_requirements_and_lightning_attr_helpers() -> None:
    import operator
    import random

    from torchbolt.utilities.imports import RequirementCache, compare_version
    from torchbolt.utilities.parsing import lightning_getattr, lightning_hasattr, lightning_setattr
    from torchbolt.utilities.seed import isolate_rng

    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    with isolate_rng():
        torch.rand(5)
        random.random()
    assert torch.equal(torch.rand(1), expected)

    assert RequirementCache("torch>=2.0") and not RequirementCache("torch<1.0")
    assert "no_such_pkg_x is not installed" in str(RequirementCache("no_such_pkg_x>=1"))
    assert "found torch==" in str(RequirementCache("torch>=999"))
    assert compare_version("torch", operator.ge, "2.0") and not compare_version("no_such_pkg_x", operator.ge, "1")

    model = torchbolt.demos.DemoModel(learning_rate=0.5)
    model.save_hyperparameters({"batch_size": 4})
    assert lightning_hasattr(model, "learning_rate") and lightning_getattr(model, "batch_size") == 4
    lightning_setattr(model, "batch_size", 8)
    assert model.hparams["batch_size"] == 8
    with pytest.raises(AttributeError, match="neither an attribute of the model nor in its hparams"):
        lightning_getattr(model, "missing")


def test_combined_loader_views_for_the_trainer() -> None:
    from torchbolt.utilities.combined_loader import TrainBatches, evaluation_loaders

    a, b = DataLoader(range(6), batch_size=4), DataLoader(range(15), batch_size=5)
    view = TrainBatches(CombinedLoader({"a": a, "b": b}, "max_size_cycle"))
    assert len(view) == 3  # known before iterating
    batches = list(view)
    assert len(batches) == 3 and batches[2]["a"].tolist() == [0, 1, 2, 3]
    assert len(TrainBatches(CombinedLoader([a, b], "min_size"))) == 2
    assert evaluation_loaders(CombinedLoader([a, b], "sequential"), "validate") == [a, b]
    with pytest.raises(ValueError, match=r"`trainer.validate` reads a CombinedLoader only in mode='sequential'"):
        evaluation_loaders(CombinedLoader([a, b], "max_size"), "validate")


def test_trainer_reads_combined_loaders() -> None:
    from torch.utils.data import TensorDataset

    class Model(torchbolt.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(2, 1)
            self.seen: list[tuple[str, int]] = []

        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            self.seen.append(("train", batch_idx))
            (x, y), (x2, y2) = batch
            return nn.functional.mse_loss(self.layer(torch.cat([x, x2])), torch.cat([y, y2]))

        def validation_step(self, batch, batch_idx, dataloader_idx=0):  # type: ignore[no-untyped-def]
            self.seen.append((f"val{dataloader_idx}", batch_idx))

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            return torch.optim.SGD(self.parameters(), lr=0.1)

    a = DataLoader(TensorDataset(torch.randn(6, 2), torch.randn(6, 1)), batch_size=2)
    b = DataLoader(TensorDataset(torch.randn(2, 2), torch.randn(2, 1)), batch_size=2)
    trainer = torchbolt.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, num_sanity_val_steps=0)
    model = Model()
    trainer.fit(model, CombinedLoader([a, b], "min_size"), CombinedLoader([a, b], "sequential"))
    assert model.seen == [("train", 0), ("val0", 0), ("val0", 1), ("val0", 2), ("val1", 0)]
    with pytest.raises(ValueError, match="reads a CombinedLoader only in mode='sequential'"):
        trainer.validate(model, CombinedLoader([a, b], "max_size"))


def test_layer_summary_records_sizes_once() -> None:
    from torchbolt.utilities.model_summary import LayerSummary, parse_batch_shape

    layer = nn.Linear(3, 2)
    summary = LayerSummary(layer)
    assert summary.in_size == "?" and summary.layer_type == "Linear" and summary.num_parameters == 8
    layer(torch.zeros(4, 3))
    assert summary.in_size == [4, 3] and summary.out_size == [4, 2] and summary.training
    assert not layer._forward_hooks  # noqa: SLF001 - the hook removed itself
    assert parse_batch_shape([torch.zeros(1, 2), "x"]) == [[1, 2], "?"]


def test_move_data_to_device_keeps_tensors_already_there_and_moves_the_others() -> None:
    from torchbolt.utilities import move_data_to_device

    x, y = torch.ones(2), torch.zeros(2, dtype=torch.long)
    same = move_data_to_device((x, y), torch.device("cpu"))
    assert type(same) is tuple and same[0] is x and same[1] is y
    moved = move_data_to_device([x, y], "meta")
    assert type(moved) is list and [t.device.type for t in moved] == ["meta", "meta"]
    assert moved[1].dtype == torch.long
