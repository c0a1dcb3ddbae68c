import lightning as L


class Evaluator(L.LightningModule):
    """Evaluation only: used with trainer.validate / trainer.test, never fitted."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def validation_step(self, batch, batch_idx):
        self.log("eval_score", self.model(batch).mean())

    def test_step(self, batch, batch_idx):
        self.log("eval_test_score", self.model(batch).mean())


def evaluate(model, loader):
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False)
    trainer.validate(Evaluator(model), dataloaders=loader)
    return trainer.test(Evaluator(model), dataloaders=loader)
