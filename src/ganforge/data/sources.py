"""Where datasets live: the data search path and the files each named dataset consists of."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path



@dataclass(frozen=True)
class IdxFiles:
    """The IDX files of a dataset: names, checksums, where to download them, licence."""
    name: str
    files: dict[str, str]  # role -> file name (uncompressed; a .gz beside it is accepted too)
    md5: dict[str, str]  # file name -> MD5 of the uncompressed official file
    mirrors: tuple[str, ...]  # base URLs tried in order by `ganforge data fetch`
    licence: str


_ROLES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

MNIST_FILES = IdxFiles(
    name="mnist",
    files=_ROLES,
    md5={
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    licence="CC BY-SA 3.0 (LeCun, Cortes, Burges)",
)
FASHION_MNIST_FILES = IdxFiles(
    name="fashion-mnist",
    files=_ROLES,
    md5={
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    licence="MIT (Xiao, Rasul, Vollgraf 2017)",
)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ganforge"


def search_path(root: str = "") -> list[Path]:
    """Folders searched for datasets, in order: data.root, $GANFORGE_DATA, the user cache,
    /usr/share/datasets (where Debian's dataset packages install)."""
    dirs = [Path(root)] if root else []
    dirs += [Path(p) for p in os.environ.get("GANFORGE_DATA", "").split(os.pathsep) if p]
    dirs += [cache_dir(), Path("/usr/share/datasets")]
    return dirs


def find_idx_file(ds: IdxFiles, filename: str, root: str = "") -> Path | None:
    """The first `filename` (raw or .gz) under <dir>/<name>/ or <dir>/ on the search path."""
    for d in search_path(root):
        for folder in (d / ds.name, d / ds.name.replace("-", "_"), d):
            for candidate in (folder / filename, folder / (filename + ".gz")):
                if candidate.is_file():
                    return candidate
    return None


def missing_data_message(ds: IdxFiles, filename: str, root: str = "") -> str:
    searched = "\n".join(f"  {d}/{ds.name}/" for d in search_path(root))
    return (f"{ds.name}: {filename}(.gz) not found. Searched:\n{searched}\n"
            f"Fix: run `ganforge data fetch {ds.name}` (needs internet), point $GANFORGE_DATA at a folder "
            f"holding {ds.name}/, or set data.root=PATH. For an offline try, use data.name=mnist-embedded.")
