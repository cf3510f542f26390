"""The library's entry points: train, sample, export, evaluate. The CLI is a thin layer over these.

`train` reads top to bottom as the order things happen in: device and process group, the
checkpoint to resume (loaded and checked before anything is written), seeds, data, recipe and
schedule (a bad batch size is refused before a folder exists), the run folder, hooks, the loop,
then the export and the report.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ganforge import checkpoint, config as config_mod, distributed, latent, paths
from ganforge.config import Config
from ganforge.data import DATASETS, Dataset, build_dataset
from ganforge.errors import CheckpointError, ConfigError
from ganforge.generator import GeneratorHandle, load_generator
from ganforge.hooks import SampleGrids, write_run_report
from ganforge.recipes import Recipe, build_recipe
from ganforge.reporting import save_image_grid, save_scatter
from ganforge.run import RunDir, find_resume, orphan_run, run_of_checkpoint
from ganforge.trainer import Schedule, Trainer, TrainResult, make_schedule

__all__ = ["train", "sample", "interp", "export", "evaluate", "load_generator", "prepare", "resolve_device"]


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
    elif spec.translation:
        d["data"]["name"] = f"fake-{spec.translation}"
    else:
        d["data"]["name"] = "fake"
    d["train"].update(max_steps=2, batch_size=min(cfg.train.batch_size, 16))
    d["model"]["num_classes"] = 0  # the fake data's classes
    d["log"].update(progress=False, stats_every_steps=1)
    d["run"]["dir"] = str(tmp)
    return config_mod.from_dict(d, "dry run")


def train(cfg: Config, resume: str | None = None, dry_run: bool = False, log=print) -> tuple[Path, TrainResult]:
    """Train `cfg`; returns (run directory, result). With dry_run, a couple of steps on fake data."""
    if dry_run:
        with tempfile.TemporaryDirectory(prefix="ganforge-dry-") as tmp:
            run_dir, result = train(_dry_run_config(cfg, Path(tmp)), log=log)
            log(f"dry run ok: {result.step} steps of {cfg.train.recipe} ({'/'.join(config_mod.net_names(cfg))}) on fake data, "
                + ", ".join(f"{k}={v:.3f}" for k, v in result.last_stats.items()))
            return run_dir, result
    info, device_choice = distributed.init_from_env(cfg.train.device)
    try:
        return _train(cfg, resume, log, info, device_choice)
    finally:
        distributed.shutdown(info)


def prepare(cfg: Config, device: torch.device, info=distributed.DistInfo()) -> tuple[Dataset, Recipe, Schedule]:
    """Data, recipe and schedule of a run, seeded as every run is (also used by the DDP test worker)."""
    torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank
    data = build_dataset(cfg.data, cfg.train.seed)
    if cfg.model.conditional != "none":  # the class count is the data's, recorded in the config
        if cfg.model.num_classes == 0:
            cfg.model.num_classes = len(data.classes)
        elif cfg.model.num_classes != len(data.classes):
            raise ConfigError(f"model.num_classes={cfg.model.num_classes} but {data.name} has {len(data.classes)} "
                              "classes: drop model.num_classes (0 takes the data's)")
    recipe = build_recipe(cfg, data, device, info)
    distributed.seed_rank_stream(cfg.train.seed, info)
    return data, recipe, make_schedule(cfg, len(data), info, data.extra.get("summary"))


def _train(cfg: Config, resume: str | None, log, info, device_choice: str) -> tuple[Path | None, TrainResult]:
    started = time.time()
    device = torch.device(device_choice) if ":" in device_choice else resolve_device(device_choice)
    ckpt_path = find_resume(cfg, resume) if resume else None
    ckpt = checkpoint.load_for_resume(ckpt_path, config_mod.to_dict(cfg)) if ckpt_path else None
    if info.is_main:
        paths.output_dir(cfg.run.dir, "run.dir")  # before the data is loaded and the nets are built
    data, recipe, schedule = prepare(cfg, device, info)
    if ckpt is not None and ckpt["config"]["model"].get("num_classes", 0) != cfg.model.num_classes:
        raise CheckpointError(f"cannot resume {ckpt_path}: it was trained on {ckpt['config']['model']['num_classes']} "
                              f"classes and the data now has {cfg.model.num_classes}; start a new run (drop --resume)")

    run = _run_folder(cfg, resume, ckpt_path, ckpt, log) if info.is_main else None  # only rank 0 writes files
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
    hooks = [SampleGrids(cfg, data, recipe, run)] if run is not None else []
    if cfg.eval.every_steps:  # on every rank: each generates its share of the samples
        from ganforge.metrics.hook import MetricsHook

        hooks.append(MetricsHook(cfg, recipe, run, info))
    if cfg.health.every_steps:  # on every rank, like the metrics
        from ganforge.health import HealthMonitor

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


def _run_folder(cfg: Config, resume: str | None, ckpt_path: Path | None, ckpt: dict | None, log) -> RunDir:
    """Where this run writes; a surprise (a new folder where a resume was asked for) is said on
    stderr. ganforge writes only into run folders it made: a loose checkpoint (one copied out of
    its run) seeds a new one."""
    def say(message: str) -> None:
        print(message, file=sys.stderr)

    if ckpt is not None:
        home = run_of_checkpoint(ckpt_path)
        if home is not None:
            log(f"resuming {home} from step {ckpt['step']}")
            return RunDir.resume(home)
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


# --- sample / export / evaluate -----------------------------------------------------------------------

MAX_GRID = 10_000  # samples in one picture (a 100 x 100 grid); datasets go through sample_dataset


def sample(source: str | Path, n: int, out: str | Path, seed: int = 0, c: int | None = None,
           truncation: float | None = None, psi: float | None = None) -> Path:
    if not 1 <= n <= MAX_GRID:
        raise ConfigError(f"--n {n}: a sample grid holds 1 to at most {MAX_GRID} samples; for a dataset of "
                          "conditional samples use --labels (written in batches)")
    G = load_generator(source)
    out = paths.output_file(out, "--out", paths.FIGURE_SUFFIXES if G.is_points else paths.IMAGE_SUFFIXES)
    x = G.sample(n, seed=seed, c=c, truncation=truncation, psi=psi)
    if G.is_points:
        return save_scatter(x, out, title=f"{n} samples, step {G.step}")
    return save_image_grid(x, out, G.value_range)


def sample_dataset(source: str | Path, n: int, out: str | Path, seed: int = 0, fmt: str = "png",
                   batch: int = 1000) -> Path:
    """`ganforge sample --labels`: n samples of a conditional generator, the classes in turn, as a
    labelled dataset any tool reads - a folder per class of PNGs, or MNIST-style IDX files
    (synthetic-images-idx3-ubyte, synthetic-labels-idx1-ubyte). Written beside `out` and renamed
    into place at the end, so an interrupted run leaves no half dataset."""
    import shutil

    from PIL import Image

    from ganforge.data.idx import idx_bytes
    from ganforge.reporting import to_uint8

    G = load_generator(source)
    if not G.num_classes:
        raise ConfigError(f"--labels needs a conditional generator; {source} is unconditional (model.conditional=none)")
    if G.is_points:
        raise ConfigError("--labels writes images; this generator makes 2-D points")
    out = Path(out)
    if out.exists():
        raise ConfigError(f"--out {out} exists: choose a new folder (nothing was written)")
    paths.output_dir(out.parent, "--out")
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if fmt == "idx" and G.num_classes > 256:
            raise ConfigError(f"--format idx stores labels as bytes; this generator has {G.num_classes} classes: "
                              "use --format png")
        inputs = G.inputs(n, seed)
        labels = inputs["c"].numpy()
        if fmt == "idx" and G.cfg.data.channels != 1:
            raise ConfigError("--format idx holds grey images; this generator makes RGB: use --format png")
        # zero-padded names: sorted as text (as ganforge and torchvision read folders) they keep class order
        names = [f"{k:0{len(str(G.num_classes - 1))}d}" for k in range(G.num_classes)]
        with contextlib.ExitStack() as files:
            idx_file = None
            if fmt == "idx":  # the header first, then the pixels batch by batch: memory stays one batch
                res = G.cfg.data.resolution
                idx_file = files.enter_context(open(tmp / "synthetic-images-idx3-ubyte", "wb"))
                idx_file.write(bytes([0, 0, 0x08, 3]) + b"".join(int(d).to_bytes(4, "big") for d in (n, res, res)))
                (tmp / "synthetic-labels-idx1-ubyte").write_bytes(idx_bytes(labels.astype(np.uint8)))
            else:
                for name in names:
                    (tmp / name).mkdir()
            for start in range(0, n, batch):
                part = {k: v[start:start + batch] for k, v in inputs.items()}
                images = to_uint8(G.generate(part, batch), G.value_range)  # [b, H, W, C]
                if idx_file is not None:
                    idx_file.write(np.ascontiguousarray(images[..., 0]).tobytes())
                    continue
                for i, im in enumerate(images, start):
                    Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(tmp / names[labels[i]] / f"{i:06d}.png")
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def interp(source: str | Path | GeneratorHandle, out: str | Path, seeds: list[int], steps: int = 16,
           fps: float = 12.0, c: int | None = None, psi: float | None = None, space: str = "z") -> Path:
    """`ganforge interp`: a latent walk through the latents of `seeds` (each the latent `sample
    --seed S` draws first), `steps` frames per leg; a GIF (looping back to the first seed) or, for
    `out` ending in .png, the frames of the open path in one strip. space="w" walks a style-based
    generator's intermediate latent in straight lines (as StyleGAN's path-length measure does)."""
    from ganforge.reporting import save_gif, to_uint8

    if len(seeds) < 2:
        raise ConfigError(f"--seeds {' '.join(map(str, seeds))}: a walk needs at least two seeds")
    if steps < 2 or steps > 1000:
        raise ConfigError(f"--steps {steps}: frames per leg between two seeds, 2 to 1000")
    if not 0 < fps <= 100:
        raise ConfigError(f"--fps {fps}: frames per second, above 0 and at most 100")
    out = paths.output_file(out, "--out", (".gif", ".png"))
    G = source if isinstance(source, GeneratorHandle) else load_generator(source)
    if G.is_points:
        raise ConfigError("interp draws a walk of images; this generator makes 2-D points (use ganforge sample)")
    if space not in ("z", "w"):
        raise ConfigError(f"--space {space}: z (the input latent) or w (StyleGAN's intermediate latent)")
    if space == "w" and not G.num_ws:
        raise ConfigError("--space w walks StyleGAN's intermediate latent; this generator has only z (use --space z)")
    keys = [G.inputs(1, seed, c=c if c is not None else (0 if G.num_classes else None)) for seed in seeds]
    loop = out.suffix.lower() == ".gif"
    if space == "w":
        return _walk_in_w(G, keys, loop, steps, psi, out, fps)
    legs = list(zip(keys, keys[1:] + keys[:1] if loop else keys[1:]))
    t = torch.arange(steps) / steps  # each leg's end is the next leg's start
    z = torch.cat([latent.interpolate(a["z"][0], b["z"][0], t, G.cfg.model.z_dist) for a, b in legs])
    if not loop:
        z = torch.cat([z, keys[-1]["z"]])  # the open path ends on the last seed
    inputs = G.with_psi({"z": z, **({"c": keys[0]["c"].expand(len(z)).clone()} if "c" in keys[0] else {})}, psi)
    x = G.generate(inputs, batch=256)
    if loop:
        return save_gif(to_uint8(x, G.value_range), out, duration_ms=round(1000 / fps))
    return save_image_grid(x, out, G.value_range, nrow=len(z))


def _walk_in_w(G: GeneratorHandle, keys: list[dict], loop: bool, steps: int, psi: float | None, out: Path,
               fps: float) -> Path:
    """interp --space w: straight lines between the seeds' w (truncated by psi toward the mean w)."""
    from ganforge.reporting import save_gif, to_uint8

    ends = [G.styles(G.with_psi(k, psi)) for k in keys]
    legs = list(zip(ends, ends[1:] + ends[:1] if loop else ends[1:]))
    x = G.generate({"ws": latent.w_line(legs, steps, closed=loop)}, batch=256)
    if loop:
        return save_gif(to_uint8(x, G.value_range), out, duration_ms=round(1000 / fps))
    return save_image_grid(x, out, G.value_range, nrow=len(x))


