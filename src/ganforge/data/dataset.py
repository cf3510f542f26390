"""What a dataset is (`DatasetSpec`, one per name, in the registry of data/registry.py) and what a
loaded one holds (`Dataset`: samples in memory, batched by index into dicts)."""

from __future__ import annotations

import numbers
import signal
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from ganforge.core.errors import DataError
from ganforge.data.captions import Captions
from ganforge.data.sources import IdxFiles
from ganforge.config import DataConfig


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    kind: str  # "image" | "points"
    summary: str  # one line for `ganforge data list`
    load: Callable[["DataConfig", int], "Dataset"]  # (data config, seed) -> Dataset
    check: Callable[["DataConfig"], str | None] = lambda cfg: None  # a message when the config cannot work
    num_classes: int | None = None  # None: unlabelled, or the classes come from the files (folder)
    real_splits: str | None = None  # the IDX dataset whose standard splits metrics may read
    feature_net: str | None = None  # the shipped classifier whose features FID / KID / PRDC use
    modes: str | None = None  # how the modes metric reads samples: "labels" | "stacked" | "toy"
    default_metrics: tuple[str, ...] = ()
    train_subset: int | None = None  # trains on the first N images of the real training split
    embedded: bool = False  # ships inside the package (metrics fall back to it offline)
    labels_if_asked: bool = False  # labelled only with data.labels=true (folder: one sub-folder per class)
    translation: str | None = None  # two domains for image-to-image models: "paired" | "unpaired"
    dry_run: bool = False  # random data of the configured shape that `--dry-run` trains on (no files read)
    classes: tuple[str, ...] = ()  # class names, when fixed by the dataset (not read from files)
    splits: tuple[str, ...] = ("train",)  # data.split values it has
    files: IdxFiles | None = None  # the files `ganforge data fetch` downloads and checks
    mixture: Callable[["DataConfig"], tuple[torch.Tensor, float]] | None = None  # toy data: (centres, std)
    captioned: bool = False  # every image comes with captions (text-to-image data)
    captions_if_asked: bool = False  # captioned with data.captions=true (folder: caption files)

    def has_captions(self, cfg: "DataConfig") -> bool:
        return self.captioned or (self.captions_if_asked and cfg.captions)

    def has_labels(self, cfg: "DataConfig") -> bool:
        return self.num_classes is not None or (self.labels_if_asked and (cfg.labels or bool(cfg.labels_file)))

    def sample_shape(self, cfg: "DataConfig") -> tuple[int, ...]:
        """The shape of one sample as the nets see it, from the config alone (no files read)."""
        if self.kind == "points":
            return (2,)
        return (cfg.channels, cfg.resolution, cfg.image_width or cfg.resolution)


class LazyImages:
    """uint8 images [N, C, H, W] read from their files when indexed (data.storage=stream): what a
    tensor of them offers the code that batches and splits data (len, shape, indexing), without
    holding them. `read(item)` gives one image as uint8 [C, H, W]."""

    dtype = torch.uint8

    def __init__(self, items: list, shape: tuple[int, ...], read: Callable[[object], np.ndarray]):
        self.items, self._shape, self.read = list(items), tuple(shape), read

    def __len__(self) -> int:
        return len(self.items)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.items), *self._shape))

    def _positions(self, idx) -> list[int] | range:
        if isinstance(idx, slice):
            return range(len(self.items))[idx]
        idx = torch.as_tensor(idx)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().flatten()
        return [int(i) for i in idx.flatten()]

    def __getitem__(self, idx) -> torch.Tensor:
        """The images at idx (an int, a slice, indices or a mask), decoded now."""
        if isinstance(idx, numbers.Integral):
            return torch.from_numpy(np.ascontiguousarray(self.read(self.items[int(idx)])))
        positions = self._positions(idx)
        images = np.empty((len(positions), *self._shape), dtype=np.uint8)
        for k, i in enumerate(positions):
            images[k] = self.read(self.items[i])
        return torch.from_numpy(images)

    def subset(self, idx) -> "LazyImages":
        """The images at idx, still unread."""
        return LazyImages([self.items[i] for i in self._positions(idx)], self._shape, self.read)


def rows(x, idx):
    """x[idx] for splitting data into parts: stays unread for LazyImages."""
    return x.subset(idx) if isinstance(x, LazyImages) else x[idx]


