"""Complete, atomic, self-describing checkpoints, and generator export.

A checkpoint holds every net, every optimizer, the recipe's counters, the step / epoch position,
all RNG states, the fixed sample latents, the resolved config and the package version. It holds
tensors, numbers, strings, lists and dicts only, so `torch.load(weights_only=True)` reads it
without unpickling code. It is written to a temporary file in the same folder and renamed, so a
crash (even kill -9) leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path

import torch

from ganforge.core.version import __version__
from ganforge.core.errors import CheckpointError
from ganforge.core.io import atomic_write, is_stale, remove_stale_temps
from ganforge.core.pickles import imported_code
from ganforge.config import architecture_diff

FORMAT = "ganforge-checkpoint-v2"  # v2 (0.2): the recipe's state by player; v1 (0.1) is upgraded on load
FORMAT_V1 = "ganforge-checkpoint-v1"
EXPORT_FORMAT = "ganforge-generator-v1"


def save(path: str | Path, payload: dict) -> None:
    path = Path(path)
    payload = {"format": FORMAT, "version": __version__, **payload}
    try:
        atomic_write(path, lambda f: torch.save(payload, f))
    except (OSError, RuntimeError) as e:
        # torch's zip writer reports a short write (a full disk) as RuntimeError "unexpected pos",
        # not as the OSError beneath it; atomic_write has removed the partial file either way
        raise CheckpointError(_write_failed(path, e)) from None


def _write_failed(path: Path, e: Exception) -> str:
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    full = getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (free is not None and free < 1 << 20)
    reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).strip().splitlines()[0][:120]
    what = "the disk is full" if full else "the write failed"
    return (f"{path.parent}: could not write the checkpoint {path.name}: {what} ({reason}). The checkpoints "
            f"written before it are intact: {'free space' if full else 'fix the cause'}, then continue with "
            "--resume auto")


# What every checkpoint holds, and the type each must have (a forged or damaged file is refused
# here, with the key named, rather than failing later with a KeyError deep inside a recipe).
REQUIRED = {"config": dict, "recipe": dict, "step": int, "rng": dict}
ANOTHER = "use another checkpoint of the run (ckpt/step_*.pt)"  # the fix for a damaged checkpoint


def load(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: neither a run folder nor an export folder (no ckpt/last.pt, no "
                              "generator.json): give a checkpoint .pt, a run folder or an export folder")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes), not a checkpoint: its writing was cut off or it "
                              f"was copied incompletely; {ANOTHER}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for truncated / foreign / malicious files
        raise CheckpointError(_unreadable(path, e)) from None
    fmt = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
    if fmt not in (FORMAT, FORMAT_V1):
        hint = (" It was written by a newer ganforge: upgrade ganforge (pip install -U ganforge) to read it."
                if isinstance(fmt, str) and fmt.startswith("ganforge-checkpoint-") else "")
        raise CheckpointError(f"{path}: not a ganforge checkpoint (format {fmt!r}, expected {FORMAT}).{hint}")
    for key, kind in REQUIRED.items():
        if key not in ckpt:
            raise CheckpointError(f"{path}: this checkpoint lacks {key!r}, which every ganforge checkpoint holds "
                                  f"(damaged or edited): {ANOTHER}")
        if not isinstance(ckpt[key], kind) or isinstance(ckpt[key], bool):
            raise CheckpointError(f"{path}: the checkpoint's {key!r} is {ckpt[key]!r:.60}, not a {kind.__name__} "
                                  f"(damaged or edited): {ANOTHER}")
    return upgrade_v1(ckpt) if fmt == FORMAT_V1 else ckpt


def _unreadable(path: Path, e: Exception) -> str:
    """Why torch could not read a file, said plainly: pickled code, truncation, or not a checkpoint."""
    code = imported_code(path)  # read from the pickle's opcodes, whatever torch's wording was
    if code:
        return (f"{path}: the file contains pickled code ({code}) and was refused for safety: ganforge "
                "checkpoints hold tensors and plain values only. Use a checkpoint written by ganforge.")
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    if is_zip or isinstance(e, EOFError):
        return (f"{path}: the checkpoint is truncated or damaged ({type(e).__name__}); use an earlier "
                "checkpoint from the same folder (ckpt/step_*.pt)")
    return f"{path}: not a ganforge checkpoint (torch cannot read it: {type(e).__name__})"


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

def export_generator(out_dir: str | Path, G: torch.nn.Module, config: dict, step: int, player: str = "G",
                     E: torch.nn.Module | None = None, C: torch.nn.Module | None = None) -> Path:
    """generator.safetensors (+ encoder.safetensors when there is an encoder E, classifier.safetensors
    when there is a classifier C) and generator.json,
    written last: the description names the weight files, so a folder is an export only once
    every file it names is in place."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir, EXPORT_FILES)
    _remove_safetensors_temps(out_dir)
    meta = {"format": EXPORT_FORMAT, "version": __version__, "step": step, "player": player, "config": config}
    if E is not None:
        _save_weights(E, out_dir / ENCODER_FILE)
        meta["encoder"] = ENCODER_FILE
    if C is not None:
        _save_weights(C, out_dir / CLASSIFIER_FILE)
        meta["classifier"] = CLASSIFIER_FILE
    _save_weights(G, out_dir / "generator.safetensors")
    atomic_write(out_dir / "generator.json", lambda f: f.write(json.dumps(meta, indent=2).encode()))
    return out_dir


ENCODER_FILE = "encoder.safetensors"
CLASSIFIER_FILE = "classifier.safetensors"
EXPORT_FILES = ["generator.json", "generator.safetensors", ENCODER_FILE, CLASSIFIER_FILE]


