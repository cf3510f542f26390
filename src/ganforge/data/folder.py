"""A folder tree of images (PNG / JPEG / WebP / BMP) as one in-memory tensor.

Each image is converted to grey or RGB, resized so its shorter side is the target resolution
and centre-cropped to a square. Class labels come from the first level of sub-folders when asked.
Unreadable files are skipped and reported once, by count and name.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ganforge.errors import DataError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def _load_image(path: Path, resolution: int, channels: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("L" if channels == 1 else "RGB")
        w, h = im.size
        scale = resolution / min(w, h)
        new_w, new_h = max(resolution, round(w * scale)), max(resolution, round(h * scale))
        im = im.resize((new_w, new_h), Image.Resampling.LANCZOS)
        left, top = (new_w - resolution) // 2, (new_h - resolution) // 2
        im = im.crop((left, top, left + resolution, top + resolution))
        arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)  # [C, H, W]


def load_folder(root: str | Path, resolution: int, channels: int, labels: bool, max_images: int = 0):
    """Return (images uint8 [N, C, H, W], labels int64 [N] or None, class names)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data.root={root}: no such folder (data.name=folder needs a folder of images)")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
    classes = sorted({p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1})
    if labels and not classes:
        raise DataError(f"{root}: data.labels=true needs one sub-folder per class; found images only at the top")
    if max_images:
        files = files[:max_images]
    images, ys, bad = [], [], []
    for p in files:
        try:
            images.append(_load_image(p, resolution, channels))
        except Exception as e:  # Pillow raises many types for broken files; all mean "skip it"
            bad.append(f"{p.relative_to(root)} ({type(e).__name__})")
            continue
        if labels:
            parts = p.relative_to(root).parts
            ys.append(classes.index(parts[0]) if len(parts) > 1 else -1)
    if bad:
        shown = ", ".join(bad[:10]) + (f", ... ({len(bad) - 10} more)" if len(bad) > 10 else "")
        warnings.warn(f"{root}: skipped {len(bad)} unreadable file(s): {shown}", stacklevel=2)
    if not images:
        raise DataError(f"{root}: no usable image found (looked for {', '.join(sorted(EXTENSIONS))}"
                        + (f"; {len(bad)} file(s) could not be read" if bad else "") + ")")
    if labels and any(y < 0 for y in ys):
        raise DataError(f"{root}: data.labels=true but some images sit outside the class sub-folders")
    y = np.asarray(ys, dtype=np.int64) if labels else None
    return np.stack(images), y, classes
