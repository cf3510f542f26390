"""The library's entry points: train, sample, interp, stylemix, translate, export, evaluate. The CLI
is a thin layer over these; a notebook calls them directly.

    from ganforge import api, validate
    run_dir, result = api.train(validate.load("configs/demo.yaml"))
    api.sample(run_dir, 64, "grid.png", seed=1)
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge import checkpoint, explore, validate
from ganforge.core import paths
from ganforge.core.errors import CheckpointError, ConfigError
from ganforge.core.rng import check_seed
from ganforge.core.images import save_image_grid, save_scatter, to_uint8
from ganforge.core.io import atomic_write, atomic_write_text
from ganforge.data import DATASETS
from ganforge.data.dataset import to_range
from ganforge.data.degrade import load_mask_like_image, mask_files
from ganforge.data.folder import DataWarning, FolderScan, candidates, load_image, parse_background
from ganforge.data.idx import idx_bytes, idx_header
from ganforge.explore import SWEEP_PSI
from ganforge.explore.inpaint import PRIOR_WEIGHT, check_inpainting
from ganforge.explore.project import check_choice as check_projection
from ganforge.explore.project import check_weights as check_projection_weights
from ganforge.explore.project import search_steps
from ganforge.generator import GeneratorHandle, noise_layers
from ganforge.metrics import check_metric_names, default_metrics, evaluate_generator
from ganforge.metrics.accuracy import classify as classify_logits
from ganforge.nets.srgan import scale_of
from ganforge.nets.translation import size_multiple
from ganforge.recipes import RECIPES
from ganforge.training import prepare, resolve_device, train

__all__ = ["train", "sample", "sample_dataset", "interp", "style_mixing", "truncation_sweep", "translate", "classify",
           "export", "evaluate", "load_generator", "prepare", "resolve_device"]


def load_generator(source: str | Path, device: str = "cpu", average: bool = True) -> GeneratorHandle:
    """The generator of a checkpoint file, a run folder, or an export folder / its files: its
    moving average of weights when it has one, unless `average` is False (the trained weights)."""
    return _load(source, device, average)[0]


def _load(source: str | Path, device: str = "cpu", average: bool = True, critic: bool = False):
    """(generator handle, D as a critic or None, why not) of a source (see load_generator)."""
    cfg_dict, nets, step = checkpoint.load_generator_source(source)
    if not average:
        nets = {name: state for name, state in nets.items() if not name.endswith("_ema")}
    try:
        cfg = validate.from_dict(cfg_dict, f"{source} (embedded config)", saved=True)
    except ConfigError as e:
        raise CheckpointError(f"{source}: its embedded config is not valid for this ganforge version: {e}") from None
    recipe = RECIPES[cfg.train.recipe]
    try:
        G = recipe.load_generator(cfg, nets, step, device)
        D, why = recipe.load_critic(cfg, nets, device) if critic else (None, "")
        return G, D, why
    except ConfigError as e:  # e.g. a hand-edited width too large to build
        raise CheckpointError(f"{source}: {e}") from None
    except RuntimeError as e:
        raise CheckpointError(f"{source}: generator weights do not match its config ({str(e).splitlines()[0]})") from None
    except KeyError as e:
        raise CheckpointError(f"{source}: {e.args[0]}") from None


def _handle(source: str | Path | GeneratorHandle) -> GeneratorHandle:
    return source if isinstance(source, GeneratorHandle) else load_generator(source)


# --- sample / export / evaluate -----------------------------------------------------------------------

MAX_GRID = 10_000  # samples in one picture (a 100 x 100 grid); datasets go through sample_dataset


def sample(source: str | Path, n: int, out: str | Path, seed: int = 0, c: int | None = None,
           truncation: float | None = None, psi: float | None = None, latent: str | Path | None = None,
           text: str | list[str] | None = None) -> Path:
    """`ganforge sample`: a grid of n samples from a seed, or (`latent`) the image of a latent that
    `ganforge project` wrote. A text-to-image model draws them for `text`: one caption, or a list
    of captions, each a row of the same n seeds."""
    if latent is not None:
        G = _handle(source)
        out = paths.output_file(out, "--out", paths.IMAGE_SUFFIXES)
        _save_picture(to_uint8(G.generate(latent_inputs(G, latent)), G.value_range)[0], out)
        return out
    if not 1 <= n <= MAX_GRID:
        raise ConfigError(f"--n {n}: a sample grid holds 1 to at most {MAX_GRID} samples; for a dataset of "
                          "conditional samples use --labels (written in batches)")
    G = _handle(source)
    out = paths.output_file(out, "--out", paths.FIGURE_SUFFIXES if G.is_points else paths.IMAGE_SUFFIXES)
    if text is not None and not isinstance(text, str):
        return _caption_rows(G, list(text), n, out, seed, truncation, psi)
    x = G.sample(n, seed=seed, c=c, truncation=truncation, psi=psi, text=text)
    if G.is_points:
        return save_scatter(x, out, title=f"{n} samples, step {G.step}")
    return save_image_grid(x, out, G.value_range)


def _caption_rows(G: GeneratorHandle, texts: list[str], n: int, out: Path, seed: int, truncation, psi) -> Path:
    """A grid with a row per caption, the same n latents in every row."""
    if not texts or n * len(texts) > MAX_GRID:
        raise ConfigError(f"--text: {len(texts)} caption(s) x --n {n} samples; a grid holds 1 to {MAX_GRID}")
    inputs = G.inputs(n, seed, truncation=truncation, psi=psi, text=texts[0])
    t = G.text_input(texts).repeat_interleave(n, 0)
    rows = {k: v.repeat(len(texts), *[1] * (v.dim() - 1)) for k, v in inputs.items()}
    x = G.generate({**rows, "t": t})
    return save_image_grid(x, out, G.value_range, nrow=n)


def sample_dataset(source: str | Path, n: int, out: str | Path, seed: int = 0, fmt: str = "png",
                   batch: int = 1000) -> Path:
    """`ganforge sample --labels`: n samples of a conditional generator, the classes in turn, as a
    labelled dataset any tool reads - a folder per class of PNGs, or MNIST-style IDX files
    (synthetic-images-idx3-ubyte, synthetic-labels-idx1-ubyte). Written beside `out` and renamed
    into place at the end, so an interrupted run leaves no half dataset."""
    G = _handle(source)
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
                idx_file.write(idx_header((n, res, res)))
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
           fps: float = 12.0, c: int | None = None, psi: float | None = None, space: str = "z",
           text: str | None = None, texts: list[str] | None = None) -> Path:
    """`ganforge interp`: a latent walk through the seeds' latents, under caption `text` for a
    text-to-image model; or with `texts`, a walk between captions with each seed's z held
    (ganforge.explore.interp)."""
    return explore.interp(_handle(source), out, seeds, steps, fps, c, psi, space, text, texts)


def translate(source: str | Path, inputs: str | Path, out: str | Path, direction: str = "AtoB",
              keep_size: bool = False) -> tuple[Path, int]:
    """`ganforge translate`: every readable image of a file or folder through a pix2pix / CycleGAN
    generator, written (atomically) as PNG under `out` with the same relative path and name, suffix
    .png (a.jpg beside a.png keeps its suffix: a.jpg.png). Files that cannot be read are named in
    one warning and the rest go on; none readable is an error. Images are brought to the model's
    training size (as data loading does: scaled to cover, centre crop), or with keep_size to their
    own size, centre-cropped (not resampled) to a multiple of the generator's stride.
    Returns (out, the number written)."""
    G = _handle(source)
    if G.takes_latent:
        raise ConfigError(f"{source}: a {G.cfg.train.recipe} generator draws images from seeds; translate needs a "
                          "pix2pix or cyclegan model (use ganforge sample)")
    net = G.net(direction)
    out, scan, files, names = _image_inputs(inputs, out, "translations")
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


def _image_inputs(inputs: str | Path, out: str | Path, what: str) -> tuple[Path, FolderScan, list[Path], list[Path]]:
    """(out folder, the scan that names skipped files, the image files of --input, the output name
    of each) for commands that write a result per input image, refusing an --out that overlaps it."""
    inputs = Path(inputs)
    if not inputs.exists():
        raise ConfigError(f"--input {inputs}: no such file or folder")
    out = paths.output_dir(out, "--out")
    root = inputs if inputs.is_dir() else inputs.parent
    overlap = (_inside(out, inputs) or _inside(inputs, out)) if inputs.is_dir() else _inside(inputs.parent, out) \
        and _inside(out, inputs.parent)
    if overlap:
        raise ConfigError(f"--out {out} and --input {inputs} overlap: {what} would overwrite or be read as "
                          "inputs; choose a separate folder")
    scan = FolderScan(root)
    files = candidates(inputs, scan) if inputs.is_dir() else [inputs]
    return out, scan, files, _output_names([p.relative_to(root) for p in files])


def _close_scan(scan: FolderScan, used: int, out: Path, out_existed: bool, none_message: str) -> None:
    """The end of reading a command's inputs: one warning naming the files skipped; with none
    usable, the output folder removed when this command made it (and is still empty), and an error."""
    scan.used = used
    message = scan.warning()
    if message:
        warnings.warn(message, DataWarning, stacklevel=3)
    if not used:
        if not out_existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # made for this command: nothing is left behind
        raise ConfigError(f"{none_message} ({scan.summary()})")


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


# --- projection: images back to latents ----------------------------------------------------------

PROJECT_BATCH = 16  # images projected together (each has its own latent; batch norm is in eval mode)


def project(source: str | Path | GeneratorHandle, inputs: str | Path, out: str | Path, steps: int = 200,
            space: str = "z", init: str = "mean", c: int | None = None, feature_net: str | None = None,
            pixel_weight: float = 1.0, feature_weight: float = 1.0, seed: int = 0,
            progress=None) -> tuple[Path, list[dict]]:
    """`ganforge project`: the latent of every readable image of a file or folder
    (ganforge.explore.project). For each input NAME, under `out` with its relative path:
    NAME.latent.safetensors (the latent, for `ganforge sample --latent`), NAME.png (the
    reconstruction) and NAME.strip.png (the image beside its reconstruction); projections.json
    lists every image's distances. Returns (out, those records). `progress(steps done, total)`, the
    steps of all batches of PROJECT_BATCH images."""
    G = _handle(source)
    check_projection(space, init, G)
    if c is not None:
        G.inputs(1, c=c)  # refuses a class out of range, or any class for an unconditional G
    check_projection_weights(steps, pixel_weight, feature_weight)
    features, distance = explore.domain_features(G, feature_net)
    out_existed = Path(out).is_dir()
    out, scan, files, names = _image_inputs(inputs, out, "projections")
    d = G.cfg.data
    images, kept = [], []
    for p, name in zip(files, names):
        try:
            images.append(load_image(p, (d.resolution, d.image_width or d.resolution), d.channels,
                                     parse_background(d.background))[0])
            kept.append((p, name))
        except Exception as e:  # Pillow raises many types for broken files: each is "skip it, say so"
            scan.skip(f"unreadable file(s) ({type(e).__name__})", p)
    _close_scan(scan, len(kept), out, out_existed, f"--input {inputs}: no image could be read")
    records = []
    per_batch = steps + (0 if c is not None else search_steps(G, steps))  # a conditional G searches classes
    for i in range(0, len(kept), PROJECT_BATCH):
        x = to_range(torch.tensor(np.stack(images[i:i + PROJECT_BATCH])), d.range)
        cls = None if c is None else torch.full((len(x),), c)
        total, before = -(-len(kept) // PROJECT_BATCH) * per_batch, i // PROJECT_BATCH * per_batch
        step_done = None if progress is None else (lambda step, loss: progress(before + step, total))
        result = explore.project(G, x, space, steps, init, cls, features, pixel_weight, feature_weight, seed=seed,
                                 progress=step_done)
        for j, (path, name) in enumerate(kept[i:i + PROJECT_BATCH]):
            records.append(_write_projection(G, result, j, x[j], out / name.with_suffix(""), path, distance, steps, init))
    atomic_write_text(out / "projections.json", json.dumps(records, indent=2) + "\n")
    return out, records


def _write_projection(G: GeneratorHandle, result, j: int, x: torch.Tensor, base: Path, source: Path, distance: str,
                      steps: int, init: str) -> dict:
    record = {"input": str(source), "latent": f"{base}.latent.safetensors", "reconstruction": f"{base}.png",
              "strip": f"{base}.strip.png", "space": result.space, "init": init, "steps": steps,
              "distance": distance, "pixel_mse": round(float(result.pixel[j]), 6),
              "feature_distance": None if result.feature is None else round(float(result.feature[j]), 6),
              "class": None if result.c is None else int(result.c[j])}
    tensors = {"latent": result.latent[j], **{k: v[j] for k, v in result.noise.items()}}
    if result.c is not None:
        tensors["c"] = result.c[j]
    meta = {"space": result.space, "source": str(G.cfg.run.name or ""), "step": str(G.step),
            "z_dim": str(G.cfg.model.z_dim), "size": str(result.latent.shape[1]), "distance": distance}
    checkpoint.save_latent(Path(record["latent"]), tensors, meta)
    pair = to_uint8(torch.stack([x, result.x[j]]), G.value_range)
    _save_picture(pair[1], Path(record["reconstruction"]))
    _save_picture(np.concatenate(list(pair), axis=1), Path(record["strip"]))
    return record


def _save_picture(picture: np.ndarray, path: Path) -> None:
    """One uint8 image [H, W, C] at its own size (grey when C = 1), written atomically."""
    image = Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(path.suffix.lower(), "PNG")
    atomic_write(path, lambda f: image.save(f, format=fmt))


# --- restoration: completion models, and inpainting through any latent model -----------------------

RESTORE_BATCH = 16


def restore(source: str | Path, inputs: str | Path, out: str | Path, mask: str | Path | None = None,
            steps: int = 1000, prior_weight: float = PRIOR_WEIGHT, blend: str = "poisson",
            space: str | None = None, c: int | None = None, seed: int = 0, progress=None) -> tuple[Path, list[dict]]:
    """`ganforge restore`: every readable image of a file or folder restored by a model.

    - A completion model (pix2pix / GAIN on data.degrade pairs, SRGAN) restores each image in one
      pass: one trained on holes needs `mask` (white = missing); a super-resolution model reads each
      image at its low resolution and gives it back at the model's.
    - A latent model (any GAN) fills the masked pixels by Yeh et al.'s search (explore.inpaint),
      with D's prior where the source holds D.

    `mask`: one image for every input, or a folder holding a mask per input under the same relative
    name (any image suffix). Under `out`: NAME.png (restored) and NAME.strip.png (what the model was
    given beside the result), and restorations.json. Known pixels are never changed. Unreadable
    files, and inputs without a mask, are named in one warning and the rest go on."""
    G, critic, no_critic = _load(source, critic=True)
    space = _check_restorer(G, source, mask, steps, prior_weight, blend, space, c, seed)
    scale = None if G.takes_latent else scale_of(G.cfg.data.degrade)  # trained on down=K: low resolution in
    masks = _mask_source(mask, inputs, out) if mask is not None else None
    out_existed = Path(out).is_dir()
    out, scan, files, names = _image_inputs(inputs, out, "restorations")
    items = _restore_inputs(G.cfg.data, inputs, files, names, scan, scale, masks)
    _close_scan(scan, len(items), out, out_existed, f"--input {inputs}: no image could be restored")
    if not G.takes_latent:
        method = f"{G.recipe} completion model"
    elif prior_weight == 0:
        method = "yeh2017 inpainting through G, no prior"
    else:
        method = "yeh2017 inpainting through G, " + ("D's prior" if critic is not None else f"no prior: {no_critic}")
    d, records = G.cfg.data, []
    for i in range(0, len(items), RESTORE_BATCH):
        chunk = items[i:i + RESTORE_BATCH]
        x = to_range(torch.stack([item[2] for item in chunk]), d.range)
        if scale:  # what the model was trained on: each low-resolution pixel repeated scale x scale times
            x = x.repeat_interleave(scale, 2).repeat_interleave(scale, 3)
        m = torch.stack([item[3] for item in chunk])[:, None] if masks is not None else None
        given = x if m is None else x * (1 - m) + m * (-1.0 if d.range == "signed" else 0.0)  # holes shown black
        if G.takes_latent:
            cls = None if c is None else torch.full((len(x),), c)
            restored = explore.inpaint(G, x, m, critic, steps, prior_weight, space, cls, blend, seed).x
        else:
            restored = G({"a": given, **({"mask": m} if m is not None else {})}).cpu()
        if progress is not None:
            progress(i + len(chunk), len(items))
        for j, (path, name, _, _) in enumerate(chunk):
            base = out / name.with_suffix("")  # NAME.png beside NAME.strip.png (a name may hold dots: a.jpg.png)
            pair = to_uint8(torch.stack([given[j], restored[j]]), G.value_range)
            _save_picture(pair[1], Path(f"{base}.png"))
            _save_picture(np.concatenate(list(pair), axis=1), Path(f"{base}.strip.png"))
            records.append({"input": str(path), "output": f"{base}.png", "strip": f"{base}.strip.png", "method": method,
                            "missing_share": None if m is None else round(float(m[j].mean()), 4)})
    atomic_write_text(out / "restorations.json", json.dumps(records, indent=2) + "\n")
    return out, records


def _check_restorer(G: GeneratorHandle, source, mask, steps: int, prior_weight: float, blend: str,
                    space: str | None, c: int | None, seed: int) -> str | None:
    """Refuses what `restore` cannot do with this model, before any file is read; a latent model's
    search space (w for a style-based G: one style, closer to what G draws than w+)."""
    check_seed(seed, "--seed")
    if G.takes_latent:
        check_inpainting(G, steps, prior_weight, blend)
        space = space or ("w" if G.num_ws else "z")
        check_projection(space, "mean", G)
        if c is not None:
            G.inputs(1, c=c)  # refuses a class out of range, or any class for an unconditional G
        if mask is None:
            raise ConfigError("this model fills the masked pixels from its generator: give --mask FILE_OR_DIR "
                              "(white = missing)")
        return space
    if G.recipe not in ("pix2pix", "gain", "srgan"):
        raise ConfigError(f"{source}: a {G.recipe} model translates between two domains; restore takes a completion "
                          "model (pix2pix, gain or srgan trained with data.degrade) or a GAN (use ganforge translate)")
    takes_mask = getattr(G.net(), "takes_mask", False)
    if takes_mask and mask is None:
        raise ConfigError("this model fills missing pixels: give --mask FILE_OR_DIR (white = missing)")
    if mask is not None and not takes_mask:
        raise ConfigError(f"--mask: this model restores every pixel (data.degrade={G.cfg.data.degrade}); a mask is for "
                          "models trained on holes (box, strokes, missing, masks=DIR with model.mask_input) and GANs")
    return space


def _restore_inputs(d, inputs, files: list[Path], names: list[Path], scan: FolderScan, scale: int | None,
                    masks) -> list[tuple]:
    """(path, output name, uint8 image [C, h, w] at the model's input size, mask [H, W] or None) of
    each input that can be read and has its mask; the others are named in `scan`."""
    H, W = d.resolution, d.image_width or d.resolution
    size = (H // scale, W // scale) if scale else (H, W)
    items = []
    for p, name in zip(files, names):
        try:
            image = load_image(p, size, d.channels, parse_background(d.background))[0]
        except Exception as e:  # Pillow raises many types for broken files: each is "skip it, say so"
            scan.skip(f"unreadable file(s) ({type(e).__name__})", p)
            continue
        try:
            rel = p.relative_to(Path(inputs)) if Path(inputs).is_dir() else Path(p.name)
            m = masks(rel, (H, W)) if masks is not None else None
        except _NoMask:
            scan.skip("image(s) without a mask in --mask", p)
            continue
        except Exception as e:  # the mask file is broken: skip that image, say so
            scan.skip(f"unreadable mask(s) ({type(e).__name__})", p)
            continue
        items.append((p, name, torch.tensor(image), m))
    return items


class _NoMask(LookupError):
    pass


def _mask_source(mask: str | Path, inputs: str | Path, out: str | Path):
    """(relative input path, (H, W)) -> that input's mask [H, W] (1 = missing), from one mask file
    for every input or a folder of masks named as the inputs (any image suffix)."""
    mask = Path(mask)
    if not mask.exists():
        raise ConfigError(f"--mask {mask}: no such file or folder")
    if _inside(mask, out) or (mask.is_dir() and _inside(out, mask)):  # a restoration could land on a mask
        raise ConfigError(f"--out {out} and --mask {mask} overlap: restorations would overwrite masks; choose a "
                          "separate folder")
    if mask.is_dir() and Path(inputs).is_dir() and (_inside(mask, inputs) or _inside(inputs, mask)):
        raise ConfigError(f"--mask {mask} and --input {inputs} overlap: masks would be read as images to restore; "
                          "keep them in folders of their own")
    if mask.is_file():
        try:
            load_mask_like_image(mask, (8, 8))
        except Exception as e:
            raise ConfigError(f"--mask {mask}: not a readable image ({type(e).__name__}); a mask is an image, "
                              "white where pixels are missing") from None
        return lambda rel, size: load_mask_like_image(mask, size)
    by_stem = {}
    for f in mask_files(mask):
        by_stem.setdefault(f.relative_to(mask).with_suffix("").as_posix().lower(), f)
    if not by_stem:
        raise ConfigError(f"--mask {mask}: the folder holds no mask images (white = missing, named as the inputs)")

    def lookup(rel: Path, size):
        f = by_stem.get(rel.with_suffix("").as_posix().lower())
        if f is None:
            raise _NoMask(rel)
        return load_mask_like_image(f, size)
    return lookup


def classify(source: str | Path | GeneratorHandle, inputs: str | Path, out: str | Path | None = None,
             batch: int = 256) -> list[dict]:
    """`ganforge classify`: the class of every readable image of a file or folder by a model's
    classifier (the semi-supervised GAN's D, averaged weights), each image read as the model's
    training data was (size, channels, background). One record per image: file (relative to the
    folder), class, probability, every class's probability, and p_real, D's probability that the
    image is a real one of the training data's kind (Z / (Z + 1) of the K+1 classifier: low for an
    image unlike any it learnt from). With `out` (.csv or .json) the records are also written
    there, atomically. Unreadable files are named in one warning and the rest go on."""
    G = _handle(source)
    if G.C is None:
        raise ConfigError(f"{source}: a {G.cfg.train.recipe} model has no classifier; the semi-supervised GAN learns "
                          "one (train.recipe=ssgan, e.g. configs/mnist_ssgan.yaml)")
    inputs = Path(inputs)
    if not inputs.exists():
        raise ConfigError(f"--input {inputs}: no such file or folder")
    if out is not None:
        out = paths.output_file(out, "--out", (".csv", ".json"))
    root = inputs if inputs.is_dir() else inputs.parent
    scan = FolderScan(root)
    files = candidates(inputs, scan) if inputs.is_dir() else [inputs]
    d = G.cfg.data
    rels, images = [], []
    for p in files:
        try:
            images.append(load_image(p, (d.resolution, d.image_width or d.resolution), d.channels,
                                     parse_background(d.background))[0])
        except Exception as e:  # Pillow raises many types for broken files: each is "skip it, say so"
            scan.skip(f"unreadable file(s) ({type(e).__name__})", p)
            continue
        rels.append(p.relative_to(root).as_posix())
    _close_scan(scan, len(images), root, True, f"--input {inputs}: no image could be read")
    logits = classify_logits(G.C, to_range(torch.tensor(np.stack(images)), d.range), batch)
    records = _class_records(rels, logits, G.class_names)
    if out is not None:
        _write_predictions(out, records, G.class_names)
    return records


def _class_records(files: list[str], logits: torch.Tensor, names: tuple[str, ...]) -> list[dict]:
    probs = logits.softmax(1)
    p_real = torch.sigmoid(logits.logsumexp(1))  # the fake class's logit is 0: Z / (Z + 1)
    records = []
    for f, p, r in zip(files, probs, p_real):
        k = int(p.argmax())
        records.append({"file": f, "class": names[k], "index": k, "probability": round(float(p[k]), 6),
                        "p_real": round(float(r), 6),
                        "probabilities": {n: round(float(q), 6) for n, q in zip(names, p)}})
    return records


def _write_predictions(out: Path, records: list[dict], names: tuple[str, ...]) -> None:
    if out.suffix.lower() == ".json":
        atomic_write_text(out, json.dumps(records, indent=1) + "\n")
        return
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "class", "probability", "p_real", *(f"p_{n}" for n in names)])
    for r in records:
        w.writerow([r["file"], r["class"], r["probability"], r["p_real"], *r["probabilities"].values()])
    atomic_write_text(out, buf.getvalue())


def latent_inputs(source: str | Path | GeneratorHandle, latent: str | Path) -> dict:
    """Generator inputs (batch of one) from a latent file of `ganforge project`, checked against G."""
    G = _handle(source)
    if not G.takes_latent:
        raise ConfigError(f"--latent: a {G.cfg.train.recipe} model translates images; it draws nothing from a latent")
    tensors, meta = checkpoint.load_latent(latent)
    space = meta["space"]
    try:
        size = G.space_size(space)
    except ConfigError as e:
        raise CheckpointError(f"--latent {latent}: a latent in {space}; {e}") from None
    code = tensors["latent"].float().reshape(1, -1)
    if code.shape[1] != size:
        raise CheckpointError(f"--latent {latent}: {code.shape[1]} numbers, but this generator's {space} takes {size} "
                              "(the latent was projected through another model)")
    c = tensors["c"].reshape(1).long() if "c" in tensors else None
    if bool(G.num_classes) != (c is not None):
        raise CheckpointError(f"--latent {latent}: {'no class' if c is None else 'a class'}, but this generator is "
                              f"{'conditional' if G.num_classes else 'unconditional'} (another model's latent)")
    if c is not None and not 0 <= int(c) < G.num_classes:
        raise CheckpointError(f"--latent {latent}: class {int(c)}, but this generator has {G.num_classes} classes "
                              "(another model's latent)")
    noise = {k: v[None].float() for k, v in tensors.items() if k.startswith("noise")}
    layers = noise_layers(G.G) if noise else []
    expected = {f"noise{i}": tuple(layer.noise_const.shape[1:]) for i, layer in enumerate(layers)}
    if noise and {k: tuple(v.shape[1:]) for k, v in noise.items()} != expected:
        raise CheckpointError(f"--latent {latent}: its noise maps do not fit this generator's layers (another "
                              "model's latent)")
    return {**G.latent_inputs(code, space, c), **noise}


def style_mixing(source: str | Path | GeneratorHandle, out: str | Path, row_seeds=(0, 1, 2, 3),
                 col_seeds=(4, 5, 6, 7), cut: int | None = None, psi: float | None = None) -> Path:
    """`ganforge stylemix`: the StyleGAN paper's style-mixing figure (ganforge.explore.style_mixing)."""
    return explore.style_mixing(_handle(source), out, row_seeds, col_seeds, cut, psi)


def truncation_sweep(source: str | Path | GeneratorHandle, out: str | Path, n: int = 8, seed: int = 0,
                     psis=SWEEP_PSI) -> Path | None:
    """A grid with a row per psi and a column per latent (ganforge.explore.truncation_sweep)."""
    return explore.truncation_sweep(_handle(source), out, n, seed, psis)


def export(source: str | Path, out: str | Path, fmt: str = "safetensors") -> Path:
    """safetensors + JSON (a folder, for ganforge itself), or an ONNX graph (a .onnx file) that any
    ONNX runtime runs without ganforge: inputs z (and c), output samples in the data's range."""
    if fmt == "onnx":
        out = paths.output_file(out, "--out", (".onnx",))
        from ganforge.onnx_export import export_onnx  # the optional extra ganforge[onnx]

        return export_onnx(load_generator(source), out)
    if fmt != "safetensors":
        raise ConfigError(f"--format {fmt!r}: choose safetensors or onnx")
    G = _handle(source)
    return G.export(paths.output_dir(out, "--out"))


def _check_inception_applies(cfg, inception_weights: str, feature_net: str | None) -> None:
    """--inception-weights names the feature space of image-folder models; anywhere else it would
    be silently ignored, so it is refused with the space the numbers are in instead."""
    spec = DATASETS[cfg.data.name]
    space = (f"the feature net {feature_net} (--feature-net)" if feature_net else
             f"the feature net {cfg.eval.feature_net} (the run's eval.feature_net)" if cfg.eval.feature_net else
             None if spec.feature_net == "inception-v3" else
             f"the {spec.feature_net} classifier's features, the space for {cfg.data.name}" if spec.feature_net else
             f"no feature space ({cfg.data.name} has none)")
    if space:
        raise ConfigError(f"--inception-weights {inception_weights}: this generator's feature metrics are computed in "
                          f"{space}, not in Inception-v3's: drop --inception-weights")


def evaluate(source: str | Path | GeneratorHandle, metrics: list[str] | None = None, num_samples: int = 10_000,
             seed: int = 0, out: str | Path | None = None, inception_weights: str | None = None,
             feature_net: str | None = None) -> list[dict]:
    """`ganforge eval`: metrics of a checkpoint or export; writes `out` (JSON) atomically when given.
    `inception_weights` and `feature_net` (files) override the generator's eval.* settings."""
    if metrics:
        check_metric_names(metrics)  # before loading anything: a typo fails fast
    if out is not None:
        paths.output_file(out, "--out", (".json",))
    G = _handle(source)
    if inception_weights:
        _check_inception_applies(G.cfg, inception_weights, feature_net)
    if inception_weights or feature_net:  # on a copy: evaluating a live handle leaves its run's config alone
        cfg = copy.deepcopy(G.cfg)
        cfg.eval.inception_weights = str(inception_weights or cfg.eval.inception_weights)
        cfg.eval.feature_net = str(feature_net or cfg.eval.feature_net)
        G = copy.copy(G)
        G.cfg = cfg
    if not metrics:  # the data's defaults, and a classifier's accuracy when the model has one
        metrics = ["accuracy"] * (G.C is not None) + default_metrics(G.cfg)
    records = evaluate_generator(G, metrics, num_samples, seed, G.step, str(source))
    if out is not None:
        atomic_write_text(Path(out), json.dumps(records, indent=2) + "\n")
    return records
