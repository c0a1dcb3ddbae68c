"""XLAProfiler: TPU profiling is not part of this build."""

from __future__ import annotations

from typing import Any


class XLAProfiler:
    """Stands for Lightning's XLAProfiler; constructing it explains that XLA/TPU is not available."""

    def __init__(self, port: int = 9012, **profiler_kwargs: Any) -> None:
        raise ModuleNotFoundError(
            "XLAProfiler is not available in this build of torchbolt: it needs torch_xla and a TPU, which torchbolt "
            "does not support. Use profiler='simple', 'advanced' or 'pytorch' instead."
        )
