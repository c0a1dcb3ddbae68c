from lightning.pytorch.demos.boring_classes import BoringDataModule


class ShortBoringData(BoringDataModule):
    def predict_dataloader(self):
        return self.test_dataloader()
