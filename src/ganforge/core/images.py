"""Pictures of samples: uint8 conversion, image grids, scatter plots of 2-D points and GIFs,
each written atomically. matplotlib is imported when first needed, with the non-interactive Agg
backend, so plotting works on machines without a screen.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ganforge.core.io import atomic_write


def to_uint8(x: torch.Tensor, value_range: str) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] or [0, 1] -> uint8 [N, H, W, C]."""
    x = x.detach().float().cpu()
    if value_range == "signed":
        x = (x + 1) / 2
    return (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def make_grid(images: np.ndarray, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """uint8 [N, H, W, C] -> one uint8 [rows*(H+pad)+pad, cols*(W+pad)+pad, C] image."""
    n, h, w, c = images.shape
    cols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + k * (w + pad): pad + k * (w + pad) + w] = images[i]
    return grid


def save_image_grid(x: torch.Tensor, path: Path, value_range: str, scale: int = 2, nrow: int | None = None) -> Path:
    """A PNG grid of images; `nrow` images per row (default: a square)."""
    from PIL import Image

    grid = make_grid(to_uint8(x, value_range), nrow)
    im = Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    atomic_write(path, lambda f: im.save(f, format=fmt))
    return path


def save_scatter(points: torch.Tensor, path: Path, real: torch.Tensor | None = None,
                 centres: torch.Tensor | None = None, title: str = "") -> Path:
    """Toy 2-D data: generated points over real points and the mixture's centres."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=2, c="0.75", label="real")
    ax.scatter(points[:, 0].cpu(), points[:, 1].cpu(), s=3, c="tab:blue", label="generated")
    if centres is not None:
        ax.scatter(centres[:, 0], centres[:, 1], s=30, marker="x", c="tab:red", label="modes")
    if real is not None or centres is not None:
        lim = float(max(real.abs().max() if real is not None else 0, centres.abs().max() if centres is not None else 0)) * 1.3
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=6)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format=path.suffix[1:].lower() or "png"))
    plt.close(fig)
    return path


def save_gif(frames: np.ndarray, path, duration_ms: int = 80, scale: int = 4):
    """uint8 [F, H, W, C] frames as a looping GIF (upscaled `scale` x, nearest), written atomically
    to a path, or into a file object."""
    from PIL import Image

    images = [Image.fromarray(f[..., 0] if f.shape[-1] == 1 else f).convert("RGB") for f in frames]
    if scale > 1:
        images = [im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST) for im in images]
    def write(f):
        images[0].save(f, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)

    if hasattr(path, "write"):  # a file object (the web explorer's walk, in memory)
        write(path)
    else:
        atomic_write(path, write)
    return path


def make_gif(frames: list[Path], path: Path, duration_ms: int = 200) -> Path | None:
    """A GIF of the sample grids in order, the last held longer. The final grid also comes first:
    a page shown without animation (a print, a static preview, a screenshot) shows a GIF's first
    frame, and that should be the trained generator, not the untrained one's grey noise."""
    from PIL import Image

    if not frames:
        return None
    images = [Image.open(f).convert("RGB") for f in [frames[-1], *frames]]
    durations = [duration_ms * 10] + [duration_ms] * (len(images) - 2) + [duration_ms * 10]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
