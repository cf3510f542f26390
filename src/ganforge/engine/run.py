"""A run folder and everything written into it. One owner: the trainer, the hooks and the API
write run files only through a `RunDir` (which exists on rank 0 only, so no other rank writes).

    runs/00003-demo/
      .ganforge-run  config.yaml  stats.jsonl  metrics.jsonl  log.txt
      samples/  ckpt/  export/  report/

ganforge writes only into folders it created: `.ganforge-run` marks them. A checkpoint resumed
from anywhere else (a file copied to ~/Downloads) seeds a new run folder instead.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

from ganforge.core.version import __version__
from ganforge import checkpoint, config as config_mod
from ganforge.config import Config
from ganforge.core.errors import CheckpointError, ConfigError
from ganforge.core.io import read_jsonl, truncate_jsonl
from ganforge.core.paths import RUN_MARKER

_RUN_RE = re.compile(r"^(\d{5})-(.+)$")


def runs_of(root: Path, name: str | None = None) -> list[tuple[int, Path]]:
    """(index, folder) of the runs under `root` (of one config name when given), oldest first."""
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _RUN_RE.match(p.name)
        if m and p.is_dir() and (name is None or m.group(2) == name):
            found.append((int(m.group(1)), p))
    return sorted(found)


_CLAIM_TRIES = 1000


def _next_index(root: Path) -> int:
    """One past the highest run index under `root`, counting every entry with a run-folder name
    (a file or link of that name blocks its index too)."""
    indices = [int(m.group(1)) for p in root.iterdir() if (m := _RUN_RE.match(p.name))]
    return max(indices, default=-1) + 1


def is_run_folder(path: Path) -> bool:
    """A folder ganforge created: it carries the marker, or (runs of ganforge 0.1 / 0.2, before the
    marker) has the run-folder name, a config.yaml, a log.txt and a ckpt/ folder."""
    path = Path(path)
    if (path / RUN_MARKER).is_file():
        return True
    return bool(_RUN_RE.match(path.name)) and all((path / f).exists() for f in ("config.yaml", "log.txt", "ckpt"))


def run_of_checkpoint(ckpt_path: Path) -> Path | None:
    """The run folder a checkpoint file sits in (<run>/ckpt/x.pt), or None for a loose file."""
    ckpt_path = Path(ckpt_path).resolve()
    run = ckpt_path.parent.parent
    return run if ckpt_path.parent.name == "ckpt" and is_run_folder(run) else None


def find_resume(cfg: Config, resume: str) -> Path | None:
    """The checkpoint to resume: `auto` = ckpt/last.pt of the newest run of this config's name."""
    if resume != "auto":
        path = Path(resume)
        if path.is_dir():
            path = path / "ckpt" / "last.pt"
        if not path.is_file():
            raise CheckpointError(f"--resume {resume}: no checkpoint there (give a .pt file or a run folder)")
        return path
    for _, run_dir in reversed(runs_of(Path(cfg.run.dir), cfg.run.name)):
        if (run_dir / "ckpt" / "last.pt").is_file():
            return run_dir / "ckpt" / "last.pt"
    return None


def elastic_home(cfg: Config) -> Path | None:
    """The run folder this torchrun job made, for its restarts: the newest run of the config's
    name whose marker names the job's TORCHELASTIC_RUN_ID (torchrun gives every launch its own,
    or the --rdzv-id of a multi-machine one). None outside torchrun or before rank 0 made it."""
    job = os.environ.get("TORCHELASTIC_RUN_ID")
    if not job:
        return None
    for _, run_dir in reversed(runs_of(Path(cfg.run.dir), cfg.run.name)):
        try:
            lines = (run_dir / RUN_MARKER).read_text().splitlines()
        except OSError:
            continue
        if f"elastic {job}" in lines:
            return run_dir
    return None


def orphan_run(cfg: Config) -> "RunDir | None":
    """The newest run of this config, claimed, when it holds no checkpoint and no export and no
    process holds it (a run killed before its first checkpoint): `--resume auto` starts over in it
    rather than leaving one orphan folder per attempt. A run still in its first steps holds its
    lock and is left alone; of two processes asking at once, one gets the folder."""
    runs = runs_of(Path(cfg.run.dir), cfg.run.name)
    if not runs:
        return None
    newest = runs[-1][1]
    if any((newest / d).is_dir() and any((newest / d).iterdir()) for d in ("ckpt", "export")):
        return None
    if not is_run_folder(newest):
        return None
    lock = _claim(newest)
    return RunDir(newest, lock) if lock is not None else None


