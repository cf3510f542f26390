"""`build_dataset`: a dataset by its config, loaded by its registered spec and, with data.degrade,
turned into restoration pairs (data/degrade.py); with data.labels_per_class or data.labels_file,
semi-supervised: a class-balanced labelled subset chosen by the seed, the other labels hidden."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ganforge.config import DataConfig
from ganforge.core.errors import DataError
from ganforge.data.dataset import Dataset, rows
from ganforge.data.degrade import with_degradation
from ganforge.data.registry import DATASETS

HELD_OUT = 1000  # held-out images of degraded data: the test split's first, where there is one
HELD_OUT_SHARE = 0.1  # without a test split: this share of the images (at most HELD_OUT) is set aside
HELD_OUT_PICK = 1_000_039  # seeds the choice of those images: the same for every run of a folder


def build_dataset(cfg: DataConfig, seed: int = 0) -> Dataset:
    data = DATASETS[cfg.name].load(cfg, seed)
    if cfg.labels_per_class or cfg.labels_file:
        data = semi_supervised(cfg, data, seed)
    if cfg.degrade:
        data, held, held_from = _held_out_images(cfg, data, seed)
        data = with_degradation(data, held, held_from, cfg.degrade, seed, per_image=cfg.degrade_per == "image")
    if data.captions is not None and cfg.split != "test":
        data = _held_out_captions(cfg, data, seed)
    return data


def _held_out_captions(cfg: DataConfig, data: Dataset, seed: int) -> Dataset:
    """Captioned data with captions for evaluation in extra["held_out_captions"] ((Captions, labels
    or None) of images training never sees): the test split's first HELD_OUT images where there is
    one, else a tenth of the images (at most HELD_OUT), left out of training."""
    spec = DATASETS[cfg.name]
    if "test" in spec.splits:
        test = spec.load(dataclasses.replace(cfg, split="test", max_images=HELD_OUT), seed)
        return dataclasses.replace(data, extra={**data.extra, "held_out_captions": (test.captions, test.y)})
    held, kept = held_out_pick(len(data.x))
    if not len(held):
        return data
    extra = {**data.extra, "held_out_captions": (data.captions.subset(held), None if data.y is None else data.y[held])}
    return dataclasses.replace(data, x=rows(data.x, kept), y=None if data.y is None else data.y[kept],
                               captions=data.captions.subset(kept), extra=extra)


def held_out_pick(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(held-out, kept) indices of n images for data without a test split: a tenth (at most
    HELD_OUT), the same for every run of the same images."""
    k = min(HELD_OUT, max(1, round(n * HELD_OUT_SHARE))) if n > 1 else 0
    order = torch.randperm(n, generator=torch.Generator().manual_seed(HELD_OUT_PICK))
    return order[:k].sort().values, order[k:].sort().values


def labelled_subset(y: torch.Tensor, per_class: int, seed: int, classes: tuple[str, ...] = (),
                    pick: str = "torch") -> torch.Tensor:
    """Indices of `per_class` images of every class (y >= 0): the first of each class in a seeded
    permutation of the labelled images (as the reference code takes the first N of each class in a
    seeded shuffle); 0 = every labelled image. The same subset for the same seed and labels. `pick`
    names the permutation: torch's randperm, or numpy's RandomState(seed).permutation, the
    reference's own (with every image labelled, as in MNIST, its exact choice)."""
    known = (y >= 0).nonzero().flatten()
    if pick == "numpy":
        order = known[torch.from_numpy(np.random.RandomState(seed).permutation(len(known)))]
    else:
        order = known[torch.randperm(len(known), generator=torch.Generator().manual_seed(seed))]
    picked = []
    for k in range(max(len(classes), int(y.max()) + 1)):  # every class, also one no image is labelled with
        of_k = order[y[order] == k]
        name = classes[k] if k < len(classes) else str(k)
        if not len(of_k):
            raise DataError(f"class {name!r} has no labelled training image (a labels file naming only images "
                            "that were not read or were held out?): label some of its images, or drop the class")
        if len(of_k) < per_class:
            raise DataError(f"data.labels_per_class={per_class}: class {name!r} has only {len(of_k)} labelled "
                            f"image(s); lower data.labels_per_class to at most {len(of_k)}")
        picked.append(of_k[:per_class])
    return torch.cat(picked) if per_class else known


def semi_supervised(cfg: DataConfig, data: Dataset, seed: int) -> Dataset:
    """The data with the labels training may use (`Dataset.labelled`). Data without a test split
    gives a tenth of its labelled images to held-out evaluation (extra["held_out_labelled"]: images
    and labels), left out of training altogether."""
    if data.y is None:
        raise DataError(f"data.labels_per_class / data.labels_file need labelled data; {cfg.name} has no labels "
                        "(a folder: data.labels=true for sub-folders as classes, or data.labels_file=CSV)")
    spec = DATASETS[cfg.name]
    if "test" not in spec.splits:
        known = (data.y >= 0).nonzero().flatten()
        held, _ = held_out_pick(len(known))
        held = known[held]
        keep = torch.ones(len(data.x), dtype=torch.bool)
        keep[held] = False
        extra = {**data.extra, "held_out_labelled": (data.x[held], data.y[held])}
        data = dataclasses.replace(data, x=rows(data.x, keep), y=data.y[keep], extra=extra)
    pick_seed = seed if cfg.labels_seed < 0 else cfg.labels_seed
    return dataclasses.replace(data, labelled=labelled_subset(data.y, cfg.labels_per_class, pick_seed, data.classes,
                                                              cfg.labels_pick))


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
    held, kept = held_out_pick(n)
    k = len(held)
    if k == 0:
        return data, data.x[:1], "the one training image (nothing to set aside)"
    images = data.x[held]
    data = dataclasses.replace(data, x=rows(data.x, kept), y=None if data.y is None else data.y[kept])
    return data, images, f"{k} of the {n} images, left out of training (the data has no test split)"
