"""Precision / recall (Kynkäänniemi et al. 2019) and density / coverage (Naeem et al. 2020) in a
feature space, as in the reference `prdc` package (clovaai/generative-evaluation-prdc).

Each real point gets a ball whose radius is the distance to its k-th nearest real neighbour (self
excluded); likewise for generated points.
- precision: fraction of generated points inside at least one real ball
- recall:    fraction of real points inside at least one generated ball
- density:   mean number of real balls containing a generated point, divided by k
- coverage:  fraction of real points whose nearest generated point lies inside their own ball
"""

from __future__ import annotations

import torch

from ganforge.metrics.context import Context
from ganforge.metrics.registry import Headline, Metric, register


def kth_neighbour_radius(x: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row [N]."""
    out = torch.empty(len(x), dtype=x.dtype)
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i:i + chunk], x)
        out[i:i + chunk] = d.kthvalue(k + 1, dim=1).values  # the 1st smallest is the point itself (0)
    return out


def prdc(real: torch.Tensor, fake: torch.Tensor, k_pr: int = 3, k_dc: int = 5, chunk: int = 2048) -> dict:
    real, fake = real.double(), fake.double()
    r_pr, r_dc = kth_neighbour_radius(real, k_pr), kth_neighbour_radius(real, k_dc)
    f_pr = kth_neighbour_radius(fake, k_pr)
    in_real_ball = torch.zeros(len(fake), dtype=torch.bool)
    density_counts = torch.zeros(len(fake), dtype=torch.float64)
    real_recalled = torch.zeros(len(real), dtype=torch.bool)
    nearest_fake = torch.full((len(real),), float("inf"), dtype=torch.float64)
    for i in range(0, len(real), chunk):
        d = torch.cdist(real[i:i + chunk], fake)  # [chunk, M]
        in_real_ball |= (d < r_pr[i:i + chunk, None]).any(0)
        density_counts += (d < r_dc[i:i + chunk, None]).sum(0)
        real_recalled[i:i + chunk] = (d < f_pr[None, :]).any(1)
        nearest_fake[i:i + chunk] = d.min(1).values
    return {"precision": in_real_ball.double().mean().item(),
            "recall": real_recalled.double().mean().item(),
            "density": (density_counts / k_dc).mean().item(),
            "coverage": (nearest_fake < r_dc).double().mean().item()}


def _prdc(ctx: Context) -> dict:
    real, _ = ctx.features("real")
    fake, _ = ctx.features("fake")
    return {**prdc(real, fake), "k_precision_recall": 3, "k_density_coverage": 5, "split": ctx.reference()[2],
            "num_real": len(real), **ctx.extractor_record()}




register(Metric("prdc", "precision / recall (k=3) and density / coverage (k=5) in the feature space", _prdc,
                fmt=lambda r: " ".join(f"{k}={r[k]:.3f}" for k in ("precision", "recall", "density", "coverage")),
                headline=(Headline("precision", "precision", "higher"), Headline("recall", "recall", "higher"),
                          Headline("density", "density", "higher"), Headline("coverage", "coverage (PRDC)", "higher")),
                feature_space=True))
