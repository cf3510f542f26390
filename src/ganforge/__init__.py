"""ganforge: train, evaluate and explore generative adversarial networks.

    import ganforge
    G = ganforge.load_generator("runs/00000-demo")        # a checkpoint, run folder or export
    x = G.sample(16, seed=1)                               # a tensor in the data's range ([-1, 1])
    images = G.images(16, seed=1, truncation=1.0)          # PIL images
"""

__version__ = "0.2.0"

__all__ = ["load_generator", "__version__"]


def __getattr__(name: str):
    # Lazy: `ganforge --version` and the CLI's argument parsing do not import torch.
    if name == "load_generator":
        from ganforge.generator import load_generator

        return load_generator
    raise AttributeError(f"module 'ganforge' has no attribute {name!r}")
