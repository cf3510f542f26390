"""Outputs a user names (`--out`, `run.dir`): checked before any work starts, so that a typo
costs a one-line error instead of a finished computation with nowhere to go.

Writing itself stays atomic (core.io.atomic_write): a failure leaves no half-written file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ganforge.core.errors import ConfigError

RUN_MARKER = ".ganforge-run"  # the file that marks a folder ganforge made for a run (and may write in)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def output_file(path: str | Path, flag: str, suffixes: tuple[str, ...]) -> Path:
    """A file to be written: a known type, not a folder, in a folder that can be made and written."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        example = (path.name if path.name else "out") + suffixes[0]
        raise ConfigError(f"{flag} {path}: the file type comes from its name; end it in "
                          f"{' / '.join(suffixes)} (e.g. {example})")
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder: give a file name inside it (e.g. {path / ('out' + suffixes[0])})")
    _writable_folder(path.parent, flag, path)
    return path


def output_dir(path: str | Path, flag: str) -> Path:
    """A folder to be written into (it may exist): not a file, and creatable / writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path} is a file, not a folder: choose a folder")
    _writable_folder(path, flag, path)
    return path


def _writable_folder(folder: Path, flag: str, asked: Path) -> None:
    existing = folder if str(folder) else Path(".")
    while not existing.exists():
        if existing.is_symlink():
            raise ConfigError(f"{flag} {asked}: {existing} is a broken link: choose another path")
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{flag} {asked}: {existing} is a file, not a folder: choose another path")
    try:  # the only test that holds for root, read-only mounts and /proc alike: create a file
        with tempfile.TemporaryFile(dir=existing):
            pass
        if existing != folder:  # the folders below must be creatable too (/proc refuses them)
            probe = tempfile.mkdtemp(prefix=".ganforge-probe-", dir=existing)
            os.rmdir(probe)
    except OSError as e:
        raise ConfigError(f"{flag} {asked}: cannot write in {existing} ({e.strerror}): choose a writable "
                          "folder") from None
