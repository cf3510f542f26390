"""Toy 2-D Gaussian mixtures used to study mode collapse (VEEGAN, PacGAN).

ring: `modes` Gaussians evenly spaced on a circle of `radius` (PacGAN: 8 modes, radius 1, std 0.01).
grid: side x side Gaussians on a square grid centred at 0 (PacGAN: {-4,-2,0,2,4}^2, std 0.05).
"""

from __future__ import annotations

import math

import torch

from ganforge.config import DataConfig
from ganforge.data.dataset import Dataset, DatasetSpec
from ganforge.data.registry import DATASETS, register


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


def _ring(cfg: DataConfig) -> tuple[torch.Tensor, float]:
    return ring_centres(cfg.toy_ring_modes, cfg.toy_ring_radius), cfg.toy_std or 0.01


def _grid(cfg: DataConfig) -> tuple[torch.Tensor, float]:
    return grid_centres(cfg.toy_grid_side, cfg.toy_grid_spacing), cfg.toy_std or 0.05


def toy_centres(cfg: DataConfig) -> torch.Tensor:
    return DATASETS[cfg.name].mixture(cfg)[0]


def toy_std(cfg: DataConfig) -> float:
    return DATASETS[cfg.name].mixture(cfg)[1]


def _toy(cfg: DataConfig, seed: int) -> Dataset:
    centres, std = DATASETS[cfg.name].mixture(cfg)
    x, mode = sample_mixture(centres, std, cfg.toy_num_samples, seed)
    return Dataset(DATASETS[cfg.name], x, mode, cfg.range, f"{len(centres)} Gaussians, std {std}",
                   tuple(str(i) for i in range(len(centres))), centres)


def _toy_check(cfg: DataConfig) -> str | None:
    if cfg.toy_num_samples <= 0:
        return "data.toy_num_samples must be positive"
    if cfg.toy_std is not None and cfg.toy_std <= 0:
        return "data.toy_std must be positive"
    return None


register(DatasetSpec("ring", "points", "8 Gaussians on a ring (toy 2-D)", _toy, check=_toy_check, modes="toy",
                     default_metrics=("fid", "prdc", "modes"), mixture=_ring))
register(DatasetSpec("grid", "points", "25 Gaussians on a grid (toy 2-D)", _toy, check=_toy_check, modes="toy",
                     default_metrics=("fid", "prdc", "modes"), mixture=_grid))
