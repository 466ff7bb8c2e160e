"""genbench: train and compare image generative models in one reproducible pipeline."""

__version__ = "0.1.0"
