"""Toy 2-D Gaussian mixtures used to study mode collapse (VEEGAN, PacGAN).

ring: `modes` Gaussians evenly spaced on a circle of `radius` (PacGAN: 8 modes, radius 1, std 0.01).
grid: side x side Gaussians on a square grid centred at 0 (PacGAN: {-4,-2,0,2,4}^2, std 0.05).
"""

from __future__ import annotations

import math

import torch


def ring_centres(modes: int = 8, radius: float = 1.0) -> torch.Tensor:
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return torch.stack([radius * torch.cos(angles), radius * torch.sin(angles)], 1).float()  # [M, 2]


def grid_centres(side: int = 5, spacing: float = 2.0) -> torch.Tensor:
    coords = (torch.arange(side, dtype=torch.float32) - (side - 1) / 2) * spacing
    gx, gy = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)  # [side^2, 2]


def sample_mixture(centres: torch.Tensor, std: float, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n points from the equal-weight mixture; returns (points [n, 2], mode index [n])."""
    g = torch.Generator().manual_seed(seed)
    mode = torch.randint(len(centres), (n,), generator=g)
    return centres[mode] + std * torch.randn(n, 2, generator=g), mode
