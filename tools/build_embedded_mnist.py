"""Build the MNIST subset shipped inside the package: the first 10,000 training images and labels.

    python tools/build_embedded_mnist.py [--out src/ganforge/data/assets]

Reads the full MNIST IDX files from the data search path ($GANFORGE_DATA, ...), verifies them
against the official MD5s, and writes two IDX files gzip-compressed with a zero timestamp, so the
output is byte-identical on every run. Prints their sha256; EMBEDDED_SHA256 in
src/ganforge/data/embedded.py must match (the loader refuses a file that does not).
"""

import argparse
import gzip
import hashlib
import sys
from pathlib import Path

from ganforge.data.fetch import verify
from ganforge.data.idx import read_idx
from ganforge.data.sources import MNIST_FILES, find_idx_file

N = 10_000


def idx_bytes(array, dtype_code: int) -> bytes:
    header = bytes([0, 0, dtype_code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "src/ganforge/data/assets"))
    args = ap.parse_args()
    ds = MNIST_FILES
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for role, name in (("train_images", "mnist10k-train-images-idx3-ubyte.gz"),
                       ("train_labels", "mnist10k-train-labels-idx1-ubyte.gz")):
        filename = ds.files[role]
        src = find_idx_file(ds, filename)
        if src is None or not verify(src, ds.md5[filename]):
            print(f"error: {filename} not found or not the official file; set $GANFORGE_DATA", file=sys.stderr)
            return 1
        subset = read_idx(src)[:N]
        data = gzip.compress(idx_bytes(subset, 0x08), compresslevel=9, mtime=0)
        (out / name).write_bytes(data)
        print(f"{hashlib.sha256(data).hexdigest()}  {name}  ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
