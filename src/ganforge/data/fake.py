"""Random images of the configured shape, for `--dry-run` (no files read)."""

from __future__ import annotations

import torch

from ganforge.config import DataConfig
from ganforge.data.captions import Captions
from ganforge.data.dataset import Dataset, DatasetSpec
from ganforge.data.registry import DATASETS, register


def fake_dataset(cfg: DataConfig, seed: int = 0, n: int = 256) -> Dataset:
    """Random images of the configured shape, for `--dry-run` (no files read)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, cfg.channels, cfg.resolution, cfg.resolution), generator=g, dtype=torch.uint8)
    y = torch.randint(10, (n,), generator=g)
    captions = (Captions.from_lists([[f"random image {k}", f"noise of kind {k}"] for k in y.tolist()], seed)
                if cfg.captions else None)  # for a dry run of a text-to-image model
    return Dataset(DATASETS["fake"], x, y, cfg.range, "random tensors", tuple(str(i) for i in range(10)),
                   captions=captions)


register(DatasetSpec("fake", "image", "random images of the configured shape (--dry-run)", fake_dataset,
                     num_classes=10, default_metrics=(), dry_run=True, captions_if_asked=True))
