"""Parzen-window log-likelihood, exactly as Goodfellow et al. 2014 measured it.

Reference: goodfeli/adversarial, parzen_ll.py. Kernel centres mu: 10,000 generated samples (pixels
in [0, 1]); sigma is chosen from numpy.logspace(-1, 0, 10) by the best mean log-likelihood of the
first 1,000 images of the validation split (MNIST train[50000:60000]); the score is the mean
log-likelihood of the 10,000 test images, with standard error std / sqrt(N) (ddof 0):

    log p(x) = logmeanexp_j( -||x - mu_j||^2 / (2 sigma^2) ) - d log(sigma sqrt(2 pi))

The squared distances do not depend on sigma, so they are computed once per point set (float64
GEMM in chunks, ||x||^2 + ||mu||^2 - 2 x.mu) and reused for every sigma.

Theis, van den Oord and Bethge (2016) show that this estimate can mislead badly in high
dimension; ganforge reports it because it is the paper's only quantitative result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

SIGMAS = tuple(float(s) for s in np.logspace(-1, 0, 10))


def squared_distances(x: torch.Tensor, mu: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """[N, d], [M, d] -> [N, M] float64 squared Euclidean distances."""
    x, mu = x.flatten(1).double(), mu.flatten(1).double()
    mu_sq = (mu * mu).sum(1)
    out = torch.empty(len(x), len(mu), dtype=torch.float64)
    for i in range(0, len(x), chunk):
        xb = x[i:i + chunk]
        d2 = (xb * xb).sum(1, keepdim=True) + mu_sq[None] - 2 * xb @ mu.T
        out[i:i + chunk] = d2.clamp_min_(0)
    return out


def log_likelihoods(d2: torch.Tensor, sigma: float, dim: int) -> torch.Tensor:
    """Per-point Parzen log-density [N] from squared distances [N, M]."""
    m = d2.shape[1]
    e = torch.logsumexp(-d2 / (2 * sigma ** 2), dim=1) - math.log(m)
    return e - dim * math.log(sigma * math.sqrt(2 * math.pi))


@dataclass
class ParzenResult:
    mean: float
    stderr: float
    sigma: float
    valid_ll: dict[float, float]  # sigma -> mean validation log-likelihood


def parzen_protocol(centres: torch.Tensor, valid: torch.Tensor, test: torch.Tensor,
                    sigmas=SIGMAS) -> ParzenResult:
    """The full protocol: choose sigma on `valid`, score `test`. All inputs in [0, 1]."""
    dim = centres[0].numel()
    d2_valid = squared_distances(valid, centres)
    valid_ll = {s: log_likelihoods(d2_valid, s, dim).mean().item() for s in sigmas}
    sigma = max(valid_ll, key=valid_ll.get)
    del d2_valid
    ll = log_likelihoods(squared_distances(test, centres), sigma, dim)
    return ParzenResult(ll.mean().item(), (ll.std(unbiased=False) / math.sqrt(len(ll))).item(), sigma, valid_ll)
