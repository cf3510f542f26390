"""Datasets held in memory and batched by index (no per-sample Python in the hot loop), and the
registry that describes each dataset once.

Images are stored as uint8 [N, C, H, W] (a quarter of float32's memory) and converted on the
device, batch by batch, to float32 in [-1, 1] (data.range=signed) or [0, 1] (unit); toy mixtures
are float32 [N, 2]. A batch is a dict: {"x": samples} plus {"c": int64 labels} when the data has
labels. Every other module asks `DATASETS[name]` what a dataset is (its kind, shape, classes, feature
network, default metrics, validation rule) instead of testing its name.
"""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import torch

from ganforge.config import DataConfig
from ganforge.data.dataset import Dataset, DatasetSpec
from ganforge.data import translation
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


def _u8(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images))


def _idx(cfg: DataConfig, seed: int) -> Dataset:
    images, labels, source = load_idx_split(cfg.name, cfg.split, cfg.root)
    return _labelled_digits(cfg, images, labels, source, IDX_DATASETS[cfg.name].classes)


def _embedded(cfg: DataConfig, seed: int) -> Dataset:
    images, labels = load_embedded_mnist()
    return _labelled_digits(cfg, images, labels, "embedded MNIST train[0:10000]", IDX_DATASETS["mnist"].classes)


def _labelled_digits(cfg, images, labels, source, classes) -> Dataset:
    if cfg.max_images:
        images, labels = images[: cfg.max_images], labels[: cfg.max_images]
    return Dataset(DATASETS[cfg.name], _u8(images[:, None]), torch.from_numpy(labels.astype(np.int64)),  # [N, 1, 28, 28]
                   cfg.range, source, classes)


def _folder(cfg: DataConfig, seed: int) -> Dataset:
    images, labels, class_names, scan = load_folder(cfg.root, cfg.resolution, cfg.channels, cfg.labels,
                                                    cfg.max_images, cfg.background)
    y = torch.from_numpy(labels) if labels is not None else None
    return Dataset(DATASETS["folder"], _u8(images), y, cfg.range, cfg.root, tuple(class_names),
                   extra={"summary": scan.summary()})


# Fixed, so that every run (whatever its train.seed) sees the same Stacked MNIST images.
STACKED_SEED = 2018


def stack_digits(images: np.ndarray, labels: np.ndarray, n: int, seed: int = STACKED_SEED):
    """n RGB images [n, 3, 28, 28] whose channels are three MNIST digits drawn independently and
    uniformly (with replacement), and their modes 100 * red + 10 * green + blue digit (0..999), as in
    the Stacked MNIST of Srivastava et al. 2017 (VEEGAN) and Lin et al. 2018 (PacGAN)."""
    pick = np.random.default_rng(seed).integers(0, len(images), size=(n, 3))
    mode = labels[pick].astype(np.int64) @ np.array([100, 10, 1])
    return images[pick], mode


def _stacked_mnist(cfg: DataConfig, seed: int) -> Dataset:
    images, labels, source = load_idx_split("mnist", cfg.split, cfg.root)
    n = cfg.max_images or len(images)
    stacked, mode = stack_digits(images, labels, n)
    return Dataset(DATASETS["stacked-mnist"], _u8(stacked), torch.from_numpy(mode), cfg.range,
                   f"{n} digit triples from mnist {cfg.split} ({source})", tuple(f"{i:03d}" for i in range(1000)))


def toy_std(cfg: DataConfig) -> float:
    return cfg.toy_std or (0.01 if cfg.name == "ring" else 0.05)


def toy_centres(cfg: DataConfig) -> torch.Tensor:
    if cfg.name == "ring":
        return ring_centres(cfg.toy_ring_modes, cfg.toy_ring_radius)
    return grid_centres(cfg.toy_grid_side, cfg.toy_grid_spacing)


def _toy(cfg: DataConfig, seed: int) -> Dataset:
    centres, std = toy_centres(cfg), toy_std(cfg)
    x, mode = sample_mixture(centres, std, cfg.toy_num_samples, seed)
    return Dataset(DATASETS[cfg.name], x, mode, cfg.range, f"{len(centres)} Gaussians, std {std}",
                   tuple(str(i) for i in range(len(centres))), centres)


