"""A folder tree of images (PNG / JPEG / WebP / BMP / GIF / TIFF) as one in-memory tensor.

Each image is turned upright (EXIF orientation), composited onto `background` when it has
transparency (RGBA, LA, or a palette / grey / RGB image with a transparent colour), brought to
8 bits (16-bit PNGs are rescaled, not clipped), converted to grey or RGB, resized so its
shorter side is the target resolution and centre-cropped to a square. An animated GIF / WebP
gives its first frame. Class labels come from the first level of sub-folders when asked, or from a labels file that
may name only some of the images (semi-supervised learning: the others stay unlabelled, -1).

Nothing is skipped silently: unreadable files, broken links and files of other types are named
in one warning, and the counts are kept for error messages (`FolderScan.summary`).
"""

from __future__ import annotations

import csv
import functools
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ganforge.config import DataConfig
from ganforge.core.errors import DataError
from ganforge.core.paths import RUN_MARKER
from ganforge.data.captions import CAPTION_FILES, Captions, folder_captions
from ganforge.data.dataset import Dataset, DatasetSpec, LazyImages, rows
from ganforge.data.folder_store import cached, choose_storage, in_memory, streamed
from ganforge.data.registry import DATASETS, register

EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0)}
_SHOWN = 20  # file names shown per kind of skip in the warning


class DataWarning(UserWarning):
    """Something about the user's data that did not stop the run (skipped files)."""


def parse_background(value: str) -> tuple[int, int, int] | None:
    """`white`, `black` or `#rrggbb` as an RGB triple; None when it is none of these."""
    if value in BACKGROUNDS:
        return BACKGROUNDS[value]
    if len(value) == 7 and value.startswith("#"):
        try:
            return tuple(int(value[i:i + 2], 16) for i in (1, 3, 5))
        except ValueError:
            return None
    return None


@dataclass
class FolderScan:
    """What was found under the root: images used, and every file left out, with the reason."""
    root: Path
    used: int = 0
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> relative paths
    storage: str = ""  # where the decoded images went, and why (data/folder_store.py)
    first_frame_of: list[str] = field(default_factory=list)  # animated files: only frame 0 used
    captions: list[list[str]] | None = None  # data.captions: each used image's captions

    def skip(self, reason: str, path: Path) -> None:
        self.skipped.setdefault(reason, []).append(str(path.relative_to(self.root)))

    @property
    def num_skipped(self) -> int:
        return sum(len(v) for v in self.skipped.values())

    def summary(self) -> str:
        text = f"{self.used} image(s) read from {self.root}"
        if self.skipped:
            text += f", {self.num_skipped} file(s) skipped (" + "; ".join(
                f"{len(v)} {reason}" for reason, v in self.skipped.items()) + ")"
        return text

    def warning(self) -> str | None:
        parts = [f"skipped {len(names)} {reason}: {_shown(names)}" for reason, names in self.skipped.items()]
        if self.first_frame_of:
            parts.append(f"used the first frame of {len(self.first_frame_of)} animated image(s): "
                         + _shown(self.first_frame_of))
        return f"{self.root}: " + "; ".join(parts) if parts else None


