"""LightningCLI entry point: the model and data classes are chosen on the command line."""

from lightning.pytorch.cli import LightningCLI

from models.classifier import LitClassifier
from data.mnist_like import RandomImageDataModule


def cli_main():
    LightningCLI(LitClassifier, RandomImageDataModule, save_config_kwargs={"overwrite": True})


if __name__ == "__main__":
    cli_main()
