import lightning as L
from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry


class HorovodLike(DDPStrategy):
    pass


StrategyRegistry.register("horovod", HorovodLike, description="our own horovod-style strategy")
StrategyRegistry.register("my_ddp", DDPStrategy, description="ddp with our defaults", find_unused_parameters=True)


def trainers():
    ours = L.Trainer(strategy="horovod")
    custom = L.Trainer(strategy="my_ddp")
    old = L.Trainer(strategy="dp")
    return ours, custom, old
