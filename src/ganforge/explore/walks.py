"""Walks through a generator's latent space: through seeds in z (spherical for normal z) or, for a
style-based generator, in straight lines in w. Shared by `ganforge interp`, the run report and the
web explorer, so the same seeds walk the same path everywhere."""

from __future__ import annotations

from pathlib import Path

import torch

from ganforge.core import latent, paths
from ganforge.core.errors import ConfigError
from ganforge.core.images import save_gif, save_image_grid, to_uint8
from ganforge.generator import GeneratorHandle


def z_path(G: GeneratorHandle, keys: list[dict], steps: int, closed: bool) -> dict:
    """Inputs {"z", and "c" of the first key} along the legs between the keys' latents, `steps`
    frames a leg (each leg's end is the next leg's start); closed: back to the first key, open:
    ending on the last key itself."""
    legs = list(zip(keys, keys[1:] + keys[:1] if closed else keys[1:]))
    t = torch.arange(steps) / steps
    z = torch.cat([latent.interpolate(a["z"][0], b["z"][0], t, G.cfg.model.z_dist) for a, b in legs])
    if not closed:
        z = torch.cat([z, keys[-1]["z"]])
    return {"z": z, **({"c": keys[0]["c"].expand(len(z)).clone()} if "c" in keys[0] else {})}


def interp(G: GeneratorHandle, out: str | Path, seeds: list[int], steps: int = 16,
           fps: float = 12.0, c: int | None = None, psi: float | None = None, space: str = "z") -> Path:
    """`ganforge interp`: a latent walk through the latents of `seeds` (each the latent `sample
    --seed S` draws first), `steps` frames per leg; a GIF (looping back to the first seed) or, for
    `out` ending in .png, the frames of the open path in one strip. space="w" walks a style-based
    generator's intermediate latent in straight lines (as StyleGAN's path-length measure does)."""
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
    keys = [G.inputs(1, seed, c=c if c is not None else (0 if G.num_classes else None)) for seed in seeds]
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
