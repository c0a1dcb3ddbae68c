import time

from lightning.pytorch.callbacks import Callback


class EpochTimer(Callback):
    def __init__(self):
        self.start = 0.0
        self.durations: list[float] = []

    def setup(self, trainer, pl_module, stage):
        self.durations.clear()

    def on_train_epoch_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        elapsed = time.perf_counter() - self.start
        self.durations.append(elapsed)
        pl_module.log("epoch_seconds", elapsed)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        pass

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        checkpoint["epoch_durations"] = list(self.durations)

    def state_dict(self):
        return {"durations": self.durations}

    def load_state_dict(self, state_dict):
        self.durations = list(state_dict["durations"])

    def on_exception(self, trainer, pl_module, exception):
        self.durations.clear()
