"""Latent codes z: the one place they are drawn (training, fixed sample grids, `sample`, metrics).

normal:   z ~ N(0, I)
uniform:  z ~ U[-sqrt 3, sqrt 3]^d, zero mean and unit variance (as in Goodfellow et al.'s code)
uniform1: z ~ U[-1, 1]^d (DCGAN's and BiGAN's code; a BiGAN's encoder outputs land in the same box)

Two ways to trade variety for typicality:
- `truncation` t (normal z only) is the truncation trick of BigGAN (Brock et al. 2019): every entry
  with |z_i| > t is drawn again until it falls inside;
- `psi` in [0, 1] pulls latents toward the mean latent, z_mean + psi (z - z_mean), as StyleGAN does
  in w (Karras et al. 2019): 1 leaves them, 0 gives every sample the mean latent. Both of our latent
  distributions have mean 0, so here it is psi * z; the web explorer's slider and the report's
  sweep use it because it moves smoothly with psi.
"""

from __future__ import annotations

import math

import torch


BOX = {"uniform": math.sqrt(3), "uniform1": 1.0}  # uniform latents: the half-width of their box


def sample_z(n: int, z_dim: int, dist: str, generator: torch.Generator | None = None,
             truncation: float | None = None) -> torch.Tensor:
    """[n, z_dim] latents on the CPU from `generator` (the global stream when None)."""
    if dist == "normal":
        z = torch.randn(n, z_dim, generator=generator)
    elif dist in BOX:
        z = (torch.rand(n, z_dim, generator=generator) * 2 - 1) * BOX[dist]
    else:
        raise ValueError(f"unknown latent distribution '{dist}' (normal, uniform or uniform1)")
    if truncation is not None:
        if dist != "normal":
            raise ValueError("truncation applies to normal latents (model.z_dist=normal)")
        if truncation <= 0:
            raise ValueError(f"truncation={truncation} must be positive")
        outside = z.abs() > truncation
        while outside.any():  # each pass keeps (most of) the rest: expected passes are few
            z[outside] = torch.randn(int(outside.sum()), generator=generator)
            outside = z.abs() > truncation
    return z


def toward_mean(z: torch.Tensor, psi: float, mean: torch.Tensor | None = None) -> torch.Tensor:
    """z_mean + psi (z - z_mean); z_mean is 0 for normal and uniform z (StyleGAN passes its mean w)."""
    if not 0.0 <= psi <= 1.0:
        raise ValueError(f"psi={psi} must be between 0 and 1")
    if mean is None:
        return z * psi
    return mean + psi * (z - mean)


def interpolate(z_a: torch.Tensor, z_b: torch.Tensor, t: torch.Tensor, dist: str) -> torch.Tensor:
    """Latents between z_a and z_b ([d] each) at fractions t ([k] in [0, 1]) -> [k, d].

    normal: spherical interpolation (slerp, Shoemake 1985), as White (2016) recommends for Gaussian
    latents: a straight line between two typical N(0, I) points passes through the low-norm middle
    that G rarely saw, while the great circle keeps the norm typical. uniform: straight lines (the
    cube is convex and has no such hole)."""
    t = t.reshape(-1, 1).to(z_a)
    if dist in BOX:
        return (1 - t) * z_a + t * z_b
    cos = torch.dot(z_a, z_b) / (z_a.norm() * z_b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:  # (anti)parallel to float precision: slerp is the line
        return (1 - t) * z_a + t * z_b
    return (torch.sin((1 - t) * omega) * z_a + torch.sin(t * omega) * z_b) / torch.sin(omega)


def w_line(legs: list[tuple[torch.Tensor, torch.Tensor]], steps: int, closed: bool) -> torch.Tensor:
    """Styles along straight lines: `steps` per leg (a, b) from a toward b; an open path ends on
    the last leg's b."""
    t = (torch.arange(steps, dtype=torch.float32) / steps).to(legs[0][0].device)[:, None, None]
    return torch.cat([a + t * (b - a) for a, b in legs] + ([] if closed else [legs[-1][1]]))
