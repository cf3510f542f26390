"""fashion-captions: Fashion-MNIST with captions whose every fact can be checked on an image.

Each caption names the item's class (in one of two wordings: "an ankle boot", "a boot that covers
the ankle") and two attributes measured from the image itself: dark or light (the mean intensity
of the item's pixels) and large or small (the item's area, the share of pixels above INK), each
against the median of the item's class in the training split, so that every class has both kinds
and a generated image's attributes are judged by the same rule (`measure`, `attributes`). A third
wording of each class (`UNSEEN`) never appears in training: the held-out wordings a sentence
encoder should understand and a character model need not.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ganforge.config import DataConfig
from ganforge.data.captions import Captions
from ganforge.data.dataset import Dataset, DatasetSpec
from ganforge.data.mnist import FASHION_CLASSES, SPLITS, _grey28, load_idx_split
from ganforge.data.registry import DATASETS, register

INK = 25  # of 255: a pixel darker than this is background
WORDINGS = (("t-shirt", "top with short sleeves"), ("pair of trousers", "pair of long pants"),
            ("pullover", "knitted sweater"), ("dress", "one-piece dress"), ("coat", "jacket with a zip"),
            ("sandal", "open summer shoe"), ("shirt", "shirt with a collar"), ("sneaker", "running shoe"),
            ("bag", "handbag"), ("ankle boot", "boot that covers the ankle"))
UNSEEN = ("tee", "pair of slacks", "jumper", "frock", "overcoat", "flip-flop", "blouse", "trainer", "purse", "bootie")
TEMPLATES = ("{size} {tone} {noun}", "{noun}, {tone} and {size}")  # after "a" / "an"


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def caption(noun: str, dark: bool, large: bool, template: int = 0) -> str:
    words = TEMPLATES[template].format(size="large" if large else "small", tone="dark" if dark else "light",
                                       noun=noun)
    return f"{article(words)} {words}"


def measure(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(tone, area) of images [N, 1, 28, 28] (uint8, or float in [-1, 1]): the mean intensity in
    [0, 1] of the item's pixels, and the share of the image the item covers."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else (images.float() + 1) / 2
    ink = x > INK / 255.0
    area = ink.flatten(1).float().mean(1)
    tone = (x * ink).flatten(1).sum(1) / ink.flatten(1).sum(1).clamp_min(1)
    return tone, area


@functools.lru_cache(maxsize=4)
def medians(root: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """Per class (tone, area) medians of the training split: the lines between dark / light and
    large / small."""
    images, labels, _ = load_idx_split("fashion-mnist", "train", root)
    tone, area = measure(torch.from_numpy(images[:, None]))
    y = torch.from_numpy(labels.astype(np.int64))
    return (torch.stack([tone[y == k].median() for k in range(10)]),
            torch.stack([area[y == k].median() for k in range(10)]))


def attributes(images: torch.Tensor, classes: torch.Tensor, root: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """(dark, large) booleans of images read as `classes`, by the training split's class medians."""
    tone_line, area_line = medians(root)
    tone, area = measure(images)
    return tone < tone_line[classes], area > area_line[classes]


def captions_of(labels: torch.Tensor, dark: torch.Tensor, large: torch.Tensor, wordings=WORDINGS) -> list[list[str]]:
    """Every caption of every image: each wording of its class in each template."""
    out = []
    for k, d, g in zip(labels.tolist(), dark.tolist(), large.tolist()):
        nouns = wordings[k] if isinstance(wordings[k], tuple) else (wordings[k],)
        out.append([caption(noun, d, g, t) for noun in nouns for t in range(len(TEMPLATES))])
    return out


def _load(cfg: DataConfig, seed: int) -> Dataset:
    images, labels, source = load_idx_split("fashion-mnist", cfg.split, cfg.root)
    if cfg.max_images:
        images, labels = images[: cfg.max_images], labels[: cfg.max_images]
    x = torch.from_numpy(np.ascontiguousarray(images[:, None]))
    y = torch.from_numpy(labels.astype(np.int64))
    dark, large = attributes(x, y, cfg.root)
    return Dataset(DATASETS["fashion-captions"], x, y, cfg.range, source, FASHION_CLASSES,
                   captions=Captions.from_lists(captions_of(y, dark, large), seed))


register(DatasetSpec("fashion-captions", "image", "Fashion-MNIST with captions of class, tone and size "
                     "(text-to-image)", _load, check=_grey28, num_classes=10, real_splits="fashion-mnist",
                     feature_net="fashion-mnist-cnn", modes="labels", default_metrics=("fid",),
                     classes=FASHION_CLASSES, splits=SPLITS, captioned=True))