def translate(source: str | Path, inputs: str | Path, out: str | Path, direction: str = "AtoB",
              keep_size: bool = False) -> tuple[Path, int]:
    """`ganforge translate`: every readable image of a file or folder through a pix2pix / CycleGAN
    generator, written (atomically) as PNG under `out` with the same relative path and name, suffix
    .png (a.jpg beside a.png keeps its suffix: a.jpg.png). Files that cannot be read are named in
    one warning and the rest go on; none readable is an error. Images are brought to the model's
    training size (as data loading does: scaled to cover, centre crop), or with keep_size to their
    own size, centre-cropped (not resampled) to a multiple of the generator's stride.
    Returns (out, the number written)."""
    import warnings

    from PIL import Image

    from ganforge.checkpoint import atomic_write
    from ganforge.data.dataset import to_range
    from ganforge.data.folder import DataWarning, FolderScan, _candidates
    from ganforge.nets.translation import size_multiple
    from ganforge.reporting import to_uint8

    G = load_generator(source)
    if G.takes_latent:
        raise ConfigError(f"{source}: a {G.cfg.train.recipe} generator draws images from seeds; translate needs a "
                          "pix2pix or cyclegan model (use ganforge sample)")
    net = G.net(direction)
    inputs = Path(inputs)
    if not inputs.exists():
        raise ConfigError(f"--input {inputs}: no such file or folder")
    out = paths.output_dir(out, "--out")
    root = inputs if inputs.is_dir() else inputs.parent
    overlap = (_inside(out, inputs) or _inside(inputs, out)) if inputs.is_dir() else _inside(inputs.parent, out) \
        and _inside(out, inputs.parent)
    if overlap:
        raise ConfigError(f"--out {out} and --input {inputs} overlap: translations would overwrite or be read as "
                          "inputs; choose a separate folder")
    scan = FolderScan(root)
    files = _candidates(inputs, scan) if inputs.is_dir() else [inputs]
    names = _output_names([p.relative_to(root) for p in files])
    d = G.cfg.data
    step = size_multiple(net)
    written = 0
    for p, name in zip(files, names):
        try:
            image = _translation_input(p, d, step, keep_size)
        except _TooSmall:
            scan.skip(f"image(s) smaller than the net's stride ({step} px)", p)
            continue
        except Exception as e:  # Pillow raises many types for broken files: each is "skip it, say so"
            scan.skip(f"unreadable file(s) ({type(e).__name__})", p)
            continue
        x = to_range(torch.tensor(image)[None], d.range)
        y = to_uint8(G({"a": x, "direction": direction}), G.value_range)[0]
        picture = Image.fromarray(y[..., 0] if y.shape[-1] == 1 else y)
        atomic_write(out / name, lambda f: picture.save(f, format="PNG"))
        written += 1
    scan.used = written
    message = scan.warning()
    if message:
        warnings.warn(message, DataWarning, stacklevel=2)
    if not written:
        raise ConfigError(f"--input {inputs}: no image could be translated ({scan.summary()})")
    return out, written


