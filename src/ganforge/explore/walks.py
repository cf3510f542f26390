"""Walks through a generator's latent space: through seeds in z (spherical for normal z) or, for a
style-based generator, in straight lines in w. Shared by `ganforge interp`, the run report and the
web explorer, so the same seeds walk the same path everywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganforge.core import latent, paths
from ganforge.core.errors import ConfigError
from ganforge.core.images import make_grid, save_gif, save_image_grid, to_uint8
from ganforge.generator import GeneratorHandle


def z_path(G: GeneratorHandle, keys: list[dict], steps: int, closed: bool) -> dict:
    """Inputs {"z", and "c" / "t" of the first key} along the legs between the keys' latents, `steps`
    frames a leg (each leg's end is the next leg's start); closed: back to the first key, open:
    ending on the last key itself."""
    legs = list(zip(keys, keys[1:] + keys[:1] if closed else keys[1:]))
    t = torch.arange(steps) / steps
    z = torch.cat([latent.interpolate(a["z"][0], b["z"][0], t, G.cfg.model.z_dist) for a, b in legs])
    if not closed:
        z = torch.cat([z, keys[-1]["z"]])
    held = {k: keys[0][k].expand(len(z), *keys[0][k].shape[1:]).clone() for k in ("c", "t") if k in keys[0]}
    return {"z": z, **held}


def interp(G: GeneratorHandle, out: str | Path, seeds: list[int], steps: int = 16,
           fps: float = 12.0, c: int | None = None, psi: float | None = None, space: str = "z",
           text: str | None = None, texts: list[str] | None = None) -> Path:
    """`ganforge interp`: a latent walk through the latents of `seeds` (each the latent `sample
    --seed S` draws first), `steps` frames per leg; a GIF (looping back to the first seed) or, for
    `out` ending in .png, the frames of the open path in one strip. space="w" walks a style-based
    generator's intermediate latent in straight lines (as StyleGAN's path-length measure does). A
    text-to-image generator walks under `text` (default: its first recorded caption), or with
    `texts` walks between captions instead, each seed's z held (`text_walk`)."""
    if texts is not None:
        return text_walk(G, out, seeds, texts, steps, fps)
    if len(seeds) < 2:
        raise ConfigError(f"--seeds {' '.join(map(str, seeds))}: a walk needs at least two seeds")
    if steps < 2 or steps > 1000:
        raise ConfigError(f"--steps {steps}: frames per leg between two seeds, 2 to 1000")
    if not 0 < fps <= 100:
        raise ConfigError(f"--fps {fps}: frames per second, above 0 and at most 100")
    out = paths.output_file(out, "--out", (".gif", ".png"))
    if G.is_points:
        raise ConfigError("interp draws a walk of images; this generator makes 2-D points (use ganforge sample)")
    if space not in ("z", "w"):
        raise ConfigError(f"--space {space}: z (the input latent) or w (StyleGAN's intermediate latent)")
    if space == "w" and not G.num_ws:
        raise ConfigError("--space w walks StyleGAN's intermediate latent; this generator has only z (use --space z)")
    if text is not None:
        G.text_input([text])  # a clear error for a generator without text, or an empty caption
    first = G.cfg.model.captions[:1] if G.takes_text else []
    keys = [G.inputs(1, seed, c=c if c is not None else (0 if G.num_classes else None),
                     text=text if text is not None else (first[0] if first else None)) for seed in seeds]
    loop = out.suffix.lower() == ".gif"
    if space == "w":
        return _walk_in_w(G, keys, loop, steps, psi, out, fps)
    x = G.generate(G.with_psi(z_path(G, keys, steps, closed=loop), psi), batch=256)
    if loop:
        return save_gif(to_uint8(x, G.value_range), out, duration_ms=round(1000 / fps))
    return save_image_grid(x, out, G.value_range, nrow=len(x))


def _walk_in_w(G: GeneratorHandle, keys: list[dict], loop: bool, steps: int, psi: float | None, out: Path,
               fps: float) -> Path:
    """interp --space w: straight lines between the seeds' w (truncated by psi toward the mean w)."""
    ends = [G.styles(G.with_psi(k, psi)) for k in keys]
    legs = list(zip(ends, ends[1:] + ends[:1] if loop else ends[1:]))
    x = G.generate({"ws": latent.w_line(legs, steps, closed=loop)}, batch=256)
    if loop:
        return save_gif(to_uint8(x, G.value_range), out, duration_ms=round(1000 / fps))
    return save_image_grid(x, out, G.value_range, nrow=len(x))


def text_walk(G: GeneratorHandle, out: str | Path, seeds: list[int], texts: list[str], steps: int = 16,
              fps: float = 12.0) -> Path:
    """`ganforge interp --texts A B ...`: a walk in the text embedding of G's own text path, from
    caption to caption (`steps` frames a leg), each seed's z held. A GIF whose frames show the
    seeds side by side (looping back to the first caption), or a PNG with a row per seed and a
    column per point of the open path."""
    if not G.takes_text:
        G.text_input(list(texts))  # raises: this generator takes no text
    if len(texts) < 2:
        raise ConfigError(f"--texts: a walk between captions needs at least two (got {len(texts)})")
    if not 2 <= steps <= 1000:
        raise ConfigError(f"--steps {steps}: frames per leg between two captions, 2 to 1000")
    if not seeds:
        raise ConfigError("--seeds: give at least one seed")
    if not 0 < fps <= 100:
        raise ConfigError(f"--fps {fps}: frames per second, above 0 and at most 100")
    out = paths.output_file(out, "--out", (".gif", ".png"))
    loop = out.suffix.lower() == ".gif"
    legs = list(zip(texts, texts[1:] + texts[:1] if loop else texts[1:]))
    z = torch.cat([G.inputs(1, seed)["z"] for seed in seeds])  # each seed's latent, as `sample --seed S`
    frames = []
    for i, (a, b) in enumerate(legs):
        last = not loop and i == len(legs) - 1  # the open path ends on the last caption itself
        for k in range(steps + 1 if last else steps):
            beta = torch.full((len(z),), 1 - k / steps)
            frames.append(G.generate(G.text_walk(z, a, b, beta)))
    x = torch.stack(frames)  # [frames, seeds, C, H, W]
    if loop:
        grids = [make_grid(to_uint8(f, G.value_range), nrow=len(seeds)) for f in x]
        return save_gif(np.stack(grids), out, duration_ms=round(1000 / fps))
    return save_image_grid(x.transpose(0, 1).reshape(-1, *x.shape[2:]), out, G.value_range, nrow=len(frames))
