"""Complete, atomic, self-describing checkpoints, and generator export.

A checkpoint holds every net, every optimizer, the recipe's counters, the step / epoch position,
all RNG states, the fixed sample latents, the resolved config and the package version. It holds
tensors, numbers, strings, lists and dicts only, so `torch.load(weights_only=True)` reads it
without unpickling code. It is written to a temporary file in the same folder and renamed, so a
crash (even kill -9) leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from ganforge import __version__
from ganforge.errors import CheckpointError

FORMAT = "ganforge-checkpoint-v2"  # v2 (0.2): the recipe's state by player; v1 (0.1) is upgraded on load
FORMAT_V1 = "ganforge-checkpoint-v1"
EXPORT_FORMAT = "ganforge-generator-v1"


def default_file_mode() -> int:
    """0o666 less the umask: what open() would give (mkstemp makes 0o600 files)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _atomic_write(path: Path, write) -> None:
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


def atomic_write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode()))


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
             "python_version": random.getstate()[0], "python_gauss": random.getstate()[2],
             "numpy": torch.from_numpy(np_state[1].astype(np.int64)), "numpy_pos": int(np_state[2])}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def isolated_rng():
    """Whatever runs inside leaves torch's global random streams (CPU, and CUDA when in use) as it
    found them: hooks that sample, build a feature network or draw evaluation latents must not
    change a training trajectory. Training draws from no other global stream (numpy's and Python's
    are only saved in checkpoints), and saving those too would cost ~0.1 ms per hook call."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def save(path: str | Path, payload: dict) -> None:
    payload = {"format": FORMAT, "version": __version__, **payload}
    _atomic_write(Path(path), lambda f: torch.save(payload, f))


def load(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for truncated / foreign / malicious files
        raise CheckpointError(f"{path}: not a readable ganforge checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200]}). If it is truncated, use an earlier "
                              f"checkpoint from the same folder.") from None
    fmt = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
    if fmt == FORMAT_V1:
        return upgrade_v1(ckpt)
    if fmt != FORMAT:
        hint = (" It was written by a newer ganforge: upgrade ganforge (pip install -U ganforge) to read it."
                if isinstance(fmt, str) and fmt.startswith("ganforge-checkpoint-") else "")
        raise CheckpointError(f"{path}: not a ganforge checkpoint (format {fmt!r}, expected {FORMAT}).{hint}")
    return ckpt


def upgrade_v1(ckpt: dict) -> dict:
    """A 0.1 checkpoint (G / D / opt_G / ... side by side, fixed_z under hooks.Reporter) in the v2
    layout: the same tensors under the recipe's players and the sample-grid hook's name."""
    r = ckpt["recipe"]
    players = {n: {"net": r[n], "opt": r[f"opt_{n}"], "scaler": r.get(f"scaler_{n}") or {},
                   "updates": r[f"updates_{n}"]} for n in ("G", "D")}
    recipe = {"kind": "gan", "players": players, **({"z_rng": r["z_rng"]} if "z_rng" in r else {})}
    hooks = {"samples": {"fixed_inputs": {"z": ckpt["hooks"]["Reporter"]["fixed_z"]}}} if "Reporter" in ckpt.get("hooks", {}) else {}
    return {**ckpt, "format": FORMAT, "upgraded_from": FORMAT_V1, "recipe": recipe, "hooks": hooks}


def load_for_resume(path: str | Path, cfg_dict: dict) -> dict:
    """Load a checkpoint to continue training with `cfg_dict`, refusing a config that changes what
    the checkpoint's weights mean (config.ARCHITECTURE_KEYS) with the keys named."""
    from ganforge.config import architecture_diff

    ckpt = load(path)
    diff = architecture_diff(ckpt["config"], cfg_dict)
    if diff:
        raise CheckpointError(f"cannot resume {path}: the config changes the model (shapes or latent distribution):\n  "
                              + "\n  ".join(diff) + "\nStart a new run (drop --resume) or restore these keys.")
    return ckpt


def save_rotating(ckpt_dir: Path, step: int, payload: dict, keep: int) -> Path:
    """Write ckpt/step_XXXXXXX.pt, point ckpt/last.pt at it, keep only the newest `keep` steps."""
    path = ckpt_dir / f"step_{step:07d}.pt"
    for stale in ckpt_dir.glob(".step_*.tmp"):  # left by a process killed mid-write; never a checkpoint
        stale.unlink(missing_ok=True)
    save(path, payload)
    last = ckpt_dir / "last.pt"
    tmp = ckpt_dir / ".last.pt.link"
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)  # a hard link: last.pt costs no space and is swapped in atomically
    except OSError:
        save(tmp, payload)
    os.replace(tmp, last)
    for old in sorted(ckpt_dir.glob("step_*.pt"))[:-keep]:
        old.unlink(missing_ok=True)
    return path


# --- generator export: safetensors weights + a JSON description --------------------------------

def export_generator(out_dir: str | Path, G: torch.nn.Module, config: dict, step: int, player: str = "G") -> Path:
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()}
    meta = {"format": EXPORT_FORMAT, "version": __version__, "step": step, "player": player, "config": config}
    tmp = out_dir / ".generator.safetensors.tmp"
    save_file(weights, str(tmp))
    os.replace(tmp, out_dir / "generator.safetensors")
    _atomic_write(out_dir / "generator.json", lambda f: f.write(json.dumps(meta, indent=2).encode()))
    return out_dir


def load_generator_source(path: str | Path) -> tuple[dict, dict[str, dict], int]:
    """(config dict, {player name: net state dict}, step) from a checkpoint file (every player), an
    export folder or its files (the exported player); the recipe picks its generator from these."""
    path = Path(path)
    if path.is_dir() and (path / "generator.json").is_file():
        path = path / "generator.json"
    elif path.is_dir() and (path / "ckpt" / "last.pt").is_file():
        path = path / "ckpt" / "last.pt"
    if path.suffix in (".json", ".safetensors"):
        from safetensors.torch import load_file

        meta_path, weights_path = path.with_suffix(".json"), path.with_suffix(".safetensors")
        try:
            meta = json.loads(meta_path.read_text())
            state = load_file(str(weights_path))
        except Exception as e:
            raise CheckpointError(f"{path}: not a readable ganforge export ({type(e).__name__}: {e})") from None
        if meta.get("format") != EXPORT_FORMAT:
            raise CheckpointError(f"{meta_path}: not a ganforge generator export (format {meta.get('format')!r})")
        return meta["config"], {meta.get("player", "G"): state}, int(meta.get("step", 0))  # 0.1 exported G
    ckpt = load(path)
    nets = {}
    for n, p in ckpt["recipe"]["players"].items():
        nets[n] = p["net"]
        if "ema" in p:
            nets[f"{n}_ema"] = p["ema"]["net"]
    return ckpt["config"], nets, int(ckpt["step"])
