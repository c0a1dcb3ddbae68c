"""LightningCLI with subclass mode and a custom argument link."""

from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI


class LinkedCLI(LightningCLI):
    def add_arguments_to_parser(self, parser):
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")


def main():
    LinkedCLI(LightningModule, LightningDataModule, subclass_mode_model=True, subclass_mode_data=True)


if __name__ == "__main__":
    main()
