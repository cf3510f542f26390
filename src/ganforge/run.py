"""A run folder and everything written into it. One owner: the trainer, the hooks and the API
write run files only through a `RunDir` (which exists on rank 0 only, so no other rank writes).

    runs/00003-demo/
      config.yaml  stats.jsonl  metrics.jsonl  log.txt
      samples/  ckpt/  export/  report/
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from ganforge import checkpoint, config as config_mod
from ganforge.config import Config
from ganforge.errors import CheckpointError
from ganforge.reporting import read_jsonl, truncate_jsonl

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


class RunDir:
    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def new(cls, cfg: Config) -> "RunDir":
        root = Path(cfg.run.dir)
        runs = runs_of(root)
        index = runs[-1][0] + 1 if runs else 0
        path = root / f"{index:05d}-{cfg.run.name}"
        path.mkdir(parents=True, exist_ok=False)
        return cls(path)

    @classmethod
    def of_checkpoint(cls, ckpt_path: Path) -> "RunDir":
        return cls(Path(ckpt_path).parent.parent)

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

    def read(self, name: str) -> list[dict]:
        return read_jsonl(self.path / name)

    def truncate(self, name: str, step: int) -> None:
        """On resume: rows logged after `step` will be logged again."""
        truncate_jsonl(self.path / name, step)

    def save_checkpoint(self, step: int, state: dict, keep: int) -> Path:
        return checkpoint.save_rotating(self.path / "ckpt", step, state, keep)
