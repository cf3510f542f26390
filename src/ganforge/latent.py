"""Latent codes z: the one place they are drawn (training, fixed sample grids, `sample`, metrics).

normal:  z ~ N(0, I)
uniform: z ~ U[-sqrt 3, sqrt 3]^d, zero mean and unit variance (as in Goodfellow et al.'s code)

`truncation` t (normal z only) is the truncation trick of BigGAN (Brock et al. 2019): every entry
with |z_i| > t is drawn again until it falls inside, trading variety for fidelity.
"""

from __future__ import annotations

import math

import torch


def sample_z(n: int, z_dim: int, dist: str, generator: torch.Generator | None = None,
             truncation: float | None = None) -> torch.Tensor:
    """[n, z_dim] latents on the CPU from `generator` (the global stream when None)."""
    if dist == "normal":
        z = torch.randn(n, z_dim, generator=generator)
    elif dist == "uniform":
        z = (torch.rand(n, z_dim, generator=generator) * 2 - 1) * math.sqrt(3)
    else:
        raise ValueError(f"unknown latent distribution '{dist}' (normal or uniform)")
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
