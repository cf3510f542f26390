"""The library's entry points: train, sample, export. The CLI is a thin layer over these."""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import torch

from ganforge import checkpoint, config as config_mod
from ganforge.config import Config
from ganforge.data import build_dataset
from ganforge.errors import CheckpointError, ConfigError
from ganforge.nets import build_G, sample_shape_for
from ganforge.recipes import build_recipe
from ganforge.hooks import Reporter
from ganforge.reporting import save_image_grid, save_scatter
from ganforge.trainer import Trainer, TrainResult


def resolve_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but no CUDA device is available: use --device cpu or auto")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


# --- run directories -----------------------------------------------------------------------------

_RUN_RE = re.compile(r"^(\d{5})-(.+)$")


def _runs_of(root: Path, name: str | None = None) -> list[tuple[int, Path]]:
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = _RUN_RE.match(p.name)
        if m and p.is_dir() and (name is None or m.group(2) == name):
            found.append((int(m.group(1)), p))
    return sorted(found)


def new_run_dir(cfg: Config) -> Path:
    root = Path(cfg.run.dir)
    runs = _runs_of(root)
    index = runs[-1][0] + 1 if runs else 0
    run_dir = root / f"{index:05d}-{cfg.run.name}"
    run_dir.mkdir(parents=True, exist_ok=False)
    return run_dir


def find_resume(cfg: Config, resume: str) -> Path | None:
    """The checkpoint to resume: `auto` = ckpt/last.pt of the newest run of this config's name."""
    if resume != "auto":
        path = Path(resume)
        if path.is_dir():
            path = path / "ckpt" / "last.pt"
        if not path.is_file():
            raise CheckpointError(f"--resume {resume}: no checkpoint there (give a .pt file or a run folder)")
        return path
    for _, run_dir in reversed(_runs_of(Path(cfg.run.dir), cfg.run.name)):
        if (run_dir / "ckpt" / "last.pt").is_file():
            return run_dir / "ckpt" / "last.pt"
    return None


# --- train -------------------------------------------------------------------------------------------

def _dry_run_config(cfg: Config, tmp: Path) -> Config:
    d = config_mod.to_dict(cfg)
    if cfg.data.name not in ("ring", "grid"):
        d["data"]["name"] = "fake"
    else:
        d["data"]["toy_num_samples"] = 512
    d["train"].update(max_steps=2, batch_size=min(cfg.train.batch_size, 16))
    d["log"].update(progress=False, stats_every_steps=1)
    d["run"]["dir"] = str(tmp)
    return config_mod.from_dict(d, "dry run")


def train(cfg: Config, resume: str | None = None, dry_run: bool = False, log=print) -> tuple[Path, TrainResult]:
    """Train `cfg`; returns (run directory, result). With dry_run, a couple of steps on fake data."""
    if dry_run:
        with tempfile.TemporaryDirectory(prefix="ganforge-dry-") as tmp:
            run_dir, result = train(_dry_run_config(cfg, Path(tmp)), log=log)
            log(f"dry run ok: {result.step} steps of {cfg.model.arch} on fake data, losses "
                + ", ".join(f"{k}={v:.3f}" for k, v in result.last_stats.items()))
            return run_dir, result
    from ganforge import distributed

    info, device_choice = distributed.init_from_env(cfg.train.device)
    try:
        return _train(cfg, resume, log, info, device_choice)
    finally:
        distributed.shutdown(info)


