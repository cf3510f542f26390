"""Two-domain data for image-to-image translation: a batch is {"a": domain A, "x": domain B}.

paired    `a[i]` is the input whose answer is `x[i]` (pix2pix): Fashion-MNIST with its edge maps
          (`fashion-edges`, the edges2shoes idea), or a folder with A/ and B/ holding files of the
          same names (`paired-folder`).
unpaired  two sets of images with no correspondence (CycleGAN): Fashion-MNIST sneakers and ankle
          boots (`fashion-sneaker2boot`, the horse <-> zebra idea), or the reference repository's
          trainA/ and trainB/ folders (`unpaired-folder`). The smaller domain is repeated in a
          fixed shuffled order up to the larger one's size, so `a` and `x` have one length and the
          trainer's batching is the same as for any dataset; CycleGAN's losses never compare an
          `a[i]` with its `x[i]`, so which ones meet does not matter.

Held-out images (Fashion-MNIST's test split, testA/ testB/ where present, else the first
training images, as `extra["held_out"]["from"]` says) are kept in `extra["held_out"]` for the
fixed sample grids and the benchmarks.
Images are resized to data.resolution x (data.image_width or data.resolution): non-square works.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.config import DataConfig
from ganforge.data.dataset import Dataset, DatasetSpec
from ganforge.data.mnist import load_idx_split
from ganforge.data.registry import DATASETS, register
from ganforge.data.folder import (EXTENSIONS, DataWarning, FolderScan, candidates, parse_background,
                                  read_images)
from ganforge.core.errors import DataError

SNEAKER, ANKLE_BOOT = 7, 9  # Fashion-MNIST classes
HELD_OUT = 1000  # images per domain kept aside for grids and benchmarks (the test split's first)
TRAINING = "the training images (no held-out ones given)"  # where fixed inputs come from otherwise


def image_size(cfg: DataConfig) -> tuple[int, int]:
    """(H, W) of the translation datasets' images."""
    return cfg.resolution, cfg.image_width or cfg.resolution