def _inside(a: Path, b: Path) -> bool:
    return Path(a).resolve().is_relative_to(Path(b).resolve())


class _TooSmall(ValueError):
    pass


def _output_names(rels: list[Path]) -> list[Path]:
    """Each input's output name: its relative path with suffix .png, or, where two would meet
    (a.jpg and a.png, or names equal but for case), the whole name + .png, then a counter."""
    plain = [r.with_suffix(".png") for r in rels]
    counts: dict[str, int] = {}
    for n in plain:
        counts[n.as_posix().lower()] = counts.get(n.as_posix().lower(), 0) + 1
    names, taken = [], set()
    for r, n in zip(rels, plain):
        name = n if counts[n.as_posix().lower()] == 1 else r.with_name(r.name + ".png")
        k = 1
        while name.as_posix().lower() in taken:
            name, k = r.with_name(f"{r.name}.{k}.png"), k + 1
        taken.add(name.as_posix().lower())
        names.append(name)
    return names


def _translation_input(path: Path, d, step: int, keep_size: bool) -> np.ndarray:
    """uint8 [C, H, W]: at the training size, or (keep_size) at the file's own size centre-cropped
    to a multiple of `step` (at least one step)."""
    from PIL import Image

    from ganforge.data.folder import load_image, parse_background

    if not keep_size:
        return load_image(path, (d.resolution, d.image_width or d.resolution), d.channels,
                          parse_background(d.background))[0]
    with Image.open(path) as im:
        w, h = im.size
        try:
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientation that turns it by 90 degrees
                w, h = h, w
        except Exception:  # a damaged EXIF block: load_image ignores it too
            pass
    H, W = h // step * step, w // step * step
    if not H or not W:
        raise _TooSmall(f"{w} x {h}")
    image = load_image(path, (h, w), d.channels, parse_background(d.background))[0]  # own size: no resampling
    top, left = (h - H) // 2, (w - W) // 2
    return image[:, top:top + H, left:left + W]


