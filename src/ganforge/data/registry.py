"""The dataset registry: one `DatasetSpec` per name, added by the module that loads it
(data/mnist.py, folder.py, toy.py, translation.py, fake.py). Every other module asks
`DATASETS[name]` what a dataset is (its kind, shape, classes, splits, files, feature network,
default metrics, validation rule) instead of testing its name."""

from __future__ import annotations

from ganforge.core.registry import Registry
from ganforge.data.dataset import DatasetSpec

DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register(spec: DatasetSpec) -> DatasetSpec:
    return DATASETS.add(spec.name, spec)
