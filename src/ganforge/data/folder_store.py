"""Where a folder's decoded images live (data.storage).

- memory: decoded into RAM by every run (one array, filled in place: no second copy);
- cache: decoded once into a .npy file of the user cache and mapped by every later run, which
  then starts in the time it takes to list the folder. The file's name is a hash of the folder's
  file list, each file's size and modification time, the transform (size, channels, background)
  and this format: a file added, changed or removed makes a new cache, never a stale one;
- stream: nothing is decoded up front; `Dataset.feed` has DataLoader workers read each batch
  from its files as training goes (for folders larger than the memory budget);
- auto: cache when the decoded images fit the memory budget, stream when they do not.

The images, and so the batches, are the same whichever holds them. The cache is written to a
temporary file and renamed when complete (its metadata last), under a lock, so that processes
starting together (torchrun ranks) decode once and a killed run leaves no half-written cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from ganforge.core.errors import DataError
from ganforge.data.dataset import LazyImages
from ganforge.data.sources import cache_dir

FORMAT = 1  # bump when the decoding changes what a cached image holds
Reader = Callable[[Path], "tuple[np.ndarray, bool]"]  # path -> (uint8 [C, H, W], animated)


def folder_cache_dir() -> Path:
    """$GANFORGE_FOLDER_CACHE, else folders/ in the user cache (~/.cache/ganforge)."""
    return Path(os.environ.get("GANFORGE_FOLDER_CACHE") or cache_dir() / "folders")


def memory_available() -> int:
    """Bytes of memory available now (MemAvailable on Linux; all physical memory elsewhere)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def budget_bytes(budget_gb: float) -> int:
    return int(budget_gb * 2**30) if budget_gb else memory_available() // 2


def choose_storage(asked: str, n: int, shape: tuple[int, ...], budget_gb: float) -> tuple[str, str]:
    """(storage, why) for n images of `shape`."""
    size, budget = n * int(np.prod(shape)), budget_bytes(budget_gb)
    if asked != "auto":
        return asked, f"data.storage={asked}"
    if size <= budget:
        return "cache", f"{_gb(size)} decoded fits the memory budget of {_gb(budget)}"
    return "stream", f"{_gb(size)} decoded is more than the memory budget of {_gb(budget)} (data.memory_budget_gb)"


def _gb(n: int) -> str:
    return f"{n / 2**30:.2f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"


def cache_key(root: Path, files: list[Path], transform: dict) -> str:
    """A hash of what the decoded images depend on: the files (relative path, size, mtime) and the
    transform. Listing and stat-ing every file is all a cached start costs."""
    h = hashlib.sha256(json.dumps({"format": FORMAT, **transform}, sort_keys=True).encode())
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(root).as_posix()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def _progress(total: int, desc: str):
    """A bar on a terminal (rank 0 only under torchrun); nothing in logs and tests."""
    from tqdm import tqdm

    quiet = os.environ.get("RANK", "0") != "0" or not sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="img", disable=quiet, leave=False, dynamic_ncols=True)


def decode_into(out: np.ndarray, files: list[Path], read: Reader, skip: Callable[[str, Path], None],
                animated: list[Path], desc: str) -> list[Path]:
    """Decode `files` into the rows of `out` in order, packed (an unreadable file takes no row);
    returns the files read."""
    from PIL import Image

    used = []
    with warnings.catch_warnings(), _progress(len(files), desc) as bar:
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # a bomb is a bad file, not a warning
        for p in files:
            bar.update()
            try:
                image, many_frames = read(p)
            except Exception as e:  # Pillow raises many types for broken files; all mean "skip it"
                skip(f"unreadable file(s) ({type(e).__name__})", p)
                continue
            out[len(used)] = image
            used.append(p)
            if many_frames:
                animated.append(p)
    return used


def in_memory(files: list[Path], shape: tuple[int, ...], read: Reader, skip, animated: list[Path], desc: str):
    out = np.empty((len(files), *shape), dtype=np.uint8)
    used = decode_into(out, files, read, skip, animated, desc)
    return out[:len(used)] if len(used) == len(files) else out[:len(used)].copy(), used