def resize(images: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """uint8 [N, 28, 28] -> uint8 [N, 1, H, W], bilinear."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float()[:, None]
    if tuple(x.shape[-2:]) != size:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def edge_map(images: torch.Tensor, threshold: float = 0.25) -> torch.Tensor:
    """uint8 [N, 1, H, W] -> their edges as black lines on white, uint8 [N, 1, H, W]: the Sobel
    gradient magnitude, scaled by each image's largest, above `threshold` (the edges2shoes
    inputs are line drawings of the same kind, from HED)."""
    x = images.float() / 255
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    k = torch.stack([kx, kx.T])[:, None]  # [2, 1, 3, 3]: d/dx, d/dy
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k)
    mag = g.pow(2).sum(1, keepdim=True).sqrt()
    mag = mag / mag.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-8)
    return torch.where(mag > threshold, 0, 255).to(torch.uint8)


def _equal_length(a: torch.Tensor, b: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The smaller domain repeated in a fixed shuffled order up to the larger one's size."""
    n = max(len(a), len(b))
    g = torch.Generator().manual_seed(seed)

    def grow(t):
        if len(t) == n:
            return t
        order = torch.cat([torch.randperm(len(t), generator=g) for _ in range(-(-n // len(t)))])[:n]
        return t[order]

    return grow(a), grow(b)


def _dataset(spec_name: str, cfg: DataConfig, a, x, source: str, held_out: dict, paired: bool, seed: int = 0):
    if not paired:
        a, x = _equal_length(a, x, seed=20170330)  # fixed: every run sees the same pairing
    if cfg.max_images:
        a, x = a[: cfg.max_images], x[: cfg.max_images]
    return Dataset(DATASETS[spec_name], x, None, cfg.range, source, a=a, extra={"held_out": held_out})


def _fashion(cfg: DataConfig, split: str):
    return load_idx_split("fashion-mnist", split, cfg.root)


def _fashion_held_out(cfg: DataConfig, pick):
    """The held-out images from the test split when it is there, else None."""
    try:
        images, labels, _ = _fashion(cfg, "test")
    except DataError:
        return None
    return pick(images, labels)


def fashion_edges(cfg: DataConfig, seed: int) -> Dataset:
    size = image_size(cfg)
    images, _, source = _fashion(cfg, cfg.split)
    x = resize(images, size)

    def pick(imgs, labels):
        b = resize(imgs[:HELD_OUT], size)
        return {"a": edge_map(b), "x": b, "from": "the test split"}

    held = _fashion_held_out(cfg, pick) or {"a": edge_map(x[:64]), "x": x[:64], "from": TRAINING}
    return _dataset("fashion-edges", cfg, edge_map(x), x, f"Fashion-MNIST {cfg.split} and its Sobel edges ({source})",
                    held, paired=True)


def fashion_sneaker2boot(cfg: DataConfig, seed: int) -> Dataset:
    size = image_size(cfg)
    images, labels, source = _fashion(cfg, cfg.split)

    def pick(imgs, labs):
        return {"a": resize(imgs[labs == SNEAKER][:HELD_OUT], size), "x": resize(imgs[labs == ANKLE_BOOT][:HELD_OUT], size),
                "from": "the test split"}

    a, x = resize(images[labels == SNEAKER], size), resize(images[labels == ANKLE_BOOT], size)
    held = _fashion_held_out(cfg, pick) or {"a": a[:64], "x": x[:64], "from": TRAINING}
    return _dataset("fashion-sneaker2boot", cfg, a, x,
                    f"Fashion-MNIST {cfg.split}: {len(a)} sneakers (A), {len(x)} ankle boots (B) ({source})",
                    held, paired=False)


def fake(cfg: DataConfig, seed: int, n: int = 64) -> Dataset:
    """Random image pairs of the configured size, for `--dry-run` (no files read)."""
    g = torch.Generator().manual_seed(0)
    a, x = (torch.randint(0, 256, (n, cfg.channels, *image_size(cfg)), generator=g, dtype=torch.uint8) for _ in "ax")
    return _dataset(cfg.name, cfg, a, x, "random tensors", {"a": a[:8], "x": x[:8], "from": TRAINING},
                    paired=cfg.name == "fake-paired")


# --- folders --------------------------------------------------------------------------------------

def _root(cfg: DataConfig, layout: str) -> Path:
    root = Path(cfg.root)
    if not root.is_dir():
        what = "is a file" if root.exists() else "no such folder"
        raise DataError(f"data.root={root}: {what} (data.name={cfg.name} needs a folder with {layout})")
    return root


def _domain(root: Path, sub: str, cfg: DataConfig, required: bool = True) -> tuple[dict[str, np.ndarray], FolderScan]:
    """{relative path without suffix: uint8 [C, H, W]} of root/sub, and the scan."""
    folder = root / sub
    if not folder.is_dir():
        if not required:
            return {}, FolderScan(folder)
        found = ", ".join(sorted(p.name + "/" for p in root.iterdir() if p.is_dir())) or "no sub-folders"
        raise DataError(f"{root}: no {sub}/ folder (data.name={cfg.name} expects {_LAYOUT[cfg.name]}; found {found})")
    scan = FolderScan(folder)
    read = read_images(candidates(folder, scan), image_size(cfg), cfg.channels, parse_background(cfg.background), scan)
    scan.used = len(read)
    return {p.relative_to(folder).with_suffix("").as_posix(): image for p, image in read}, scan


def _warn(*scans: FolderScan) -> None:
    for scan in scans:
        message = scan.warning()
        if message:
            warnings.warn(message, DataWarning, stacklevel=3)


def _stack(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images))


def paired_folder(cfg: DataConfig, seed: int) -> Dataset:
    root = _root(cfg, _LAYOUT["paired-folder"])
    a, scan_a = _domain(root, "A", cfg)
    b, scan_b = _domain(root, "B", cfg)
    for name in sorted(set(a) - set(b)):
        scan_a.skip("file(s) without a partner of the same name in B/", root / "A" / name)
    for name in sorted(set(b) - set(a)):
        scan_b.skip("file(s) without a partner of the same name in A/", root / "B" / name)
    names = sorted(set(a) & set(b))
    _warn(scan_a, scan_b)
    if not names:
        raise DataError(f"{root}: no pair of images found: A/ and B/ need files of the same names "
                        f"(A/: {scan_a.summary()}; B/: {scan_b.summary()}; image types: {', '.join(sorted(EXTENSIONS))})")
    A, B = _stack([a[n] for n in names]), _stack([b[n] for n in names])
    return _dataset("paired-folder", cfg, A, B, f"{root} ({len(names)} pairs)", {"a": A[:64], "x": B[:64], "from": TRAINING},
                    paired=True)


def unpaired_folder(cfg: DataConfig, seed: int) -> Dataset:
    root = _root(cfg, _LAYOUT["unpaired-folder"])
    a, scan_a = _domain(root, "trainA", cfg)
    b, scan_b = _domain(root, "trainB", cfg)
    test_a, scan_ta = _domain(root, "testA", cfg, required=False)
    test_b, scan_tb = _domain(root, "testB", cfg, required=False)
    _warn(scan_a, scan_b, scan_ta, scan_tb)
    for sub, images, scan in (("trainA", a, scan_a), ("trainB", b, scan_b)):
        if not images:
            raise DataError(f"{root / sub}: no usable image found ({scan.summary()})")
    A, B = _stack([a[n] for n in sorted(a)]), _stack([b[n] for n in sorted(b)])
    held = {"a": _stack([test_a[n] for n in sorted(test_a)]) if test_a else A[:64],
            "x": _stack([test_b[n] for n in sorted(test_b)]) if test_b else B[:64],
            "from": "testA/" if test_a else TRAINING}
    return _dataset("unpaired-folder", cfg, A, B, f"{root} ({len(A)} images in trainA, {len(B)} in trainB)", held,
                    paired=False)


_LAYOUT = {"paired-folder": "A/ and B/ sub-folders holding files of the same names",
           "unpaired-folder": "trainA/ and trainB/ sub-folders (testA/ and testB/ optional)"}


def check(cfg: DataConfig) -> str | None:
    if cfg.name.endswith("-folder"):
        if not cfg.root:
            return f"data.name={cfg.name} needs data.root=PATH (a folder with {_LAYOUT[cfg.name]})"
        if parse_background(cfg.background) is None:
            return f"data.background={cfg.background!r}: use white, black or a colour as #rrggbb"
    elif cfg.name.startswith("fashion-") and cfg.channels != 1:
        return f"{cfg.name} images are grey: set data.channels=1"
    if cfg.resolution < 8 or cfg.image_width < 0 or (cfg.image_width and cfg.image_width < 8):
        return f"data.resolution={cfg.resolution}, data.image_width={cfg.image_width}: images need at least 8 x 8 pixels"
    return None


register(DatasetSpec("fashion-edges", "image", "Fashion-MNIST items (B) from their Sobel edge maps (A), paired, 32 px",
                     fashion_edges, check=check, translation="paired"))
register(DatasetSpec("fashion-sneaker2boot", "image", "Fashion-MNIST sneakers (A) and ankle boots (B), unpaired, 32 px",
                     fashion_sneaker2boot, check=check, translation="unpaired"))
register(DatasetSpec("paired-folder", "image", "your pairs: data.root with A/ and B/ holding files of the same names",
                     paired_folder, check=check, translation="paired"))
register(DatasetSpec("unpaired-folder", "image", "your two domains: data.root with trainA/ and trainB/ (CycleGAN's layout)",
                     unpaired_folder, check=check, translation="unpaired"))
register(DatasetSpec("fake-paired", "image", "random image pairs (--dry-run of a paired translation model)", fake,
                     check=check, translation="paired", dry_run=True))
register(DatasetSpec("fake-unpaired", "image", "random images in two domains (--dry-run of CycleGAN)", fake,
                     check=check, translation="unpaired", dry_run=True))
