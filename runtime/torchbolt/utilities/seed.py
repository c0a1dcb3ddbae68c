"""Global seeding: Python's `random`, NumPy (when installed) and torch, plus dataloader worker seeding."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import warnings
from collections.abc import Iterator
from typing import Any

import torch

log = logging.getLogger(__name__)

_MAX_SEED = 2**32 - 1


def seed_everything(seed: int | None = None, workers: bool = False, verbose: bool = True) -> int:
    """Seed `random`, NumPy and torch with `seed` and return it.

    `seed=None` reads the `PL_GLOBAL_SEED` environment variable (0 when unset). `workers=True` makes the
    Trainer give every dataloader worker a distinct, reproducible seed derived from this one.
    """
    if seed is None:
        env_seed = os.environ.get("PL_GLOBAL_SEED")
        if env_seed is None:
            seed = 0
            if verbose:
                warnings.warn(f"No seed found, seed set to {seed}", stacklevel=2)
        else:
            try:
                seed = int(env_seed)
            except ValueError:
                raise ValueError(
                    f"PL_GLOBAL_SEED={env_seed!r} is not an integer; set it to a number or unset it."
                ) from None
    elif not isinstance(seed, int):
        seed = int(seed)
    if not (0 <= seed <= _MAX_SEED):
        warnings.warn(f"{seed} is not in bounds, numpy accepts from 0 to {_MAX_SEED}; seed set to 0.", stacklevel=2)
        seed = 0
    if verbose:
        log.info("Seed set to %d", seed)
    os.environ["PL_GLOBAL_SEED"] = str(seed)
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # NumPy is optional
        pass
    torch.manual_seed(seed)
    os.environ["PL_SEED_WORKERS"] = f"{int(workers)}"
    return seed


def reset_seed() -> None:
    """Re-apply the seed from the last `seed_everything` call (no-op when there was none)."""
    seed = os.environ.get("PL_GLOBAL_SEED")
    if seed is None:
        return
    workers = os.environ.get("PL_SEED_WORKERS", "0")
    seed_everything(int(seed), workers=bool(int(workers)), verbose=False)


def worker_init_function(worker_id: int, rank: int = 0) -> None:
    """Seed one dataloader worker from the global seed, its id and the process rank.

    Installed by the Trainer as `worker_init_fn` when `seed_everything(..., workers=True)` was called.
    """
    process_seed = torch.initial_seed()
    base_seed = process_seed - worker_id
    ss = _seed_sequence(base_seed, worker_id, rank)
    torch.manual_seed(ss[0])
    random.seed(ss[1])
    try:
        import numpy as np

        np.random.seed(ss[2] % (2**32))
    except ImportError:
        pass


def _seed_sequence(base_seed: int, worker_id: int, rank: int) -> list[int]:
    # Mix the three numbers so that neighbouring workers/ranks get unrelated streams.
    rng = random.Random(hash((base_seed, worker_id, rank)) & 0xFFFFFFFFFFFF)
    return [rng.getrandbits(63) for _ in range(3)]


@contextlib.contextmanager
def isolate_rng(include_cuda: bool = True) -> Iterator[None]:
    """Run a block without disturbing the random streams: Python's, NumPy's (if installed), torch's and,
    with `include_cuda`, CUDA's states are restored when the block exits."""
    python_state = random.getstate()
    torch_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if include_cuda and torch.cuda.is_available() else None
    try:
        import numpy as np

        numpy_state: Any = np.random.get_state()
    except ImportError:
        np, numpy_state = None, None  # type: ignore[assignment]
    try:
        yield
    finally:
        random.setstate(python_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        if np is not None:
            np.random.set_state(numpy_state)
