"""Fréchet distance (FID, Heusel et al. 2017) and kernel distance (KID, Bińkowski et al. 2018)
between two sets of features.

FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)). The trace of the matrix square root
is computed as the sum of square roots of the eigenvalues of S_r^(1/2) S_g S_r^(1/2), which is
symmetric positive semi-definite and has the same eigenvalues as S_r S_g - exact, float64, and
free of the complex round-off that scipy.linalg.sqrtm can return (tests compare the two).

KID follows stylegan2-ada's metrics/kernel_inception_distance.py: the unbiased MMD^2 with the
cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets.
"""

from __future__ import annotations

import torch

from ganforge.metrics.context import Context
from ganforge.metrics.registry import Headline, Metric, register


def _stats(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    f = f.double()
    return f.mean(0), torch.cov(f.T)


def _sqrtm_psd(s: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(s)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(mu1, s1, mu2, s2) -> float:
    root1 = _sqrtm_psd(s1)
    cross = torch.linalg.eigvalsh(root1 @ s2 @ root1).clamp_min(0).sqrt().sum()
    return float(((mu1 - mu2) ** 2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * cross)


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between feature sets [N, d] and [M, d]."""
    return frechet_distance(*_stats(real), *_stats(fake))


def kid(real: torch.Tensor, fake: torch.Tensor, num_subsets: int = 100, max_subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 over `num_subsets` random subsets."""
    real, fake = real.double(), fake.double()
    d = real.shape[1]
    m = min(len(real), len(fake), max_subset_size)
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(num_subsets):
        x = fake[torch.randperm(len(fake), generator=g)[:m]]
        y = real[torch.randperm(len(real), generator=g)[:m]]
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        values.append(((a.sum() - a.diagonal().sum()) / (m - 1) - b.sum() * 2 / m) / m)
    v = torch.stack(values)
    return float(v.mean()), float(v.std()) if len(v) > 1 else 0.0


def _fid(ctx: Context) -> dict:
    real, _ = ctx.features("real")
    fake, _ = ctx.features("fake")
    return {"value": fid(real, fake), "split": ctx.reference()[2], "num_real": len(real), **ctx.extractor_record()}




register(Metric("fid", "Frechet distance of generated to real features", _fid, fmt=lambda r: f"{r['value']:.3f}",
                headline=(Headline("value", "FID", "lower"),), feature_space=True))
