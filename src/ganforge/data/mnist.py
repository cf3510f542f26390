"""MNIST and Fashion-MNIST from IDX files on the data search path, the MNIST subset shipped inside
the package, and Stacked MNIST: the datasets of the papers' tables. Splits as Goodfellow et al.
2014 used them: train = all 60,000 training images; train50k / validation = train[0:50000] /
train[50000:60000]; test = the t10k file."""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

import numpy as np
import torch

from ganforge.config import DataConfig
from ganforge.core.errors import DataError
from ganforge.data.dataset import Dataset, DatasetSpec
from ganforge.data.idx import read_idx, read_idx_bytes
from ganforge.data.registry import DATASETS, register
from ganforge.data.sources import FASHION_MNIST_FILES, MNIST_FILES, find_idx_file, missing_data_message

# sha256 of the files written by tools/build_embedded_mnist.py (reproducible byte for byte).
EMBEDDED_SHA256 = {
    "mnist10k-train-images-idx3-ubyte.gz": "11a772a6dc925b05dd399880865d80fdc378f1482a27072a7fe2c10be2367eda",
    "mnist10k-train-labels-idx1-ubyte.gz": "4e8b4ac90e302aa725dd50c14268e8630d3941e30cf889ea15dfa1a6dedf8665",
}

# MNIST as split by Goodfellow et al. 2014: train[0:50000] for training, train[50000:60000] to validate.
_SPLITS = {"train": ("train", slice(None)), "train50k": ("train", slice(0, 50_000)),
           "validation": ("train", slice(50_000, 60_000)), "test": ("test", slice(None))}


SPLITS = tuple(_SPLITS)
DIGITS = tuple(str(i) for i in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


def _embedded_bytes(name: str) -> bytes:
    data = resources.files("ganforge.data").joinpath("assets", name).read_bytes()
    if hashlib.sha256(data).hexdigest() != EMBEDDED_SHA256[name]:
        raise DataError(f"the embedded data file {name} is damaged (sha256 mismatch); reinstall ganforge")
    return data


def load_embedded_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The first 10,000 MNIST training images [10000, 28, 28] uint8 and labels [10000] uint8."""
    images = read_idx_bytes(gzip.decompress(_embedded_bytes("mnist10k-train-images-idx3-ubyte.gz")), "embedded")
    labels = read_idx_bytes(gzip.decompress(_embedded_bytes("mnist10k-train-labels-idx1-ubyte.gz")), "embedded")
    return images, labels


def load_idx_split(name: str, split: str, root: str = "") -> tuple[np.ndarray, np.ndarray, str]:
    """(images uint8 [N, 28, 28], labels uint8 [N], source folder) of a named IDX dataset split."""
    ds = idx_files(name)
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


def idx_files(name: str):
    """The IDX files of dataset `name` (mnist, fashion-mnist)."""
    files = DATASETS[name].files if name in DATASETS else None
    if files is None:
        known = ", ".join(n for n, s in DATASETS.items() if s.files is not None)
        raise DataError(f"unknown dataset '{name}': known IDX datasets are {known}")
    return files


def _u8(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images))


def _idx(cfg: DataConfig, seed: int) -> Dataset:
    images, labels, source = load_idx_split(cfg.name, cfg.split, cfg.root)
    return _labelled_digits(cfg, images, labels, source, DATASETS[cfg.name].classes)


def _embedded(cfg: DataConfig, seed: int) -> Dataset:
    images, labels = load_embedded_mnist()
    return _labelled_digits(cfg, images, labels, "embedded MNIST train[0:10000]", DIGITS)


def _labelled_digits(cfg, images, labels, source, classes) -> Dataset:
    if cfg.max_images:
        images, labels = images[: cfg.max_images], labels[: cfg.max_images]
    return Dataset(DATASETS[cfg.name], _u8(images[:, None]), torch.from_numpy(labels.astype(np.int64)),  # [N, 1, 28, 28]
                   cfg.range, source, classes)


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
    spec = DATASETS["stacked-mnist"]
    return Dataset(spec, _u8(stacked), torch.from_numpy(mode), cfg.range,
                   f"{n} digit triples from mnist {cfg.split} ({source})", spec.classes)


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


_ALL_METRICS = ("fid", "kid", "prdc", "modes", "memorization")


register(DatasetSpec("mnist", "image", "MNIST digits (IDX files on the data search path)", _idx, check=_grey28,
                     num_classes=10, real_splits="mnist", feature_net="mnist-cnn", modes="labels",
                     default_metrics=("parzen", *_ALL_METRICS), classes=DIGITS, splits=SPLITS, files=MNIST_FILES))
register(DatasetSpec("fashion-mnist", "image", "Fashion-MNIST (IDX files on the data search path)", _idx,
                     check=_grey28, num_classes=10, real_splits="fashion-mnist", feature_net="fashion-mnist-cnn",
                     modes="labels", default_metrics=_ALL_METRICS, classes=FASHION_CLASSES, splits=SPLITS,
                     files=FASHION_MNIST_FILES))
register(DatasetSpec("mnist-embedded", "image", "MNIST train[0:10000], shipped inside the package", _embedded,
                     check=_grey28, num_classes=10, real_splits="mnist", feature_net="mnist-cnn", modes="labels",
                     default_metrics=("parzen", *_ALL_METRICS), train_subset=10_000, embedded=True, classes=DIGITS))
register(DatasetSpec("stacked-mnist", "image", "three MNIST digits as RGB channels, 1,000 modes", _stacked_mnist,
                     check=_stacked_check, num_classes=1000, modes="stacked", default_metrics=("modes",),
                     classes=tuple(f"{i:03d}" for i in range(1000)), splits=SPLITS))
