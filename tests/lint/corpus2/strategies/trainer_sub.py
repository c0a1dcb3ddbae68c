import lightning.pytorch as pl


class ResearchTrainer(pl.Trainer):
    """A Trainer subclass with one argument of its own; the rest go to Trainer."""

    def __init__(self, *args, experiment: str = "default", **kwargs):
        super().__init__(*args, **kwargs)
        self.experiment = experiment


def build(experiment: str) -> ResearchTrainer:
    return ResearchTrainer(experiment=experiment, max_epochs=3, accelerator="cpu", devices=1,
                           log_every_n_steps=5)