def _claim(path: Path, take_over: bool = False):
    """Hold the run's lock (an exclusive flock on its marker) for as long as this process writes
    into it; None when another process (or another run of this one) holds it, or the marker names
    another host (where a lock may not be seen) and this is no `take_over` (a torchrun restart,
    whose earlier attempt is known to have ended). The marker then says who holds it, and which
    torchrun job, if any, made it (`elastic_home`)."""
    import fcntl

    marker = path / RUN_MARKER
    try:
        f = open(marker, "a+")
    except OSError as e:
        raise ConfigError(f"{path}: cannot write in the run folder ({e.strerror})") from None
    f.seek(0)
    fields = dict(line.split(" ", 1) for line in f.read().splitlines() if " " in line)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # held by a live process
        f.close()
        return None
    except OSError:  # a file system without locks (some network mounts): go on unlocked
        pass
    if fields.get("host", socket.gethostname()) != socket.gethostname() and not take_over:
        f.close()
        return None
    job = os.environ.get("TORCHELASTIC_RUN_ID") or fields.get("elastic")
    f.seek(0)
    f.truncate()
    f.write(f"ganforge {__version__}\npid {os.getpid()}\nhost {socket.gethostname()}\n"
            + (f"elastic {job}\n" if job else ""))
    f.flush()
    return f


class RunDir:
    def __init__(self, path: Path, lock=None):
        self.path = Path(path)
        self._lock = lock  # the open, flocked marker: other processes see this run as in use
        self.mirror = None  # a TensorBoardMirror when log.tensorboard is on

    @classmethod
    def new(cls, cfg: Config) -> "RunDir":
        """A new, numbered run folder, claimed atomically: of several processes (or one retrying)
        asking at once, each gets a folder of its own, and an existing folder is never reused."""
        root = Path(cfg.run.dir)
        problem = config_mod.run_name_problem(cfg.run.name)
        if problem:
            raise ConfigError(problem)
        if root.exists() and not root.is_dir():
            raise ConfigError(f"run.dir={root} is a file, not a folder: set run.dir to a folder for run folders")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"run.dir={root}: cannot create it ({e.strerror}): set run.dir to a writable folder") from None
        index = _next_index(root)
        for _ in range(_CLAIM_TRIES):
            path = root / f"{index:05d}-{cfg.run.name}"
            try:
                path.mkdir()  # one component, no parents: atomic, and fails on anything already there
                return cls(path, _claim(path))
            except FileExistsError:  # another process took this index between listing and mkdir
                index = max(index + 1, _next_index(root))
            except OSError as e:
                raise ConfigError(f"run.dir={root}: cannot create the run folder {path} ({e.strerror}): "
                                  "set run.dir to a writable folder") from None
        raise ConfigError(f"run.dir={root}: {_CLAIM_TRIES} run folder names in a row were taken while claiming one "
                          "(other processes starting runs of the same name): try again")

    @classmethod
    def resume(cls, path: Path, take_over: bool = False) -> "RunDir":
        """An existing run folder to continue; refused while another process writes in it."""
        lock = _claim(path, take_over)
        if lock is None:
            raise CheckpointError(f"{path} is in use by another ganforge process ({(path / RUN_MARKER).read_text().strip()!r}); "
                                  "wait for it to end, or resume from a copy of its checkpoint (a new run folder)")
        return cls(path, lock)

    def restart(self) -> "RunDir":
        """Start over in a claimed run folder that holds no checkpoint: its files go (the marker
        stays, locked), the folder stays."""
        import shutil

        for child in self.path.iterdir():
            if child.name == RUN_MARKER:
                continue
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        return self

    def mirror_to_tensorboard(self, start_step: int) -> None:
        from ganforge.engine.tensorboard import TensorBoardMirror

        self.mirror = TensorBoardMirror(self.path / "tensorboard", start_step)

    def image_written(self, tag: str, path: Path, step: int) -> None:
        """A picture the run just saved (a sample grid), for the mirror."""
        if self.mirror is not None:
            self.mirror.image(tag, path, step)

    def release(self) -> None:
        """Let other processes resume this run (at the end of training)."""
        if self.mirror is not None:
            self.mirror.close()
            self.mirror = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __truediv__(self, rel: str) -> Path:
        return self.path / rel

    @property
    def name(self) -> str:
        return self.path.name

    def write_config(self, cfg: Config) -> None:
        (self.path / "config.yaml").write_text(config_mod.dump(cfg))

    def log(self, message: str) -> None:
        """A timestamped line in log.txt (what happened to the run, across sessions)."""
        with open(self.path / "log.txt", "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def append(self, name: str, row: dict) -> None:
        with open(self.path / name, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.mirror is not None:
            self.mirror.row(Path(name).stem, row)

    def read(self, name: str) -> list[dict]:
        return read_jsonl(self.path / name)

    def truncate(self, name: str, step: int) -> None:
        """On resume: rows logged after `step` will be logged again."""
        truncate_jsonl(self.path / name, step)

    def save_checkpoint(self, step: int, state: dict, keep: int) -> Path:
        return checkpoint.save_rotating(self.path / "ckpt", step, state, keep)
