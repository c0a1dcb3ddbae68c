from .classifier import LitClassifier
from .autoencoder import LitAutoEncoder

__all__ = ["LitAutoEncoder", "LitClassifier"]
