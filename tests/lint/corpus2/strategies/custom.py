"""A custom strategy registered by name, and one passed as an instance."""

from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry
from lightning.pytorch.accelerators import AcceleratorRegistry, CPUAccelerator


class QuietDDP(DDPStrategy):
    strategy_name = "quiet_ddp"


StrategyRegistry.register("quiet_ddp", QuietDDP, description="DDP without unused-parameter search",
                          find_unused_parameters=False)


class CountingCPU(CPUAccelerator):
    pass


AcceleratorRegistry.register("counting_cpu", CountingCPU, description="CPU that counts its setups")
