"""Atomic checkpoint writes and the safe loader: allow-listed types load, code-carrying pickles are refused
(and never run), damaged files get an error naming the file."""

from __future__ import annotations

import argparse
import datetime
import io
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torchbolt.checkpoint import (
    TRUST_ENV_VAR,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    UnsafeCheckpointError,
    atomic_save,
    atomic_symlink,
    safe_load,
)
from torchbolt.checkpoint.io import TMP_SUFFIX, load_for_caller, remove_stale_temp_files
from torchbolt.utilities.hparams import AttributeDict


class _RunsCommand:
    """Unpickling this object runs `touch <marker>`: the shape of a malicious checkpoint."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: D105
        return (os.system, (f"touch {self.marker}",))


def _evil_checkpoint(path: pathlib.Path, marker: pathlib.Path) -> None:
    torch.save({"state_dict": {"w": torch.ones(2)}, "hyper_parameters": {"x": _RunsCommand(str(marker))}}, path)


def test_roundtrip_of_allowed_types(tmp_path: pathlib.Path) -> None:
    payload = {
        "state_dict": {"layer.weight": torch.randn(3, 2)},
        "hyper_parameters": {
            "ns": argparse.Namespace(lr=0.1, name="x"),
            "path": pathlib.Path("/data/set"),
            "attr": AttributeDict(a=1),
            "np_float": np.float64(0.5),
            "np_int": np.int64(7),
            "array": np.arange(4),
            "delta": datetime.timedelta(minutes=3),
            "frozen": frozenset({1, 2}),
            "nested": {"a": [1, 2.5, "s", None, True], "t": (1, 2)},
        },
        "best_model_score": torch.tensor(0.25),
    }
    target = tmp_path / "sub" / "ok.ckpt"
    atomic_save(payload, target)
    loaded = safe_load(target)
    hp = loaded["hyper_parameters"]
    assert torch.equal(loaded["state_dict"]["layer.weight"], payload["state_dict"]["layer.weight"])
    assert hp["ns"] == argparse.Namespace(lr=0.1, name="x")
    assert hp["path"] == pathlib.Path("/data/set")
    assert hp["attr"] == {"a": 1} and hp["attr"].a == 1
    assert hp["np_float"] == 0.5 and hp["np_int"] == 7
    assert np.array_equal(hp["array"], np.arange(4))
    assert hp["delta"] == datetime.timedelta(minutes=3)
    assert hp["frozen"] == frozenset({1, 2})
    assert hp["nested"] == {"a": [1, 2.5, "s", None, True], "t": (1, 2)}
    # nothing but the final file is left in the folder
    assert sorted(p.name for p in target.parent.iterdir()) == ["ok.ckpt"]


@pytest.mark.lightning
def test_lightning_attribute_dict_loads_as_dict(tmp_path: pathlib.Path) -> None:
    """Lightning may write its own AttributeDict into hparams; it loads (as a dict) without Lightning."""
    from lightning.fabric.utilities.data import AttributeDict as LightningAttributeDict

    path = tmp_path / "lightning_hparams.ckpt"
    torch.save({"hparams": LightningAttributeDict(lr=0.3)}, path)
    loaded = safe_load(path)
    assert type(loaded["hparams"]) is dict
    assert loaded["hparams"] == {"lr": 0.3}


def test_malicious_checkpoint_is_refused_and_command_never_runs(tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    _evil_checkpoint(path, marker)
    with pytest.raises(UnsafeCheckpointError) as info:
        safe_load(path)
    message = str(info.value)
    assert "evil.ckpt" in message
    assert "system" in message  # names the offending global (posix.system / nt.system)
    assert "trust=True" in message and TRUST_ENV_VAR in message
    assert any("system" in g for g in info.value.globals_found)
    assert not marker.exists()
    # the same through a file object and through the Lightning-style entry point
    with pytest.raises(UnsafeCheckpointError):
        safe_load(io.BytesIO(path.read_bytes()))
    with pytest.raises(UnsafeCheckpointError):
        load_for_caller(path, weights_only=None)
    assert not marker.exists()


def test_malicious_checkpoint_refused_in_fresh_process(tmp_path: pathlib.Path) -> None:
    """A separate interpreter, as a user would run it: refused, non-zero exit, marker absent."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    _evil_checkpoint(path, marker)
    script = textwrap.dedent(
        f"""
        import sys
        from torchbolt.checkpoint import safe_load, UnsafeCheckpointError
        try:
            safe_load({str(path)!r})
        except UnsafeCheckpointError as err:
            print("REFUSED", err)
            sys.exit(3)
        sys.exit(0)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != TRUST_ENV_VAR}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "REFUSED" in proc.stdout
    assert not marker.exists()


def test_trust_opt_in_loads_full_pickle(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "fn.ckpt"
    torch.save({"state_dict": {}, "activation": torch.nn.functional.relu}, path)
    with pytest.raises(UnsafeCheckpointError):
        safe_load(path)
    assert safe_load(path, trust=True)["activation"] is torch.nn.functional.relu
    assert load_for_caller(path, weights_only=False)["activation"] is torch.nn.functional.relu
    monkeypatch.setenv(TRUST_ENV_VAR, "1")
    assert safe_load(path)["activation"] is torch.nn.functional.relu


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage", "flip_tail"])
def test_damaged_file_error_names_the_file(tmp_path: pathlib.Path, damage: str) -> None:
    good = tmp_path / "good.ckpt"
    atomic_save({"state_dict": {"w": torch.randn(64, 64)}}, good)
    data = good.read_bytes()
    bad = tmp_path / f"{damage}.ckpt"
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        bad.write_bytes(b"")
    elif damage == "garbage":
        bad.write_bytes(b"this is not a checkpoint" * 20)
    else:
        bad.write_bytes(data[:-40] + b"\x00" * 40)
    with pytest.raises(CorruptCheckpointError) as info:
        safe_load(bad)
    assert str(bad) in str(info.value)
    assert "Traceback" not in str(info.value)


def test_missing_file_and_folder(tmp_path: pathlib.Path) -> None:
    with pytest.raises(CheckpointNotFoundError, match="nope.ckpt"):
        safe_load(tmp_path / "nope.ckpt")
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError for generic handlers
        safe_load(tmp_path / "nope.ckpt")
    with pytest.raises(CorruptCheckpointError, match="is a folder"):
        safe_load(tmp_path)


def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "model.ckpt"
    atomic_save({"v": 1}, target)

    class Unpicklable:
        def __reduce__(self):  # noqa: D105
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        atomic_save({"v": Unpicklable()}, target)
    assert safe_load(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt"]


def test_atomic_symlink_replaces_existing_link(tmp_path: pathlib.Path) -> None:
    a, b, link = tmp_path / "a.ckpt", tmp_path / "b.ckpt", tmp_path / "last.ckpt"
    atomic_save({"v": "a"}, a)
    atomic_save({"v": "b"}, b)
    atomic_symlink(a, link)
    assert safe_load(link) == {"v": "a"}
    atomic_symlink(b, link)
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))
    assert safe_load(link) == {"v": "b"}


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path: pathlib.Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(proc.stdout)
    stale = tmp_path / f".epoch=0.ckpt.{dead_pid}.abc123{TMP_SUFFIX}"
    stale.write_bytes(b"partial")
    mine = tmp_path / f".epoch=1.ckpt.{os.getpid()}.def456{TMP_SUFFIX}"
    mine.write_bytes(b"in flight")
    unrelated = tmp_path / "notes.tmp"
    unrelated.write_text("keep")
    removed = remove_stale_temp_files(tmp_path)
    assert removed == [stale]
    assert not stale.exists() and mine.exists() and unrelated.exists()


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX file modes")
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_checkpoint_files_follow_the_umask(tmp_path: pathlib.Path, umask: int, mode: int) -> None:
    previous = os.umask(umask)
    try:
        target = tmp_path / "model.ckpt"
        atomic_save({"state_dict": {"w": torch.zeros(1)}}, target)
        assert os.stat(target).st_mode & 0o777 == mode
        atomic_save({"state_dict": {"w": torch.ones(1)}}, target)  # replacing keeps following the umask
        assert os.stat(target).st_mode & 0o777 == mode
    finally:
        os.umask(previous)
