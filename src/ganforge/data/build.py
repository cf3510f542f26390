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


def build_dataset(cfg: DataConfig, seed: int = 0) -> Dataset:
    data = DATASETS[cfg.name].load(cfg, seed)
    if cfg.degrade:
        held, held_from = _held_out_images(cfg, data, seed)
        data = with_degradation(data, held, held_from, cfg.degrade, seed, per_image=cfg.degrade_per == "image")
    return data


def _held_out_images(cfg: DataConfig, data: Dataset, seed: int) -> tuple[torch.Tensor, str]:
    """Clean images kept aside for the grids and benchmarks of a restoration model."""
    spec = DATASETS[cfg.name]
    if "test" in spec.splits and cfg.split != "test":
        test = spec.load(dataclasses.replace(cfg, split="test", max_images=HELD_OUT, degrade=""), seed)
        return test.x[:HELD_OUT], "the test split"
    return data.x[:64], "the training images (no test split)"