def fake_dataset(cfg: DataConfig, seed: int = 0, n: int = 256) -> Dataset:
    """Random images of the configured shape, for `--dry-run` (no files read)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, cfg.channels, cfg.resolution, cfg.resolution), generator=g, dtype=torch.uint8)
    return Dataset(DATASETS["fake"], x, torch.randint(10, (n,), generator=g), cfg.range, "random tensors",
                   tuple(str(i) for i in range(10)))


# --- validation rules ------------------------------------------------------------------------------

def _grey28(cfg: DataConfig) -> str | None:
    if cfg.resolution != 28 or cfg.channels != 1:
        return f"{cfg.name} images are 28x28 grey: set data.resolution=28 data.channels=1"
    if cfg.name == "mnist-embedded" and cfg.split != "train":
        return "mnist-embedded holds training images only: use data.split=train"
    return None


def _stacked_check(cfg: DataConfig) -> str | None:
    if cfg.resolution != 28 or cfg.channels != 3:
        return "stacked-mnist images are three 28x28 digits as RGB: set data.resolution=28 data.channels=3"
    return None


def _folder_check(cfg: DataConfig) -> str | None:
    from ganforge.data.folder import parse_background

    if parse_background(cfg.background) is None:
        return f"data.background={cfg.background!r}: use white, black or a colour as #rrggbb"
    return None if cfg.root else "data.name=folder needs data.root=PATH/TO/IMAGES"


def _toy_check(cfg: DataConfig) -> str | None:
    if cfg.toy_num_samples <= 0:
        return "data.toy_num_samples must be positive"
    if cfg.toy_std is not None and cfg.toy_std <= 0:
        return "data.toy_std must be positive"
    return None


_ALL_METRICS = ("fid", "kid", "prdc", "modes", "memorization")

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    DatasetSpec("mnist", "image", "MNIST digits (IDX files on the data search path)", _idx, check=_grey28,
                num_classes=10, real_splits="mnist", feature_net="mnist-cnn", modes="labels",
                default_metrics=("parzen", *_ALL_METRICS)),
    DatasetSpec("fashion-mnist", "image", "Fashion-MNIST (IDX files on the data search path)", _idx, check=_grey28,
                num_classes=10, real_splits="fashion-mnist", feature_net="fashion-mnist-cnn", modes="labels",
                default_metrics=_ALL_METRICS),
    DatasetSpec("mnist-embedded", "image", "MNIST train[0:10000], shipped inside the package", _embedded,
                check=_grey28, num_classes=10, real_splits="mnist", feature_net="mnist-cnn", modes="labels",
                default_metrics=("parzen", *_ALL_METRICS), train_subset=10_000, embedded=True),
    DatasetSpec("stacked-mnist", "image", "three MNIST digits as RGB channels, 1,000 modes", _stacked_mnist,
                check=_stacked_check, num_classes=1000, modes="stacked", default_metrics=("modes",)),
    DatasetSpec("folder", "image", "your images: data.name=folder data.root=PATH", _folder, check=_folder_check,
                feature_net="inception-v3", default_metrics=("fid", "kid", "prdc"), labels_if_asked=True),
    DatasetSpec("ring", "points", "8 Gaussians on a ring (toy 2-D)", _toy, check=_toy_check, modes="toy",
                default_metrics=("fid", "prdc", "modes")),
    DatasetSpec("grid", "points", "25 Gaussians on a grid (toy 2-D)", _toy, check=_toy_check, modes="toy",
                default_metrics=("fid", "prdc", "modes")),
    DatasetSpec("fashion-edges", "image", "Fashion-MNIST items (B) from their Sobel edge maps (A), paired, 32 px",
                translation.fashion_edges, check=translation.check, translation="paired"),
    DatasetSpec("fashion-sneaker2boot", "image", "Fashion-MNIST sneakers (A) and ankle boots (B), unpaired, 32 px",
                translation.fashion_sneaker2boot, check=translation.check, translation="unpaired"),
    DatasetSpec("paired-folder", "image", "your pairs: data.root with A/ and B/ holding files of the same names",
                translation.paired_folder, check=translation.check, translation="paired"),
    DatasetSpec("unpaired-folder", "image", "your two domains: data.root with trainA/ and trainB/ (CycleGAN's layout)",
                translation.unpaired_folder, check=translation.check, translation="unpaired"),
    DatasetSpec("fake-paired", "image", "random image pairs (--dry-run of a paired translation model)", translation.fake,
                check=translation.check, translation="paired"),
    DatasetSpec("fake-unpaired", "image", "random images in two domains (--dry-run of CycleGAN)", translation.fake,
                check=translation.check, translation="unpaired"),
    DatasetSpec("fake", "image", "random images of the configured shape (--dry-run)", fake_dataset,
                num_classes=10, default_metrics=()),
)}


def build_dataset(cfg: DataConfig, seed: int = 0) -> Dataset:
    return DATASETS[cfg.name].load(cfg, seed)
