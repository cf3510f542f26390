"""`build_dataset`: a dataset by its config, loaded by its registered spec and, with data.degrade,
turned into restoration pairs (data/degrade.py)."""

from __future__ import annotations

import dataclasses

import torch

from ganforge.config import DataConfig
from ganforge.data.dataset import Dataset
from ganforge.data.degrade import with_degradation
from ganforge.data.registry import DATASETS

HELD_OUT = 1000  # held-out images of degraded data: the test split's first, where there is one
HELD_OUT_SHARE = 0.1  # without a test split: this share of the images (at most HELD_OUT) is set aside
HELD_OUT_PICK = 1_000_039  # seeds the choice of those images: the same for every run of a folder


def build_dataset(cfg: DataConfig, seed: int = 0) -> Dataset:
    data = DATASETS[cfg.name].load(cfg, seed)
    if cfg.degrade:
        data, held, held_from = _held_out_images(cfg, data, seed)
        data = with_degradation(data, held, held_from, cfg.degrade, seed, per_image=cfg.degrade_per == "image")
    return data


def _held_out_images(cfg: DataConfig, data: Dataset, seed: int) -> tuple[Dataset, torch.Tensor, str]:
    """(the training data, clean images kept aside for the grids and benchmarks of a restoration
    model, where they came from): the test split's first images, or, for data without one (an
    image folder), a tenth of the images chosen at random and left out of training, so that a
    restoration is never judged on an image the model learnt from."""
    spec = DATASETS[cfg.name]
    if "test" in spec.splits and cfg.split != "test":
        test = spec.load(dataclasses.replace(cfg, split="test", max_images=HELD_OUT, degrade=""), seed)
        return data, test.x[:HELD_OUT], "the test split"
    n = len(data.x)
    k = min(HELD_OUT, max(1, round(n * HELD_OUT_SHARE))) if n > 1 else 0
    if k == 0:
        return data, data.x[:1], "the one training image (nothing to set aside)"
    order = torch.randperm(n, generator=torch.Generator().manual_seed(HELD_OUT_PICK))
    held, kept = order[:k].sort().values, order[k:].sort().values
    images = data.x[held]
    data = dataclasses.replace(data, x=data.x[kept], y=None if data.y is None else data.y[kept])
    return data, images, f"{k} of the {n} images, left out of training (the data has no test split)"
