"""Datasets: one module per source, each registering its `DatasetSpec`s in data/registry.py.

Images are stored as uint8 [N, C, H, W] (a quarter of float32's memory) and converted on the
device, batch by batch, to float32 in [-1, 1] (data.range=signed) or [0, 1] (unit); toy mixtures
are float32 [N, 2]. A batch is a dict: {"x": samples} plus {"c": int64 labels} when the data has
labels. A new dataset is one module here that calls `register`: `import_all` finds it.
"""

# each registers its datasets; `ganforge data list` shows them in this order
from ganforge.data import mnist  # noqa: F401, I001
from ganforge.data import folder, toy, translation, fake  # noqa: F401, I001
from ganforge.data.dataset import Dataset, DatasetSpec
from ganforge.data.fake import fake_dataset
from ganforge.data.mnist import load_embedded_mnist, load_idx_split, stack_digits
from ganforge.data.registry import DATASETS, register
from ganforge.data.build import build_dataset
from ganforge.data.toy import toy_centres, toy_std
from ganforge.core.registry import import_all

import_all(__name__, __path__)  # any other module of this package (a dataset added as one file)

__all__ = ["DATASETS", "Dataset", "DatasetSpec", "build_dataset", "register", "fake_dataset", "load_embedded_mnist",
           "load_idx_split", "stack_digits", "toy_centres", "toy_std"]
