"""Helpers shared by the runtime and offered to user code at Lightning's `utilities` paths.

Everything is imported lazily (PEP 562), so `import torchbolt.utilities` itself stays torch-free:
`rank_zero_only`/`rank_zero_info`/..., `grad_norm`, `CombinedLoader`, `move_data_to_device`,
`measure_flops`, `is_picklable`, `disable_possible_user_warnings`, and the submodules `types`,
`model_summary`, `imports`, `memory`, ...
"""

from __future__ import annotations

from torchbolt._lazy import lazy_getattr
from torchbolt.utilities.exceptions import MisconfigurationException
from torchbolt.utilities.hparams import AttributeDict

_LAZY = {
    "seed_everything": "torchbolt.utilities.seed",
    "CombinedLoader": "torchbolt.utilities.combined_loader",
    "grad_norm": "torchbolt.utilities.grads",
    "move_data_to_device": "torchbolt.utilities.apply_func",
    "apply_to_collection": "torchbolt.utilities.apply_func",
    "measure_flops": "torchbolt.utilities.flops",
    "is_picklable": "torchbolt.utilities.parsing",
    "disable_possible_user_warnings": "torchbolt.utilities.warnings",
    "rank_zero_only": "torchbolt.utilities.rank_zero",
    "rank_zero_info": "torchbolt.utilities.rank_zero",
    "rank_zero_warn": "torchbolt.utilities.rank_zero",
    "rank_zero_debug": "torchbolt.utilities.rank_zero",
    "rank_zero_deprecation": "torchbolt.utilities.rank_zero",
    "find_shared_parameters": "torchbolt.utilities.parameter_tying",
    "set_shared_parameters": "torchbolt.utilities.parameter_tying",
    "GradClipAlgorithmType": "torchbolt.utilities.enums",
    "LightningEnum": "torchbolt.utilities.enums",
    "suggested_max_num_workers": "torchbolt.utilities.data",
}

__all__ = ["AttributeDict", "MisconfigurationException", *_LAZY]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
