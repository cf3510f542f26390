"""Datasets as one in-memory tensor, batched by index (no per-sample Python in the hot loop).

Images come out as float32 [N, C, H, W] in [-1, 1] (data.range=signed) or [0, 1] (unit);
toy mixtures as float32 [N, 2]. Labels, when the data has them, as int64 [N].
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch

from ganforge.config import DataConfig
from ganforge.data.folder import load_folder
from ganforge.data.idx import read_idx, read_idx_bytes
from ganforge.data.sources import IDX_DATASETS, find_idx_file, get_idx_dataset, missing_data_message
from ganforge.data.toy import grid_centres, ring_centres, sample_mixture
from ganforge.errors import DataError

# sha256 of the files written by tools/build_embedded_mnist.py (reproducible byte for byte).
EMBEDDED_SHA256 = {
    "mnist10k-train-images-idx3-ubyte.gz": "11a772a6dc925b05dd399880865d80fdc378f1482a27072a7fe2c10be2367eda",
    "mnist10k-train-labels-idx1-ubyte.gz": "4e8b4ac90e302aa725dd50c14268e8630d3941e30cf889ea15dfa1a6dedf8665",
}

# MNIST as split by Goodfellow et al. 2014: train[0:50000] for training, train[50000:60000] to validate.
_SPLITS = {"train": ("train", slice(None)), "train50k": ("train", slice(0, 50_000)),
           "validation": ("train", slice(50_000, 60_000)), "test": ("test", slice(None))}


@dataclass
class InMemoryDataset:
    x: torch.Tensor  # [N, C, H, W] images or [N, 2] points, float32
    y: torch.Tensor | None  # [N] int64 class labels, or None
    name: str
    kind: str  # "image" | "points"
    source: str  # where the data came from, for logs and reports
    classes: tuple[str, ...] = ()
    centres: torch.Tensor | None = None  # toy mixtures: [M, 2] mode centres

    def __len__(self) -> int:
        return len(self.x)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])


def _embedded_bytes(name: str) -> bytes:
    data = resources.files("ganforge.data").joinpath("assets", name).read_bytes()
    if hashlib.sha256(data).hexdigest() != EMBEDDED_SHA256[name]:
        raise DataError(f"the embedded data file {name} is damaged (sha256 mismatch); reinstall ganforge")
    return data


def load_embedded_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The first 10,000 MNIST training images [10000, 28, 28] uint8 and labels [10000] uint8."""
    import gzip

    images = read_idx_bytes(gzip.decompress(_embedded_bytes("mnist10k-train-images-idx3-ubyte.gz")), "embedded")
    labels = read_idx_bytes(gzip.decompress(_embedded_bytes("mnist10k-train-labels-idx1-ubyte.gz")), "embedded")
    return images, labels


def load_idx_split(name: str, split: str, root: str = "") -> tuple[np.ndarray, np.ndarray, str]:
    """(images uint8 [N, 28, 28], labels uint8 [N], source folder) of a named IDX dataset split."""
    ds = get_idx_dataset(name)
    which, rows = _SPLITS[split]
    paths = []
    for role in (f"{which}_images", f"{which}_labels"):
        path = find_idx_file(ds, ds.files[role], root)
        if path is None:
            raise DataError(missing_data_message(ds, ds.files[role], root))
        paths.append(path)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if len(images) != len(labels):
        raise DataError(f"{paths[0]} has {len(images)} images but {paths[1]} has {len(labels)} labels")
    return images[rows], labels[rows], str(paths[0].parent)


def _to_float(images_u8: np.ndarray, value_range: str) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images_u8)).float().div_(255.0)
    return x.mul_(2).sub_(1) if value_range == "signed" else x


def build_dataset(cfg: DataConfig, seed: int = 0) -> InMemoryDataset:
    if cfg.name in IDX_DATASETS:
        images, labels, source = load_idx_split(cfg.name, cfg.split, cfg.root)
        classes = IDX_DATASETS[cfg.name].classes
    elif cfg.name == "mnist-embedded":
        images, labels = load_embedded_mnist()
        source, classes = "embedded MNIST train[0:10000]", IDX_DATASETS["mnist"].classes
    elif cfg.name == "stacked-mnist":
        return stacked_mnist(cfg)
    elif cfg.name == "folder":
        images, labels, class_names = load_folder(cfg.root, cfg.resolution, cfg.channels, cfg.labels, cfg.max_images)
        x = _to_float(images, cfg.range)
        y = torch.from_numpy(labels) if labels is not None else None
        return InMemoryDataset(x, y, "folder", "image", cfg.root, tuple(class_names))
    elif cfg.name in ("ring", "grid"):
        return _toy(cfg, seed)
    elif cfg.name == "fake":
        return fake_dataset(cfg)
    else:  # unreachable: config validation restricts the names
        raise DataError(f"unknown dataset {cfg.name}")
    if cfg.max_images:
        images, labels = images[: cfg.max_images], labels[: cfg.max_images]
    x = _to_float(images[:, None], cfg.range)  # [N, 1, 28, 28]
    y = torch.from_numpy(labels.astype(np.int64))
    return InMemoryDataset(x, y, cfg.name, "image", source, classes)


# Fixed, so that every run (whatever its train.seed) sees the same Stacked MNIST images.
STACKED_SEED = 2018


def stack_digits(images: np.ndarray, labels: np.ndarray, n: int, seed: int = STACKED_SEED):
    """n RGB images [n, 3, 28, 28] whose channels are three MNIST digits drawn independently and
    uniformly (with replacement), and their modes 100 * red + 10 * green + blue digit (0..999), as in
    the Stacked MNIST of Srivastava et al. 2017 (VEEGAN) and Lin et al. 2018 (PacGAN)."""
    pick = np.random.default_rng(seed).integers(0, len(images), size=(n, 3))
    mode = labels[pick].astype(np.int64) @ np.array([100, 10, 1])
    return images[pick], mode


def stacked_mnist(cfg: DataConfig) -> InMemoryDataset:
    images, labels, source = load_idx_split("mnist", cfg.split, cfg.root)
    n = cfg.max_images or len(images)
    stacked, mode = stack_digits(images, labels, n)
    return InMemoryDataset(_to_float(stacked, cfg.range), torch.from_numpy(mode), "stacked-mnist", "image",
                           f"{n} digit triples from mnist {cfg.split} ({source})", tuple(f"{i:03d}" for i in range(1000)))


def _toy(cfg: DataConfig, seed: int) -> InMemoryDataset:
    if cfg.name == "ring":
        centres, std = ring_centres(cfg.toy_ring_modes, cfg.toy_ring_radius), cfg.toy_std or 0.01
    else:
        centres, std = grid_centres(cfg.toy_grid_side, cfg.toy_grid_spacing), cfg.toy_std or 0.05
    x, mode = sample_mixture(centres, std, cfg.toy_num_samples, seed)
    return InMemoryDataset(x, mode, cfg.name, "points", f"{len(centres)} Gaussians, std {std}",
                           tuple(str(i) for i in range(len(centres))), centres)


def fake_dataset(cfg: DataConfig, n: int = 256) -> InMemoryDataset:
    """Random images of the configured shape, for `--dry-run` (no files read)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, cfg.channels, cfg.resolution, cfg.resolution, generator=g)
    x = x * 2 - 1 if cfg.range == "signed" else x
    return InMemoryDataset(x, torch.randint(10, (n,), generator=g), "fake", "image", "random tensors",
                           tuple(str(i) for i in range(10)))
