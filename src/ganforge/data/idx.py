"""Reader for the IDX format of MNIST and Fashion-MNIST (raw or gzip-compressed)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ganforge.core.errors import DataError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx_bytes(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(f"{source}: not an IDX file (bad magic number); delete it and fetch it again")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{source}: truncated IDX header; delete it and fetch it again")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{source}: IDX file has {len(raw)} bytes, its header promises {expected} "
                        "(truncated or corrupt); delete it and fetch it again")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).copy()  # writable


def read_idx(path: str | Path) -> np.ndarray:
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot read ({e}); delete it and fetch it again") from None
    return read_idx_bytes(raw, str(path))


def idx_header(shape: tuple[int, ...]) -> bytes:
    """The header of an IDX file of uint8 values of this shape (the data follows it, row-major)."""
    return bytes([0, 0, 0x08, len(shape)]) + b"".join(int(d).to_bytes(4, "big") for d in shape)


def idx_bytes(array: np.ndarray) -> bytes:
    """uint8 array -> an IDX file's bytes (the format MNIST ships in), for labelled synthetic sets."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return idx_header(array.shape) + array.tobytes()
