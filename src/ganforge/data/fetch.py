"""`ganforge data fetch`: download a named dataset, verify it, and only then put it in place.

Each file goes to a temporary file in the destination folder; it is decompressed and checked
against the MD5 of the official uncompressed file, and renamed into place only when it matches.
A 404, a truncated transfer or a corrupt file leaves nothing behind but a clear message.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ganforge.core.io import default_file_mode
from ganforge.data.mnist import idx_files
from ganforge.data.sources import IdxFiles, cache_dir
from ganforge.core.errors import DataError

_CHUNK = 1 << 16


def _md5_of_uncompressed(path: Path) -> str:
    md5 = hashlib.md5()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            md5.update(chunk)
    return md5.hexdigest()


def verify(path: Path, expected_md5: str) -> bool:
    try:
        return _md5_of_uncompressed(path) == expected_md5
    except (OSError, EOFError, gzip.BadGzipFile):
        return False


def download(url: str, dest: Path, timeout_s: float) -> None:
    """Stream `url` into `dest`; raise DataError on HTTP errors and short transfers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(dest, "wb") as out:
            expected = response.headers.get("Content-Length")
            received = 0
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                received += len(chunk)
    except urllib.error.HTTPError as e:
        raise DataError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as e:
        # IncompleteRead (a connection closed early) is an HTTPException, not an OSError
        reason = getattr(e, "reason", None) or f"{type(e).__name__}: {e}"
        raise DataError(f"{url}: download failed ({reason})") from None
    if expected is not None and received != int(expected):
        raise DataError(f"{url}: transfer truncated ({received} of {expected} bytes)")


def fetch_file(ds: IdxFiles, filename: str, dest_dir: Path, mirrors: list[str], timeout_s: float) -> Path:
    final = dest_dir / (filename + ".gz")
    if final.is_file() and verify(final, ds.md5[filename]):
        return final
    errors = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename + ".gz"
        fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.part-", suffix=".gz", dir=dest_dir)
        os.fchmod(fd, default_file_mode())
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            download(url, tmp, timeout_s)
            if not verify(tmp, ds.md5[filename]):
                raise DataError(f"{url}: checksum mismatch (expected MD5 {ds.md5[filename]} of the "
                                "uncompressed file); the file is corrupt or not the official one")
            os.replace(tmp, final)
            return final
        except DataError as e:
            errors.append(str(e))
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError(f"could not fetch {ds.name}/{filename}:\n  " + "\n  ".join(errors))


def fetch(name: str, dest: str | Path | None = None, mirrors: list[str] | None = None,
          timeout_s: float = 60.0, log=print) -> Path:
    """Download every file of dataset `name` into `dest/<name>/` (default: the user cache). A failed
    fetch removes the folders it created while they are empty; files already verified stay."""
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s < math.inf:
        raise DataError(f"--timeout {timeout_s}: give a positive number of seconds per connection (default 60)")
    ds = idx_files(name)
    dest_dir = Path(dest) if dest else cache_dir()
    dest_dir = dest_dir / ds.name
    created = [p for p in (dest_dir, *dest_dir.parents) if not p.exists()]  # deepest first
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create {dest_dir}: {e}") from None
    placed = []
    try:
        for filename in ds.files.values():
            placed.append(fetch_file(ds, filename, dest_dir, list(mirrors or ds.mirrors), timeout_s))
            log(f"ok  {placed[-1]}")
    except BaseException as e:
        _remove_empty(created)
        if not isinstance(e, DataError):
            raise
        kept = (f"Nothing was written to {dest_dir}" if not placed else
                f"The {len(placed)} file(s) fetched and verified before it stay in {dest_dir}")
        raise DataError(f"{e}\n{kept}. Download the files by hand into that folder, or point $GANFORGE_DATA at "
                        "a folder that holds them.") from None
    return dest_dir


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed fetch created, deepest first, while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (something else was put there), or gone already
            return
