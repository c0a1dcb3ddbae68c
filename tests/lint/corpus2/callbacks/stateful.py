from lightning.pytorch.callbacks import Callback


class CountingCallback(Callback):
    def __init__(self):
        self.batches = 0

    @property
    def state_key(self):
        return self._generate_state_key(name="counter")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches += 1

    def state_dict(self):
        return {"batches": self.batches}

    def load_state_dict(self, state_dict):
        self.batches = state_dict["batches"]

    def on_exception(self, trainer, pl_module, exception):
        print(f"stopped after {self.batches} batches: {exception}")