def style_mixing(source: str | Path | GeneratorHandle, out: str | Path, row_seeds=(0, 1, 2, 3),
                 col_seeds=(4, 5, 6, 7), cut: int | None = None, psi: float | None = None) -> Path:
    """The StyleGAN paper's style-mixing figure at our resolution: the first row shows the images
    of `col_seeds`, the first column those of `row_seeds`, and each cell takes its coarse styles
    (the layers before `cut`: pose, shape) from its row's seed and the fine ones (from `cut` on:
    stroke, texture) from its column's. Default cut: half the layers."""
    G = source if isinstance(source, GeneratorHandle) else load_generator(source)
    if not G.num_ws:
        raise ConfigError("style mixing needs a style-based generator (model.arch=stylegan); this one maps z to "
                          "images directly")
    if not row_seeds or not col_seeds:
        raise ConfigError("style mixing needs at least one row seed and one column seed")
    num_ws = G.num_ws
    cut = num_ws // 2 if cut is None else cut
    if not 1 <= cut < num_ws:
        raise ConfigError(f"--cut {cut}: the layer where fine styles start, 1 to {num_ws - 1}")
    out = paths.output_file(out, "--out", paths.IMAGE_SUFFIXES)

    def ws(seeds):
        return G.styles(G.with_psi({"z": torch.cat([G.inputs(1, seed)["z"] for seed in seeds])}, psi))

    w_rows, w_cols = ws(row_seeds), ws(col_seeds)
    top = G({"ws": w_cols})
    cells = [torch.cat([G({"ws": w_rows[r:r + 1]}), G({"ws": G.mix_styles(w_rows[r:r + 1], w_cols, cut)})])
             for r in range(len(row_seeds))]
    blank = torch.full_like(top[:1], -1.0 if G.value_range == "signed" else 0.0)
    grid = torch.cat([blank, top, *cells]).float().cpu()
    return save_image_grid(grid, out, G.value_range, nrow=len(col_seeds) + 1)


