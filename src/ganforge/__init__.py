"""ganforge: train, evaluate and explore generative adversarial networks.

    import ganforge
    G = ganforge.load_generator("runs/00000-demo")        # a checkpoint, run folder or export
    x = G.sample(16, seed=1)                               # a tensor in the data's range ([-1, 1])
    images = G.images(16, seed=1, truncation=1.0)          # PIL images

The package's face: nothing inside ganforge imports this module, so it may import the top.
"""

from ganforge.core.version import __version__
from ganforge.api import load_generator

__all__ = ["load_generator", "__version__"]