def cached(root: Path, files: list[Path], shape: tuple[int, ...], transform: dict, read: Reader, skip,
           animated: list[Path], desc: str) -> tuple[np.ndarray, list[Path], str]:
    """(images mapped from the cache, files read, what happened): decoded now when not cached yet.
    The map is copy-on-write: nothing a run does can change the file."""
    home = folder_cache_dir()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"data.storage=cache: cannot make the folder cache {home} ({e.strerror}); set "
                        "$GANFORGE_FOLDER_CACHE to a writable folder, or data.storage=memory") from None
    key = cache_key(root, files, transform)
    npy, meta = home / f"{key}.npy", home / f"{key}.json"
    with open(home / f"{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process decodes; the others wait and map its file
        what = f"mapped the cached decode {npy}"
        if not meta.is_file():
            _decode_to_cache(root, files, shape, read, npy, meta, desc)
            what = f"decoded into the cache {npy} ({_gb(npy.stat().st_size)}; later runs map it)"
    info = json.loads(meta.read_text())
    for reason, names in info["skipped"].items():
        for name in names:
            skip(reason, root / name)
    animated.extend(root / name for name in info["animated"])
    images = np.load(npy, mmap_mode="c")[:len(info["used"])]
    return images, [root / name for name in info["used"]], what


def _decode_to_cache(root: Path, files: list[Path], shape: tuple[int, ...], read: Reader, npy: Path, meta: Path,
                     desc: str) -> None:
    tmp = npy.with_name(f"{npy.stem}.{os.getpid()}.tmp.npy")
    skipped: dict[str, list[str]] = {}
    animated: list[Path] = []
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(files), *shape))
        used = decode_into(out, files, read, lambda reason, p: skipped.setdefault(reason, []).append(
            p.relative_to(root).as_posix()), animated, desc)
        out.flush()
        del out
        os.replace(tmp, npy)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise DataError(f"data.storage=cache: cannot write the folder cache {npy} ({e.strerror}); free some "
                        "space, set $GANFORGE_FOLDER_CACHE to another folder, or data.storage=stream") from None
    finally:
        tmp.unlink(missing_ok=True)
    rel = lambda ps: [p.relative_to(root).as_posix() for p in ps]  # noqa: E731
    meta_tmp = meta.with_name(f"{meta.stem}.{os.getpid()}.tmp")
    meta_tmp.write_text(json.dumps({"format": FORMAT, "root": str(root.resolve()), "used": rel(used),
                                    "skipped": skipped, "animated": rel(animated)}))
    os.replace(meta_tmp, meta)  # last: a cache is complete when its metadata exists


def streamed(files: list[Path], shape: tuple[int, ...], read: Reader, skip, desc: str) -> tuple[LazyImages, list[Path]]:
    """Images read when batched. Each file's header is opened now (a file that is not an image is
    skipped and named, as when decoding); one whose pixels turn out broken later stops the run
    with its name."""
    from PIL import Image

    used = []
    with _progress(len(files), desc) as bar:
        for p in files:
            bar.update()
            try:
                with Image.open(p):
                    pass
            except Exception as e:  # Pillow raises many types for broken files; all mean "skip it"
                skip(f"unreadable file(s) ({type(e).__name__})", p)
                continue
            used.append(p)
    return LazyImages(used, shape, _StreamReader(read)), used


class _StreamReader:
    """`read` for LazyImages: the image alone, and a broken file named in one error."""

    def __init__(self, read: Reader):
        self.read = read

    def __call__(self, path: Path) -> np.ndarray:
        try:
            return self.read(path)[0]
        except Exception as e:  # Pillow raises many types for broken files
            raise DataError(f"{path}: could not be read while streaming ({type(e).__name__}: {str(e)[:120]}); "
                            "move it out of the folder and resume the run") from None


def cache_entries() -> list[dict]:
    """The complete decodes in the folder cache: {"path", "root", "images", "bytes", "mtime"} each."""
    home, out = folder_cache_dir(), []
    for meta in sorted(home.glob("*.json")) if home.is_dir() else []:
        npy = meta.with_suffix(".npy")
        try:
            info = json.loads(meta.read_text())
            out.append({"path": npy, "root": info["root"], "images": len(info["used"]), "bytes": npy.stat().st_size,
                        "mtime": npy.stat().st_mtime})
        except (OSError, ValueError, KeyError):  # a foreign or damaged file: not ours to describe
            continue
    return out


def clear_cache() -> tuple[int, int]:
    """Remove every decode from the folder cache (only the files it writes); (files, bytes) freed."""
    home, files, freed = folder_cache_dir(), 0, 0
    for p in (home.iterdir() if home.is_dir() else []):
        if p.suffix in (".npy", ".json", ".lock") or p.name.endswith(".tmp"):
            freed += p.stat().st_size
            p.unlink()
            files += 1
    return files, freed

