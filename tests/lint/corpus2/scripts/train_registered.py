import lightning.pytorch as pl

import strategies.custom  # noqa: F401  (registers quiet_ddp and counting_cpu)
from models.trainable import Model
from strategies.custom import QuietDDP


def main():
    trainer = pl.Trainer(strategy="quiet_ddp", accelerator="counting_cpu", devices=2, max_steps=10)
    trainer.fit(Model())
    pl.Trainer(strategy=QuietDDP(), accelerator="cpu", devices=2).fit(Model())


if __name__ == "__main__":
    main()
