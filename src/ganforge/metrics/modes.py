"""Mode metrics.

- Labelled data: the domain classifier's label histogram of generated samples: modes hit (classes
  predicted for at least one sample) and KL(histogram || uniform).
- Stacked MNIST (1,000 modes): the classifier applied to each of the three channels; a mode is a
  digit triple.
- Toy 2-D mixtures, the VEEGAN / PacGAN definitions: a sample is high quality when it lies within
  3 standard deviations of its nearest mode; a mode is captured when at least one high-quality
  sample is nearest to it; reverse KL is KL(q || p) of the generated distribution over modes
  (every sample assigned to its nearest mode) against the uniform mixture weights.
"""

from __future__ import annotations

import math

import torch


def _kl_to_uniform(counts: torch.Tensor) -> float:
    q = counts.double() / counts.sum()
    nz = q > 0
    return float((q[nz] * (q[nz] * len(q)).log()).sum())


def label_modes(pred: torch.Tensor, num_classes: int) -> dict:
    counts = torch.bincount(pred, minlength=num_classes)
    return {"modes_hit": int((counts > 0).sum()), "num_modes": num_classes,
            "kl_to_uniform": _kl_to_uniform(counts), "histogram": counts.tolist()}


def stacked_modes(pred_r: torch.Tensor, pred_g: torch.Tensor, pred_b: torch.Tensor) -> dict:
    mode = pred_r * 100 + pred_g * 10 + pred_b
    counts = torch.bincount(mode, minlength=1000)
    return {"modes_hit": int((counts > 0).sum()), "num_modes": 1000, "kl_to_uniform": _kl_to_uniform(counts),
            "histogram": counts.tolist()}


def toy_modes(points: torch.Tensor, centres: torch.Tensor, std: float) -> dict:
    d = torch.cdist(points.double(), centres.double())  # [N, M]
    dist, nearest = d.min(1)
    high_quality = dist <= 3 * std
    captured = torch.bincount(nearest[high_quality], minlength=len(centres)) > 0
    counts = torch.bincount(nearest, minlength=len(centres))
    return {"modes_captured": int(captured.sum()), "num_modes": len(centres),
            "high_quality_fraction": float(high_quality.double().mean()),
            "reverse_kl": _kl_to_uniform(counts),
            "histogram": torch.bincount(nearest[high_quality], minlength=len(centres)).tolist()}


def covered_modes(histogram: list[int], share: float) -> int:
    """Modes that get at least `share` of their uniform share of the samples counted: the health
    checks' coverage, stricter than "hit at least once" so that a collapse shows before the last
    sample leaves a mode."""
    counts = torch.tensor(histogram, dtype=torch.float64)
    n = counts.sum().clamp_min(1)  # toy: high-quality samples only
    return int((counts >= share * n / len(counts)).sum())


def max_kl(num_modes: int) -> float:
    """KL to uniform of a distribution on a single mode: the worst possible value."""
    return math.log(num_modes)
