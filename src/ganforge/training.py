"""Training a config from start to end, in the order things happen: device and process group, the
checkpoint to resume (loaded and checked before anything is written), seeds, data, recipe and
schedule (a bad batch size is refused before a folder exists), the run folder, hooks, the loop,
then the export and the report. `ganforge.api.train` is this module's `train`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

from ganforge import checkpoint, config as config_mod, validate
from ganforge.config import Config
from ganforge.core import distributed, paths
from ganforge.core.errors import CheckpointError, ConfigError
from ganforge.data import DATASETS, Dataset, build_dataset
from ganforge.engine.health import HealthMonitor
from ganforge.engine.watch import Watch
from ganforge.engine.metrics_hook import MetricsHook
from ganforge.engine.run import RunDir, elastic_home, find_resume, orphan_run, run_of_checkpoint
from ganforge.engine.samples import SampleGrids
from ganforge.engine.trainer import Schedule, Trainer, TrainResult, make_schedule
from ganforge.recipes import RECIPES, Recipe, build_recipe
from ganforge.report.run_report import write_run_report


def resolve_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device=cuda but no CUDA device is available: use --device cpu or auto")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


# --- train -------------------------------------------------------------------------------------------

def _dry_run_config(cfg: Config, tmp: Path) -> Config:
    d = config_mod.to_dict(cfg)
    spec = DATASETS[cfg.data.name]
    if spec.kind == "points":
        d["data"]["toy_num_samples"] = 512
    else:  # the stand-in of the same kind: random images, paired or unpaired as the recipe needs
        d["data"]["name"] = next(n for n, s in DATASETS.items() if s.dry_run and s.translation == spec.translation)
        d["data"]["captions"] = spec.has_captions(cfg.data)  # captioned random images for a text-to-image model
    d["train"].update(max_steps=2, batch_size=min(cfg.train.batch_size, 16))
    d["model"]["num_classes"] = 0  # the fake data's classes
    d["data"]["split"] = "train"  # the fake data's only split
    d["log"].update(progress=False, stats_every_steps=1)
    d["run"]["dir"] = str(tmp)
    return validate.from_dict(d, "dry run")


def train(cfg: Config, resume: str | None = None, dry_run: bool = False, log=print) -> tuple[Path, TrainResult]:
    """Train `cfg`; returns (run directory, result). With dry_run, a couple of steps on fake data."""
    completed = RECIPES[cfg.train.recipe].complete(cfg)  # validate.load did it already for the CLI
    if completed is not cfg:
        validate.check(completed)
        cfg = completed
    if dry_run:
        with tempfile.TemporaryDirectory(prefix="ganforge-dry-") as tmp:
            run_dir, result = _run(_dry_run_config(cfg, Path(tmp)), None, log)
            log(f"dry run ok: {result.step} steps of {cfg.train.recipe} ({'/'.join(config_mod.net_names(cfg))}) on fake data, "
                + ", ".join(f"{k}={v:.3f}" for k, v in result.last_stats.items()))
            return run_dir, result
    return _run(cfg, resume, log)


def _run(cfg: Config, resume: str | None, log) -> tuple[Path, TrainResult]:
    info, device_choice = distributed.init_from_env(cfg.train.device)
    try:
        return _train(cfg, resume, log, info, device_choice)
    finally:
        distributed.shutdown(info)


def prepare(cfg: Config, device: torch.device, info=distributed.DistInfo()) -> tuple[Dataset, Recipe, Schedule]:
    """Data, recipe and schedule of a run, seeded as every run is (also used by the DDP test worker)."""
    torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank
    data = build_dataset(cfg.data, cfg.train.seed)
    if cfg.model.conditional != "none" or RECIPES[cfg.train.recipe].has_classifier:  # the class count is the data's, recorded in the config
        if cfg.model.num_classes == 0:
            cfg.model.num_classes = len(data.classes)
        elif cfg.model.num_classes != len(data.classes):
            raise ConfigError(f"model.num_classes={cfg.model.num_classes} but {data.name} has {len(data.classes)} "
                              "classes: drop model.num_classes (0 takes the data's)")
        if not cfg.model.class_names:  # so that a saved model names its classes (a folder's come from its files)
            cfg.model.class_names = list(data.classes)
    recipe = build_recipe(cfg, data, device, info)
    distributed.seed_rank_stream(cfg.train.seed, info)
    return data, recipe, make_schedule(cfg, len(data), info, data.extra.get("summary"))


def _train(cfg: Config, resume: str | None, log, info, device_choice: str) -> tuple[Path | None, TrainResult]:
    started = time.time()
    device = torch.device(device_choice) if ":" in device_choice else resolve_device(device_choice)
    resume, fresh_in = _after_restart(cfg, resume, info)
    ckpt_path = find_resume(cfg, resume) if resume else None
    stamp = _stamp(ckpt_path) if ckpt_path else None
    ckpt = checkpoint.load_for_resume(ckpt_path, config_mod.to_dict(cfg)) if ckpt_path else None
    _same_start_on_every_rank(ckpt["step"] if ckpt else 0, device, info)
    if info.is_main:
        paths.output_dir(cfg.run.dir, "run.dir")  # before the data is loaded and the nets are built
    data, recipe, schedule = prepare(cfg, device, info)
    if ckpt is not None and ckpt["config"]["model"].get("num_classes", 0) != cfg.model.num_classes:
        raise CheckpointError(f"cannot resume {ckpt_path}: it was trained on {ckpt['config']['model']['num_classes']} "
                              f"classes and the data now has {cfg.model.num_classes}; start a new run (drop --resume)")

    run = (_run_folder(cfg, resume, ckpt_path, ckpt, stamp, log, fresh_in, take_over=distributed.restart_count() > 0)
           if info.is_main else None)  # only rank 0 writes files
    try:
        return _train_in(run, cfg, data, recipe, schedule, ckpt, ckpt_path, device, info, log, started)
    finally:
        if run is not None:
            run.release()


def _train_in(run: RunDir | None, cfg: Config, data: Dataset, recipe: Recipe, schedule: Schedule, ckpt: dict | None,
              ckpt_path: Path | None, device: torch.device, info, log, started: float) -> tuple[Path | None, TrainResult]:
    if run is not None:
        run.write_config(cfg)
        if cfg.log.tensorboard:
            run.mirror_to_tensorboard(ckpt["step"] if ckpt else 0)
        note = f" (a {ckpt['upgraded_from']} checkpoint, upgraded on load)" if ckpt and "upgraded_from" in ckpt else ""
        run.log(f"start at step {ckpt['step'] if ckpt else 0}{note}: {data.name} ({len(data)} samples, {data.source}), "
                f"{cfg.train.recipe} (G {config_mod.net_names(cfg)[0]}, D {config_mod.net_names(cfg)[1]}), device {device}, precision {recipe.precision}, "
                f"{info.world_size} process(es)")
    if run is not None:
        recipe.use_run_folder(run.path)
    if run is not None and data.extra.get("storage"):  # a folder: decoded into memory, cached or streamed
        run.log(f"images: {data.extra['storage']}")
        log(f"images: {data.extra['storage']}")
    hooks = [SampleGrids(cfg, data, recipe, run)] if run is not None else []
    if run is not None and cfg.health.watch_every:  # advice for the person watching: rank 0 only
        hooks.append(Watch(cfg, data, recipe, run))
    if cfg.eval.every_steps:  # on every rank: each generates its share of the samples
        hooks.append(MetricsHook(cfg, recipe, run, info))
    if cfg.health.every_steps:  # on every rank, like the metrics
        hooks.append(HealthMonitor(cfg, recipe, data, run, info))
    trainer = Trainer(cfg, recipe, data, device, schedule, run, hooks, log=log if info.is_main else (lambda s: None),
                      dist=info)
    result = trainer.fit(ckpt, best=_best_of(ckpt_path) if ckpt is not None and cfg.train.keep_best
                         and run_of_checkpoint(ckpt_path) else None)
    distributed.barrier(info)  # the last collective: rank 0's export and report below need none
    if run is None:
        return None, result
    export_dir = _export(recipe, result, run)
    if cfg.log.report:
        write_run_report(run, cfg, data, recipe, trainer, export_dir, started)
    run.log(f"stop at step {result.step}{' (' + result.interrupted_by + ')' if result.interrupted_by else ''}; "
            f"checkpoint {result.checkpoint}")
    return run.path, result


def _after_restart(cfg: Config, resume: str | None, info) -> tuple[str | None, Path | None]:
    """(what to resume, a run folder to start over in) for a group torchrun restarted after a lost
    worker (TORCHELASTIC_RESTART_COUNT > 0): the last checkpoint of the run folder this torchrun job
    made, unasked; that folder afresh when the job died before its first checkpoint. Otherwise, and
    when rank 0 died before making a folder, what was asked."""
    restarts = distributed.restart_count()
    home = elastic_home(cfg) if restarts else None
    if home is None:
        return resume, None
    last = home / "ckpt" / "last.pt"
    if info.is_main:
        what = "from its last checkpoint" if last.is_file() else "from the start (it died before its first checkpoint)"
        print(f"torchrun restart {restarts}: continuing {home} {what}", file=sys.stderr)
    if last.is_file():
        return str(last), None
    return resume, home if resume is None else None


def _same_start_on_every_rank(step: int, device: torch.device, info) -> None:
    """Every rank resumes from the same step, or none starts: ranks that read different checkpoints
    (a run folder not shared between machines) would wait for each other at the end."""
    if not info.enabled:
        return
    seen = distributed.all_reduce_max(torch.tensor([step, -step], dtype=torch.float64, device=device), info).tolist()
    if seen[0] != -seen[1]:
        raise CheckpointError(f"the processes start from different steps ({int(-seen[1])} to {int(seen[0])}): they "
                              "read different checkpoints. Put run.dir on a file system every machine shares "
                              "(docs/DISTRIBUTED.md)")


def _stamp(path: Path) -> tuple[int, int, int]:
    """What identifies a checkpoint file's version (a save replaces the file: a new inode)."""
    st = Path(path).stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def _run_folder(cfg: Config, resume: str | None, ckpt_path: Path | None, ckpt: dict | None,
                stamp: tuple | None, log, fresh_in: Path | None = None, take_over: bool = False) -> RunDir:
    """Where this run writes; a surprise (a new folder where a resume was asked for) is said on
    stderr. ganforge writes only into run folders it made: a loose checkpoint (one copied out of
    its run) seeds a new one. Nothing is said about resuming a run until its lock is held."""
    def say(message: str) -> None:
        print(message, file=sys.stderr)

    if fresh_in is not None:  # a torchrun restart of a run that died before its first checkpoint
        return RunDir.resume(fresh_in, take_over=True).restart()
    if ckpt is not None:
        home = run_of_checkpoint(ckpt_path)
        if home is not None:
            run = RunDir.resume(home, take_over)  # refused while another process writes in it
            try:
                same = _stamp(ckpt_path) == stamp
            except OSError:  # rotated away meanwhile
                same = False
            if not same:  # another process wrote a newer checkpoint before letting go
                run.release()
                raise CheckpointError(f"{ckpt_path} changed while this process was resuming it (another ganforge "
                                      "process wrote a newer checkpoint and ended): run the same command again")
            log(f"resuming {home} from step {ckpt['step']}")
            return run
        run = RunDir.new(cfg)
        say(f"{ckpt_path} is not inside a ganforge run folder: continuing from its step {ckpt['step']} "
            f"in a new run folder, {run.path} (nothing is written beside the checkpoint)")
        run.log(f"seeded from the loose checkpoint {Path(ckpt_path).resolve()} (step {ckpt['step']})")
        return run
    if resume == "auto":
        orphan = orphan_run(cfg)
        if orphan is not None:
            say(f"--resume auto: the newest run of '{cfg.run.name}', {orphan.path}, stopped before its first "
                "checkpoint; starting over in that folder")
            return orphan.restart()
        run = RunDir.new(cfg)
        say(f"--resume auto: no earlier run of '{cfg.run.name}' under {cfg.run.dir}/ has a checkpoint; "
            f"starting a new run in {run.path}")
        return run
    return RunDir.new(cfg)


def _best_of(ckpt_path: Path) -> dict | None:
    """The run's ckpt/best.pt beside the checkpoint resumed (what a rollback returns to), if any."""
    best = Path(ckpt_path).parent / "best.pt"
    return checkpoint.load(best) if best.is_file() else None


def _export(recipe: Recipe, result: TrainResult, run: RunDir) -> Path:
    """export/: the trained generator as safetensors + JSON, for `ganforge sample` and sharing."""
    G = recipe.generator()
    G.step = result.step
    return G.export(run / "export")