def _reader_process(worker_id: int) -> None:
    """A DataLoader worker leaves Ctrl-C and SIGTERM to the training process, which stops at the
    end of its step and closes the feed (a worker killed by them would fail that step instead)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class _ReadBatches(torch.utils.data.Dataset):
    """For a DataLoader whose sampler yields (step, indices): each worker reads one whole batch."""

    def __init__(self, x: LazyImages):
        self.x = x

    def __getitem__(self, key):
        step, idx = key
        return step, idx, self.x[idx]


def _as_is(item):
    return item


def to_range(x: torch.Tensor, value_range: str) -> torch.Tensor:
    """uint8 images -> float32 in [-1, 1] (signed) or [0, 1] (unit); other tensors just as float32."""
    if x.dtype != torch.uint8:
        return x.float()
    x = x.float().div_(255.0)
    return x.mul_(2).sub_(1) if value_range == "signed" else x


@dataclass
class Dataset:
    spec: DatasetSpec
    x: torch.Tensor  # uint8 [N, C, H, W] images, or float32 [N, 2] points
    y: torch.Tensor | None  # int64 [N] class labels, or None
    value_range: str  # "signed" ([-1, 1]) or "unit" ([0, 1]): what `batch` gives images as
    source: str  # where the data came from, for logs and reports
    classes: tuple[str, ...] = ()
    centres: torch.Tensor | None = None  # toy mixtures: [M, 2] mode centres
    extra: dict = field(default_factory=dict)
    a: torch.Tensor | None = None  # translation data: domain A images (uint8), a[i] batched with x[i]
    degrader: Callable | None = None  # data.degrade: (images, idx, step) -> (degraded, mask), both uint8
    # semi-supervised data (data.labels_per_class, data.labels_file): the indices whose labels training
    # may use; batches then carry no "c", so no other label can reach a recipe
    labelled: torch.Tensor | None = None
    # captioned data (text-to-image): each image's captions; batches then carry "t", a caption id
    # per image (an index into captions.texts), drawn for the step
    captions: "Captions | None" = None

    def __len__(self) -> int:
        return len(self.x)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def to_float(self, x: torch.Tensor) -> torch.Tensor:
        """Stored samples -> float32 in the configured range (the same arithmetic on any device)."""
        return to_range(x, self.value_range)

    @property
    def input_channels(self) -> int:
        """Channels of the "a" images paired models take (translation or degraded data)."""
        return (self.a if self.a is not None else self.x).shape[1]

    def batch(self, idx: torch.Tensor, device: torch.device | str = "cpu", step: int | None = None) -> dict[str, torch.Tensor]:
        """{"x": float32 samples [B, ...]}, {"a": domain A images [B, ...]} for translation data,
        {"a": degraded images, "mask": [B, 1, H, W], 1 = to be produced} for degraded data (drawn
        for this training `step`; by index when step is None) and {"c": labels [B]} when the data
        has labels (and is not semi-supervised); the uint8 images travel to the device as they are stored and are converted there."""
        return self._batch_of(self.x[idx], idx, device, step)

    def _batch_of(self, x: torch.Tensor, idx: torch.Tensor, device, step: int | None) -> dict[str, torch.Tensor]:
        """`batch` for the stored samples x = self.x[idx], already read."""
        out = {"x": self.to_float(x.to(device, non_blocking=True))}
        if self.a is not None:
            out["a"] = self.to_float(self.a[idx].to(device, non_blocking=True))
        if self.degrader is not None:
            a, mask = self.degrader(x, idx, step)
            out["a"] = self.to_float(a.to(device, non_blocking=True))
            out["mask"] = mask.to(device, non_blocking=True).float()
        if self.y is not None and self.labelled is None:
            out["c"] = self.y[idx].to(device, non_blocking=True)
        if self.captions is not None:
            out["t"] = self.captions.draw(idx, step).to(device, non_blocking=True)
        return out

    @property
    def streamed(self) -> bool:
        return isinstance(self.x, LazyImages)

    def feed(self, plan: Iterable[tuple[int, torch.Tensor]], device: torch.device | str = "cpu",
             workers: int = 0) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
        """(step, batch) for every (step, indices) of the plan, in its order. Streamed images are
        read ahead by `workers` DataLoader processes (each reads whole batches); anything else is
        batched here as it is asked for. The batches are the same either way."""
        if not self.streamed or workers <= 0:
            for step, idx in plan:
                yield step, self.batch(idx, device, step)
            return
        loader = torch.utils.data.DataLoader(_ReadBatches(self.x), sampler=plan, batch_size=None,
                                             num_workers=workers, collate_fn=_as_is, worker_init_fn=_reader_process)
        batches = iter(loader)
        while True:
            try:
                step, idx, x = next(batches)
            except StopIteration:
                return
            except DataError as e:  # raised in a worker: torch wraps it in the worker's traceback
                raise DataError(str(e).strip().splitlines()[-1].split("DataError: ", 1)[-1]) from None
            yield step, self._batch_of(x, idx, device, step)

    def samples(self, n: int | None = None) -> torch.Tensor:
        """The first n samples (all by default) as float32 in the configured range, on the CPU."""
        return self.to_float(self.x[:n])

    def pixel_mean(self) -> torch.Tensor:
        """Mean image in [0, 1] [C, H, W] (for nets that set an output bias from the marginals).
        Streamed images are read a chunk at a time, never all at once, and summed in float64 (the
        result may differ from the in-memory float32 mean in its last bit)."""
        if self.streamed:
            total = torch.zeros(self.sample_shape, dtype=torch.float64)
            for start in range(0, len(self), 1024):
                total += self.x[start:start + 1024].double().sum(0)
            return (total / (255.0 * len(self))).float()
        x = self.samples()
        return ((x + 1) / 2 if self.value_range == "signed" else x).mean(0)
