"""Files that are never half-written, and the JSON-lines logs of a run.

`atomic_write` writes to a temporary file beside the target and renames it into place, so a crash
(even kill -9) leaves either the old file or the whole new one. The logs (stats.jsonl,
metrics.jsonl, health.jsonl) are read back tolerating a last line cut by such a crash.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
import time
from pathlib import Path


def default_file_mode() -> int:
    """0o666 less the umask: what open() would give (mkstemp makes 0o600 files)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: Path, write) -> None:
    """Call write(f) on a temporary file beside `path`, then rename it into place: readers see the
    old file or the whole new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


STALE_AFTER_S = 600  # a temporary file this old is no other process's write in progress


def is_stale(path: Path) -> bool:
    """A plain file untouched for STALE_AFTER_S: left by a killed writer, not being written now."""
    try:
        return path.is_file() and not path.is_symlink() and time.time() - path.stat().st_mtime > STALE_AFTER_S
    except OSError:
        return False


def remove_stale_temps(folder: Path, names: list[str]) -> None:
    """Remove the temporary files an interrupted atomic_write of these file names left in `folder`
    (a process killed mid-write cannot remove its own): `.NAME.XXXXXXXX.tmp`, and `.NAME.tmp` of
    ganforge 0.2, once they are stale (a younger one may be another export's write in progress).
    Never a file of another name."""
    for name in names:
        for stale in (*folder.glob(f".{glob.escape(name)}.*.tmp"), folder / f".{name}.tmp"):
            if is_stale(stale):
                stale.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a kill -9; the rest is still good
    return rows


def truncate_jsonl(path: Path, max_step: int) -> None:
    """On resume: keep only the lines logged at or before the resumed step (a line cut by a
    kill -9 is dropped too); what comes after will be logged again."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines() if _line_step(line) <= max_step]
    path.write_text("".join(line + "\n" for line in keep))


def _line_step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62