def _save_weights(net: torch.nn.Module, path: Path) -> None:
    """The net's weights as safetensors, through atomic_write: the umask's mode like every other
    file (safetensors' own writer makes 0600 files) and a temporary file ganforge cleans up."""
    from safetensors.torch import save

    weights = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    atomic_write(path, lambda f: f.write(save(weights)))


def _remove_safetensors_temps(out_dir: Path) -> None:
    """`.tmpXXXXXX` files that safetensors' own writer (used by ganforge 0.2) left when killed:
    recognised by the name and by a safetensors header (8 bytes of length, then JSON), so no other
    file of that name is touched."""
    for p in out_dir.glob(".tmp*"):
        if re.fullmatch(r"\.tmp[A-Za-z0-9_]{6}", p.name) and is_stale(p):
            with open(p, "rb") as f:
                head = f.read(10)
            if not head or head[8:10] == b'{"':  # empty: killed before its first byte
                p.unlink(missing_ok=True)


def load_generator_source(path: str | Path) -> tuple[dict, dict[str, dict], int]:
    """(config dict, {player name: net state dict}, step) from a checkpoint file (every player), an
    export folder or its files (the exported player); the recipe picks its generator from these."""
    path = Path(path)
    if path.is_dir() and (path / "generator.json").is_file():
        path = path / "generator.json"
    elif path.is_dir() and (path / "ckpt" / "last.pt").is_file():
        path = path / "ckpt" / "last.pt"
    if path.suffix in (".json", ".safetensors"):
        return _load_export(path.with_suffix(".json"), path.with_suffix(".safetensors"))
    ckpt = load(path)
    nets = {}
    players = ckpt["recipe"].get("players")
    if not isinstance(players, dict) or not all(isinstance(p, dict) and "net" in p for p in players.values()):
        raise CheckpointError(f"{path}: the checkpoint's recipe holds no nets (damaged or edited): {ANOTHER}")
    for n, p in players.items():
        nets[n] = p["net"]
        if "ema" in p:
            nets[f"{n}_ema"] = p["ema"]["net"]
    frozen = ckpt["recipe"].get("frozen", {})  # nets a recipe holds without training them (encoder: G)
    if not isinstance(frozen, dict) or not all(isinstance(state, dict) for state in frozen.values()):
        raise CheckpointError(f"{path}: the checkpoint's frozen nets are damaged or edited: {ANOTHER}")
    nets.update(frozen)
    return ckpt["config"], nets, int(ckpt["step"])


def _load_export(meta_path: Path, weights_path: Path) -> tuple[dict, dict[str, dict], int]:
    """An export's (config, {player: state}, step), each part checked with the file named."""
    from safetensors.torch import load_file

    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{meta_path}: {what}; re-export it with `ganforge export RUN --out DIR`")

    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{meta_path}: not found (an export folder holds generator.json and "
                              "generator.safetensors)") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise bad(f"not valid JSON ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if not isinstance(meta, dict):
        raise bad(f"the file must hold a JSON object, not a {type(meta).__name__}")
    if meta.get("format") != EXPORT_FORMAT:
        raise bad(f"not a ganforge generator export (format {meta.get('format')!r}, expected {EXPORT_FORMAT})")
    if "config" not in meta:
        raise bad("the export lacks 'config' (the model's settings)")
    if not isinstance(meta["config"], dict):
        raise bad(f"'config' must be a mapping of sections, not {meta['config']!r:.40}")
    step = meta.get("step", 0)
    if not isinstance(step, int) or isinstance(step, bool):
        raise bad(f"'step' must be an integer, not {step!r:.40}")
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: missing (an export folder holds generator.json and "
                              "generator.safetensors); copy both files")
    try:
        state = load_file(str(weights_path))
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{weights_path}: not readable as safetensors ({type(e).__name__}): "
                              "the file is damaged; re-export or copy it again") from None
    nets = {meta.get("player", "G"): state}  # 0.1 exports name no player (G)
    for key, file, player in (("encoder", ENCODER_FILE, "E"), ("classifier", CLASSIFIER_FILE, "C")):
        if key not in meta:
            continue
        part = meta_path.parent / str(meta[key])
        if meta[key] != file or not part.is_file():
            raise bad(f"its {key} {meta[key]!r} is not {file} beside it")
        try:
            nets[player] = load_file(str(part))
        except Exception as e:  # safetensors raises its own error types for damaged files
            raise CheckpointError(f"{part}: not readable as safetensors ({type(e).__name__}): "
                                  "the file is damaged; re-export or copy it again") from None
    return meta["config"], nets, step


# --- latents: a projected image's latent, as safetensors with its description -------------------

LATENT_FORMAT = "ganforge-latent-v1"


def save_latent(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> Path:
    """One image's latent ("latent" [size], "c" for a conditional G, a style-based G's "noise<i>"
    maps) with string metadata (space, source, step, distances), written atomically."""
    from safetensors.torch import save

    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()},
                metadata={"format": LATENT_FORMAT, **meta})
    atomic_write(Path(path), lambda f: f.write(data))
    return Path(path)


def load_latent(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a latent file written by save_latent, each part checked."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"--latent {path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"--latent {path}: not a latent file ({type(e).__name__}); `ganforge project` "
                              "writes them as NAME.latent.safetensors") from None
    if meta.get("format") != LATENT_FORMAT or "latent" not in tensors or meta.get("space") not in ("z", "w", "w+"):
        raise CheckpointError(f"--latent {path}: not a ganforge latent (format {meta.get('format')!r}); "
                              "`ganforge project` writes them as NAME.latent.safetensors")
    return tensors, meta
