"""ganforge: train, evaluate and explore generative adversarial networks.

    import ganforge
    G = ganforge.load_generator("runs/00000-demo")        # a checkpoint, run folder or export
    x = G.sample(16, seed=1)                               # a tensor in the data's range ([-1, 1])
    images = G.images(16, seed=1, truncation=1.0)          # PIL images

The package's face: nothing inside ganforge imports this module. `load_generator` is looked up in
ganforge.api when first asked for, so importing one of the package's modules (ganforge.core.io,
say) does not load the whole library and torch with it.
"""

import importlib

from ganforge.core.version import __version__

__all__ = ["load_generator", "__version__"]


def __getattr__(name: str):
    if name == "load_generator":
        return importlib.import_module("ganforge.api").load_generator
    raise AttributeError(f"module 'ganforge' has no attribute {name!r}")
