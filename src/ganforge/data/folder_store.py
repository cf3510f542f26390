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

import contextlib
import hashlib
import json
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from ganforge.core.errors import DataError
from ganforge.core.io import atomic_write_text
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
    """(storage, why) for n images of `shape`. Auto caches what fits the memory budget where the
    cache has room for it (else decodes into memory, as without a cache), and streams the rest."""
    size, budget = n * int(np.prod(shape)), budget_bytes(budget_gb)
    if asked != "auto":
        return asked, f"data.storage={asked}"
    if size > budget:
        return "stream", f"{_gb(size)} decoded is more than the memory budget of {_gb(budget)} (data.memory_budget_gb)"
    fits = f"{_gb(size)} decoded fits the memory budget of {_gb(budget)}"
    no_room = _cache_has_no_room(size)
    return ("memory", f"{fits}; not cached: {no_room}") if no_room else ("cache", fits)


def _cache_has_no_room(size: int) -> str | None:
    """Why the folder cache cannot take `size` bytes now (not writable, or too little free
    space with a margin of a tenth), or None."""
    home = folder_cache_dir()
    try:
        home.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(home).free
    except OSError as e:
        return f"the folder cache {home} cannot be made ({e.strerror})"
    if not os.access(home, os.W_OK):
        return f"the folder cache {home} is not writable"
    if free < size * 1.1:
        return f"{_gb(free)} free in the folder cache {home}"
    return None


def _gb(n: int) -> str:
    return f"{n / 2**30:.2f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"


def cache_key(root: Path, files: list[Path], transform: dict) -> str:
    """A hash of what the decoded images depend on: the files (relative path, size, modification
    and change times), the transform and the decoder (Pillow's version). Listing and stat-ing
    every file is all a cached start costs."""
    from PIL import __version__ as pillow

    h = hashlib.sha256(json.dumps({"format": FORMAT, "pillow": pillow, **transform}, sort_keys=True).encode())
    for p in files:
        try:
            st = p.stat()
            stamp = f"{st.st_size}\t{st.st_mtime_ns}\t{st.st_ctime_ns}"
        except OSError:  # gone since the listing: the decode names it among the unreadable files
            stamp = "missing"
        h.update(f"{p.relative_to(root).as_posix()}\t{stamp}\n".encode())
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
    with _locked(home / f"{key}.lock"):  # one process decodes; the others wait and map its file
        found = _read_cache(npy, meta)
        what = f"mapped the cached decode {npy}"
        if found is None:
            for stale in home.glob(f"{key}.*.tmp*"):  # a killed decode's leftovers: no one writes them now
                stale.unlink(missing_ok=True)
            _decode_to_cache(root, files, shape, read, npy, meta, desc)
            found = _read_cache(npy, meta)
            if found is None:
                raise DataError(f"data.storage=cache: the decode just written to {npy} cannot be read back; "
                                "use data.storage=memory, or set $GANFORGE_FOLDER_CACHE to another folder")
            what = f"decoded into the cache {npy} ({_gb(npy.stat().st_size)}), which later runs map"
    images, info = found
    for reason, names in info["skipped"].items():
        for name in names:
            skip(reason, root / name)
    animated.extend(root / name for name in info["animated"])
    return images, [root / name for name in info["used"]], what


def _locked(path: Path, wait: bool = True):
    """An exclusive flock on `path` for a `with` block (POSIX; the module is imported everywhere,
    the lock is taken only where a cache is written); None when not waiting and it is held."""
    import fcntl

    @contextlib.contextmanager
    def held():
        with open(path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield f

    if wait:
        return held()
    f = open(path, "a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    return f


def _read_cache(npy: Path, meta: Path) -> tuple[np.ndarray, dict] | None:
    """(images mapped copy-on-write, metadata) of a complete cache, or None: missing, cleared,
    damaged or of another format are all "not cached" (decoded again)."""
    try:
        info = json.loads(meta.read_text())
        if info.get("format") != FORMAT:
            return None
        return np.load(npy, mmap_mode="c")[:len(info["used"])], info
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _decode_to_cache(root: Path, files: list[Path], shape: tuple[int, ...], read: Reader, npy: Path, meta: Path,
                     desc: str) -> None:
    tmp = npy.with_name(f"{npy.stem}.{os.getpid()}.tmp.npy")
    skipped: dict[str, list[str]] = {}
    animated: list[Path] = []
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(files), *shape))
        # reserve the space now: a full disk then fails here, not as SIGBUS on a page written later
        with open(tmp, "r+b") as f:
            os.posix_fallocate(f.fileno(), 0, os.path.getsize(tmp))
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
    # last, atomically: a cache is complete when its metadata exists
    atomic_write_text(meta, json.dumps({"format": FORMAT, "root": str(root.resolve()), "used": rel(used),
                                        "skipped": skipped, "animated": rel(animated)}))


def streamed(files: list[Path], shape: tuple[int, ...], read: Reader, skip, animated: list[Path],
             desc: str) -> tuple[LazyImages, list[Path]]:
    """Images read when batched. Each file's header is opened now: a file that is not an image or
    is a decompression bomb is skipped and named, as when decoding; one whose pixels turn out
    broken later stops the run with its name."""
    from PIL import Image

    used = []
    with warnings.catch_warnings(), _progress(len(files), desc) as bar:
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # as decode_into
        for p in files:
            bar.update()
            try:
                with Image.open(p) as im:
                    many_frames = getattr(im, "n_frames", 1) > 1
            except Exception as e:  # Pillow raises many types for broken files; all mean "skip it"
                skip(f"unreadable file(s) ({type(e).__name__})", p)
                continue
            used.append(p)
            if many_frames:
                animated.append(p)
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


def clear_cache() -> tuple[int, int, int]:
    """Remove every decode from the folder cache (only the files it writes), skipping those a
    process is decoding or mapping into a start right now; (files, bytes freed, decodes in use)."""
    home, files, freed, busy = folder_cache_dir(), 0, 0, 0
    for lock_path in sorted(home.glob("*.lock")) if home.is_dir() else []:
        key = lock_path.stem
        lock = _locked(lock_path, wait=False)
        if lock is None:
            busy += 1
            continue
        with lock:  # the lock files stay: a waiting process holds one of them open
            for p in [home / f"{key}.json", home / f"{key}.npy", *home.glob(f"{key}.*.tmp*")]:
                try:
                    size = p.stat().st_size
                    p.unlink()
                except FileNotFoundError:
                    continue
                except OSError as e:
                    raise DataError(f"{p}: cannot remove it ({e.strerror})") from None
                files, freed = files + 1, freed + size
    return files, freed, busy