SWEEP_PSI = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)  # rows of the report's truncation grid


def truncation_sweep(source: str | Path | GeneratorHandle, out: str | Path, n: int = 8, seed: int = 0,
                     psis=SWEEP_PSI) -> Path | None:
    """A grid with a row per psi (truncation toward the mean latent: 1 leaves the latents, 0 gives
    every column the mean latent) and a column per latent: the same seeds, so each column shows one
    sample trading variety for typicality. None for generators of 2-D points."""
    G = source if isinstance(source, GeneratorHandle) else load_generator(source)
    if G.is_points:
        return None
    rows = [G.sample(n, seed=seed, psi=p) for p in psis]
    return save_image_grid(torch.cat(rows), paths.output_file(out, "--out", paths.IMAGE_SUFFIXES), G.value_range, nrow=n)


def export(source: str | Path, out: str | Path, fmt: str = "safetensors") -> Path:
    """safetensors + JSON (a folder, for ganforge itself), or an ONNX graph (a .onnx file) that any
    ONNX runtime runs without ganforge: inputs z (and c), output samples in the data's range."""
    if fmt == "onnx":
        out = paths.output_file(out, "--out", (".onnx",))
        from ganforge.onnx_export import export_onnx

        return export_onnx(load_generator(source), out)
    if fmt != "safetensors":
        raise ConfigError(f"--format {fmt!r}: choose safetensors or onnx")
    G = load_generator(source)
    return G.export(paths.output_dir(out, "--out"))


def evaluate(source: str | Path | GeneratorHandle, metrics: list[str] | None = None, num_samples: int = 10_000,
             seed: int = 0, out: str | Path | None = None, inception_weights: str | None = None,
             feature_net: str | None = None) -> list[dict]:
    """`ganforge eval`: metrics of a checkpoint or export; writes `out` (JSON) atomically when given.
    `inception_weights` and `feature_net` (files) override the generator's eval.* settings."""
    from ganforge.metrics import check_metric_names, default_metrics, evaluate_generator

    if metrics:
        check_metric_names(metrics)  # before loading anything: a typo fails fast
    if out is not None:
        paths.output_file(out, "--out", (".json",))
    G = source if isinstance(source, GeneratorHandle) else load_generator(source)
    if inception_weights:
        G.cfg.eval.inception_weights = str(inception_weights)
    if feature_net:
        G.cfg.eval.feature_net = str(feature_net)
    records = evaluate_generator(G, metrics or default_metrics(G.cfg), num_samples, seed, G.step, str(source))
    if out is not None:
        import json

        checkpoint.atomic_write_text(Path(out), json.dumps(records, indent=2) + "\n")
    return records