def _train(cfg: Config, resume: str | None, log, info, device_choice: str) -> tuple[Path, TrainResult]:
    device = torch.device(device_choice) if ":" in device_choice else resolve_device(device_choice)
    ckpt_path = find_resume(cfg, resume) if resume else None
    ckpt = None
    if ckpt_path is not None:
        ckpt = checkpoint.load(ckpt_path)
        diff = config_mod.architecture_diff(ckpt["config"], config_mod.to_dict(cfg))
        if diff:
            raise CheckpointError(f"cannot resume {ckpt_path}: the config changes the model (shapes or latent distribution):\n  "
                                  + "\n  ".join(diff) + "\nStart a new run (drop --resume) or restore these keys.")
        run_dir = ckpt_path.parent.parent
        if info.is_main:
            log(f"resuming {run_dir} from step {ckpt['step']}")
    elif resume == "auto" and info.is_main:
        log(f"no earlier run of '{cfg.run.name}' under {cfg.run.dir}/: starting a new one")
    torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank
    data = build_dataset(cfg.data, cfg.train.seed)
    recipe = build_recipe(cfg, data, device, info)
    if info.rank:  # dropout and other in-step randomness: a stream per rank
        torch.manual_seed(cfg.train.seed + 7919 * info.rank)
    # The trainer checks batch size against the data and the processes: build it before any folder
    # is made, so a refused config leaves nothing behind.
    trainer = Trainer(cfg, recipe, data, device, None, log=log if info.is_main else (lambda s: None), dist=info)
    hooks = []
    if info.is_main:  # only rank 0 writes files
        if ckpt is None:
            run_dir = new_run_dir(cfg)
        (run_dir / "config.yaml").write_text(config_mod.dump(cfg))
        hooks.append(Reporter(cfg, data, recipe, run_dir, log))
        with open(run_dir / "log.txt", "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} start at step {ckpt['step'] if ckpt else 0}: "
                    f"{data.name} ({len(data)} samples, {data.source}), {cfg.model.arch}, device {device}, "
                    f"precision {recipe.precision}, "
                    f"{info.world_size} process(es)\n")
    elif ckpt is None:
        run_dir = None
    if cfg.eval.every_steps:  # on every rank: each generates its share of the samples
        from ganforge.metrics.hook import MetricsHook

        hooks.append(MetricsHook(cfg, recipe, run_dir if info.is_main else None, info))
    trainer.run_dir, trainer.hooks = run_dir, hooks
    result = trainer.fit(ckpt)
    if info.is_main:
        with open(run_dir / "log.txt", "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} stop at step {result.step}"
                    f"{' (' + result.interrupted_by + ')' if result.interrupted_by else ''}; checkpoint {result.checkpoint}\n")
    return run_dir, result


# --- sample / export -----------------------------------------------------------------------------

def load_generator(source: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, Config, int]:
    cfg_dict, state, step = checkpoint.load_generator_source(source)
    try:
        cfg = config_mod.from_dict(cfg_dict, f"{source} (embedded config)")
    except ConfigError as e:
        raise CheckpointError(f"{source}: its embedded config is not valid for this ganforge version: {e}") from None
    G = build_G(cfg, sample_shape_for(cfg))
    try:
        G.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{source}: generator weights do not match its config ({str(e).splitlines()[0]})") from None
    return G.to(device).eval(), cfg, step


def sample_latents(cfg: Config, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if cfg.model.z_dist == "normal":
        return torch.randn(n, cfg.model.z_dim, generator=g)
    return (torch.rand(n, cfg.model.z_dim, generator=g) * 2 - 1) * 3 ** 0.5


@torch.no_grad()
def sample(source: str | Path, n: int, out: str | Path, seed: int = 0) -> Path:
    G, cfg, step = load_generator(source)
    x = G(sample_latents(cfg, n, seed))
    out = Path(out)
    if len(sample_shape_for(cfg)) == 1:
        return save_scatter(x, out, title=f"{n} samples, step {step}")
    return save_image_grid(x, out, cfg.data.range)


def export(source: str | Path, out: str | Path) -> Path:
    G, cfg, step = load_generator(source)
    return checkpoint.export_generator(out, G, config_mod.to_dict(cfg), step)


def evaluate(source: str | Path, metrics: list[str] | None = None, num_samples: int = 10_000, seed: int = 0,
             out: str | Path | None = None) -> list[dict]:
    """`ganforge eval`: metrics of a checkpoint or export; writes `out` (JSON) atomically when given."""
    from ganforge.metrics import check_metric_names, default_metrics, evaluate_generator

    if metrics:
        check_metric_names(metrics)  # before loading anything: a typo fails fast
    G, cfg, step = load_generator(source)
    records = evaluate_generator(G, cfg, metrics or default_metrics(cfg), num_samples, seed, step, str(source))
    if out is not None:
        import json

        checkpoint.atomic_write_text(Path(out), json.dumps(records, indent=2) + "\n")
    return records