def _shown(names: list[str]) -> str:
    """The first names of a list, and how many more."""
    return ", ".join(names[:_SHOWN]) + (f", ... and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _to_8bit(im):
    """16- and 32-bit grey images (Pillow modes I;16*, I) rescaled to 0..255; Pillow's own
    convert("L") clips them, which turns a 16-bit image almost white."""
    from PIL import Image

    if im.mode.startswith("I;16") or im.mode == "I":
        arr = np.asarray(im, dtype=np.float64)
        if im.mode.startswith("I;16") or arr.max() > 255:  # 16-bit range; an "I" image of 0..255 stays
            arr = arr / 257.0  # 65535 -> 255
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    if im.mode == "F":  # float TIFFs: taken as 0..1
        return Image.fromarray(np.clip(np.rint(np.asarray(im) * 255.0), 0, 255).astype(np.uint8), "L")
    return im


def _composite(im, background: tuple[int, int, int]):
    """An image with transparency flattened onto the background colour (RGBA result's alpha
    dropped); images without transparency unchanged."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode in ("P", "L", "RGB") and "transparency" in im.info):
        im = im.convert("RGBA")
        flat = Image.new("RGBA", im.size, background + (255,))
        return Image.alpha_composite(flat, im).convert("RGB")
    return im


def load_image(path: Path, resolution: int | tuple[int, int], channels: int,
               background: tuple[int, int, int]) -> tuple[np.ndarray, bool]:
    """(uint8 [C, H, W], whether the file had more than one frame): scaled to cover `resolution`
    (a side, or (H, W)) and centre-cropped to it."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        animated = getattr(im, "n_frames", 1) > 1
        im.seek(0)
        try:
            im = ImageOps.exif_transpose(im)
        except Exception:  # a damaged EXIF block: the pixels are fine, use them as stored
            pass
        im = _composite(_to_8bit(im), background)
        im = im.convert("L" if channels == 1 else "RGB")
        out_h, out_w = (resolution, resolution) if isinstance(resolution, int) else resolution
        w, h = im.size
        scale = max(out_w / w, out_h / h)
        new_w, new_h = max(out_w, round(w * scale)), max(out_h, round(h * scale))
        im = im.resize((new_w, new_h), Image.Resampling.LANCZOS)
        left, top = (new_w - out_w) // 2, (new_h - out_h) // 2
        im = im.crop((left, top, left + out_w, top + out_h))
        arr = np.asarray(im, dtype=np.uint8)
    return (arr[None] if channels == 1 else arr.transpose(2, 0, 1)), animated


def candidates(root: Path, scan: FolderScan, captions: bool = False) -> list[Path]:
    """Image files under root, sorted; everything else is recorded in the scan as skipped (but for
    the caption files, when captions are read)."""
    runs = {m.parent for m in root.rglob(RUN_MARKER)}  # run.dir inside data.root: its grids are not data
    files = []
    for p in sorted(root.rglob("*")):
        if p.is_dir():
            continue
        if runs and any(parent in runs for parent in p.parents):
            scan.skip("file(s) inside ganforge run folders", p)
        elif p.is_symlink() and not p.exists():
            scan.skip("broken link(s)", p)
        elif captions and (p.suffix.lower() == ".txt" or p.parent == root and p.name in CAPTION_FILES):
            continue
        elif p.suffix.lower() not in EXTENSIONS:
            scan.skip(f"file(s) of another type (not {'/'.join(sorted(e[1:] for e in EXTENSIONS))})", p)
        elif not p.is_file():
            scan.skip("special file(s)", p)
        else:
            files.append(p)
    return files


def read_images(files: list[Path], size: int | tuple[int, int], channels: int, rgb: tuple[int, int, int],
                scan: FolderScan) -> list[tuple[Path, np.ndarray]]:
    """(path, uint8 [C, H, W]) for each file that reads; the others are recorded in the scan."""
    animated: list[Path] = []
    images, used = in_memory(files, _shape(size, channels), _reader(size, channels, rgb), scan.skip, animated,
                             f"reading {scan.root}")
    scan.first_frame_of += [str(p.relative_to(scan.root)) for p in animated]
    return list(zip(used, images))


def _shape(size: int | tuple[int, int], channels: int) -> tuple[int, int, int]:
    return (channels, size, size) if isinstance(size, int) else (channels, *size)


def _reader(size: int | tuple[int, int], channels: int, rgb: tuple[int, int, int]):
    return functools.partial(load_image, resolution=size, channels=channels, background=rgb)


def _stored(root: Path, files: list[Path], resolution: int, channels: int, rgb: tuple[int, int, int],
            scan: FolderScan, storage: str, budget_gb: float):
    """(images, the files they come from) where data.storage puts them (data/folder_store.py)."""
    shape, read, animated = _shape(resolution, channels), _reader(resolution, channels, rgb), []
    storage, why = choose_storage(storage, len(files), shape, budget_gb)
    desc = f"decoding {root}"
    if storage == "stream":
        images, used = streamed(files, shape, read, scan.skip, animated, f"checking {root}")
        scan.storage = f"streamed from the files; {why}"
    elif storage == "cache":
        images, used, what = cached(root, files, shape, {"size": resolution, "channels": channels, "background": rgb},
                                    read, scan.skip, animated, desc)
        scan.storage = f"{what}; {why}"
    else:
        images, used = in_memory(files, shape, read, scan.skip, animated, desc)
        scan.storage = f"decoded into memory; {why}"
    scan.first_frame_of += [str(p.relative_to(root)) for p in animated]
    return images, used


def read_labels_file(path: str | Path) -> dict[str, str]:
    """{relative path: label} from a CSV of `file,label` lines (a first line `file,label` is a header;
    blank lines are skipped). Every malformed line is an error naming the file and the line."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"data.labels_file={path} is a folder: give the CSV file (file,label lines)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"data.labels_file={path}: no such file (a CSV of file,label lines)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"data.labels_file={path}: not readable as UTF-8 text ({type(e).__name__}); "
                        "save it as UTF-8 CSV") from None
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error as e:
        raise DataError(f"data.labels_file={path}: not a CSV file ({str(e)[:120]}); write file,label lines") from None
    out: dict[str, str] = {}
    for n, row in enumerate(rows, 1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise DataError(f"data.labels_file={path}, line {n}: expected `file,label`, found {','.join(row)[:80]!r}")
        name, label = Path(row[0].strip()).as_posix(), row[1].strip()
        if n == 1 and (name, label) == ("file", "label"):
            continue
        if out.get(name, label) != label:
            raise DataError(f"data.labels_file={path}, line {n}: {name} is labelled both {out[name]!r} and {label!r}")
        out[name] = label
    if not out:
        raise DataError(f"data.labels_file={path}: names no image (a CSV of file,label lines)")
    return out


def _file_labels(used: list[Path], root: Path, named: dict[str, str], scan: FolderScan) -> tuple[list[int], list[str]]:
    """Class indices (-1: unlabelled) of the images read, from a labels file; the names it gives
    that are not among the images read are reported with the folder's other skips."""
    classes = sorted(set(named.values()))
    rel = [p.relative_to(root).as_posix() for p in used]
    ys = [classes.index(named[r]) if r in named else -1 for r in rel]
    missing = sorted(set(named) - set(rel))
    if missing:
        scan.skipped.setdefault("labels naming no image read", []).extend(missing)
    return ys, classes


def load_folder(root: str | Path, resolution: int, channels: int, labels: bool, max_images: int = 0,
                background: str = "white", labels_file: str = "", storage: str = "memory", budget_gb: float = 0.0,
                captions: bool = False):
    """Return (images uint8 [N, C, H, W], labels int64 [N] or None, class names, FolderScan).
    With `labels_file`, labels come from that file and images it does not name get -1. The images
    are an array in memory, an array mapped from the folder cache, or LazyImages (`storage`). With
    `captions`, only the images that have a caption are kept, their captions in `scan.captions`."""
    root = Path(root)
    if not root.is_dir():
        what = "is a file" if root.exists() else "no such folder"
        raise DataError(f"data.root={root}: {what} (data.name=folder needs a folder of images)")
    rgb = parse_background(background)
    if rgb is None:
        raise DataError(f"data.background={background!r}: use white, black or a colour as #rrggbb")
    scan = FolderScan(root)
    files = candidates(root, scan, captions)
    classes = sorted({p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1})
    if labels and not classes and not labels_file:
        raise DataError(f"{root}: data.labels=true needs one sub-folder per class; found images only at the top")
    if max_images:
        files = files[:max_images]
    named = read_labels_file(labels_file) if labels_file else None
    images, used = _stored(root, files, resolution, channels, rgb, scan, storage, budget_gb)
    if captions and used:
        scan.captions, kept = folder_captions(root, used, scan.skipped)
        if len(kept) < len(used):
            images, used = rows(images, kept), [used[k] for k in kept]
    ys = []
    if named is not None:
        ys, classes = _file_labels(used, root, named, scan)
    elif labels:
        for p in used:
            parts = p.relative_to(root).parts
            ys.append(classes.index(parts[0]) if len(parts) > 1 else -1)
    scan.used = len(used)
    message = scan.warning()
    if message:
        warnings.warn(message, DataWarning, stacklevel=2)
    if not used:
        raise DataError(f"{root}: no usable image found ({scan.summary()}; "
                        f"image types read: {', '.join(sorted(EXTENSIONS))})")
    if labels and named is None and any(y < 0 for y in ys):
        raise DataError(f"{root}: data.labels=true but some images sit outside the class sub-folders")
    if named is not None and all(y < 0 for y in ys):
        raise DataError(f"data.labels_file={labels_file}: names none of the {len(ys)} images read from {root} "
                        "(paths are relative to data.root, e.g. cats/001.png)")
    y = np.asarray(ys, dtype=np.int64) if labels or named is not None else None
    return images, y, classes, scan


@dataclass
class FolderProbe:
    """What a quick look at a folder found, for choosing defaults (`probe_folder`)."""
    root: Path
    num_files: int  # image files (by extension), before reading them all
    looked_at: int  # files opened for the numbers below
    short_side: int  # median shorter side of those, in pixels
    grey: float  # share of them with no colour (every pixel R = G = B)
    transparent: float  # share with an alpha channel or a transparent colour
    classes: tuple[str, ...]  # first-level sub-folders holding images
    unreadable: int  # of those opened


def probe_folder(root: str | Path, limit: int = 256) -> FolderProbe:
    """Open up to `limit` image files spread evenly over the folder (headers and a thumbnail each):
    sizes, colour and transparency, without loading every image."""
    from PIL import Image

    root = Path(root)
    if not root.is_dir():
        what = "is a file" if root.exists() else "no such folder"
        raise DataError(f"{root}: {what} (give a folder of images)")
    scan = FolderScan(root)
    files = candidates(root, scan)
    if not files:
        raise DataError(f"{root}: no image file found ({scan.summary()}; image types read: "
                        f"{', '.join(sorted(EXTENSIONS))})")
    step = max(1, len(files) // limit)
    sides, grey, transparent, unreadable = [], 0, 0, 0
    for p in files[::step][:limit]:
        try:
            with Image.open(p) as im:
                sides.append(min(im.size))
                transparent += im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
                flat = _composite(_to_8bit(im), BACKGROUNDS["white"]).convert("RGB")
                thumb = np.asarray(flat.resize((16, 16)), dtype=np.int16)
                grey += bool((thumb[..., 0] == thumb[..., 1]).all() and (thumb[..., 1] == thumb[..., 2]).all())
        except Exception:  # Pillow raises many types for broken files; the full read names them
            unreadable += 1
    looked = len(sides)
    if not looked:
        raise DataError(f"{root}: none of the {unreadable} image file(s) opened could be read")
    classes = tuple(sorted({p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1}))
    return FolderProbe(root, len(files), looked, int(np.median(sides)), grey / looked, transparent / looked,
                       classes, unreadable)


def _folder(cfg: DataConfig, seed: int) -> Dataset:
    images, labels, class_names, scan = load_folder(cfg.root, cfg.resolution, cfg.channels, cfg.labels,
                                                    cfg.max_images, cfg.background, cfg.labels_file,
                                                    cfg.storage, cfg.memory_budget_gb, cfg.captions)
    y = torch.from_numpy(labels) if labels is not None else None
    x = images if isinstance(images, LazyImages) else torch.from_numpy(np.ascontiguousarray(images))
    captions = Captions.from_lists(scan.captions, seed) if scan.captions is not None else None
    return Dataset(DATASETS["folder"], x, y, cfg.range, cfg.root, tuple(class_names),
                   extra={"summary": scan.summary(), "storage": scan.storage}, captions=captions)


def _folder_check(cfg: DataConfig) -> str | None:
    if parse_background(cfg.background) is None:
        return f"data.background={cfg.background!r}: use white, black or a colour as #rrggbb"
    if cfg.labels_file and cfg.labels:
        return "data.labels_file and data.labels=true both give labels: keep one"
    return None if cfg.root else "data.name=folder needs data.root=PATH/TO/IMAGES"


register(DatasetSpec("folder", "image", "your images: data.name=folder data.root=PATH", _folder, check=_folder_check,
                     feature_net="inception-v3", default_metrics=("fid", "kid", "prdc"), labels_if_asked=True,
                     captions_if_asked=True))
