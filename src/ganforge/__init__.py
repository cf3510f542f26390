"""ganforge: train, evaluate and explore generative adversarial networks."""

__version__ = "0.2.0"
