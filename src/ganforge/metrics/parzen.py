"""Parzen-window log-likelihood, exactly as Goodfellow et al. 2014 measured it.

Reference: goodfeli/adversarial, parzen_ll.py. Kernel centres mu: 10,000 generated samples (pixels
in [0, 1]); sigma is chosen from numpy.logspace(-1, 0, 10) by the best mean log-likelihood of the
first 1,000 images of the validation split (MNIST train[50000:60000]); the score is the mean
log-likelihood of the 10,000 test images, with standard error std / sqrt(N) (ddof 0):

    log p(x) = logmeanexp_j( -||x - mu_j||^2 / (2 sigma^2) ) - d log(sigma sqrt(2 pi))

The squared distances do not depend on sigma, so each chunk of points gets one GEMM
(||x||^2 + ||mu||^2 - 2 x.mu) reused for every sigma. float32 by default: for pixels in [0, 1] and
d = 784 the rounding changes a log-likelihood by under 1e-2 nats at the smallest sigma of the
grid, two orders of magnitude under the reported standard error (tests check float32 and float64
against a slow reference).

With d = 784 and sigma near 0.17 the sum is dominated by the nearest centre, so
log p(x) ~ -min_j ||x - mu_j||^2 / (2 sigma^2) - d log(sigma sqrt(2 pi)) - log M: one nat is a
change of 2 sigma^2 (about 0.06) in the squared distance from a test image to its nearest sample.
The protocol therefore also reports that mean nearest squared distance, which says *why* two
models' scores differ.

Theis, van den Oord and Bethge (2016) show that this estimate can mislead badly in high
dimension; ganforge reports it because it is the paper's only quantitative result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ganforge.metrics.context import Context, NotApplicable
from ganforge.metrics.registry import Headline, Metric, register

SIGMAS = tuple(float(s) for s in np.logspace(-1, 0, 10))


def squared_distances(x: torch.Tensor, mu: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[N, d], [M, d] -> [N, M] squared Euclidean distances, computed as one GEMM in `dtype`."""
    x, mu = x.flatten(1).to(dtype), mu.flatten(1).to(dtype)
    d2 = (x * x).sum(1, keepdim=True) + (mu * mu).sum(1)[None] - 2 * x @ mu.T
    return d2.clamp_min_(0)


def log_likelihoods(d2: torch.Tensor, sigma: float, dim: int) -> torch.Tensor:
    """Per-point Parzen log-density [N] from squared distances [N, M]."""
    m = d2.shape[1]
    e = torch.logsumexp(d2 * (-0.5 / sigma ** 2), dim=1) - math.log(m)
    return e.double() - dim * math.log(sigma * math.sqrt(2 * math.pi))


def parzen_log_likelihoods(x: torch.Tensor, centres: torch.Tensor, sigmas, chunk: int = 1000,
                           dtype: torch.dtype = torch.float32,
                           nearest_out: torch.Tensor | None = None) -> torch.Tensor:
    """[len(sigmas), N] log-likelihoods; distances are computed once per chunk for all sigmas.
    `nearest_out` ([N], optional) receives each point's squared distance to its nearest centre."""
    dim = centres[0].numel()
    out = torch.empty(len(sigmas), len(x), dtype=torch.float64)
    for i in range(0, len(x), chunk):
        d2 = squared_distances(x[i:i + chunk], centres, dtype)
        for k, sigma in enumerate(sigmas):
            out[k, i:i + chunk] = log_likelihoods(d2, sigma, dim)
        if nearest_out is not None:
            nearest_out[i:i + chunk] = d2.min(1).values
    return out


@dataclass
class ParzenResult:
    mean: float
    stderr: float
    sigma: float
    valid_ll: dict[float, float]  # sigma -> mean validation log-likelihood
    test_nearest_d2: float  # mean over test points of the squared distance to the nearest centre


def parzen_protocol(centres: torch.Tensor, valid: torch.Tensor, test: torch.Tensor,
                    sigmas=SIGMAS) -> ParzenResult:
    """The full protocol: choose sigma on `valid`, score `test`. All inputs in [0, 1]."""
    valid_ll = dict(zip(sigmas, parzen_log_likelihoods(valid, centres, sigmas).mean(1).tolist()))
    sigma = max(valid_ll, key=valid_ll.get)
    nearest = torch.empty(len(test), dtype=torch.float64)
    ll = parzen_log_likelihoods(test, centres, [sigma], nearest_out=nearest)[0]
    return ParzenResult(ll.mean().item(), (ll.std(unbiased=False) / math.sqrt(len(ll))).item(), sigma, valid_ll,
                        nearest.mean().item())


def _parzen(ctx: Context) -> dict:
    if ctx.fake.dim() != 4 or ctx.fake.shape[1:] != (1, 28, 28):
        raise NotApplicable(f"the Goodfellow et al. protocol is defined for 28x28 grey images (d = 784); "
                            f"these samples are {tuple(ctx.fake.shape[1:])}")
    valid, _, valid_desc = ctx.real_split("validation")
    test, _, test_desc = ctx.real_split("test")
    r = parzen_protocol(ctx.fake, valid[:1000], test)
    return {"value": r.mean, "stderr": r.stderr, "sigma": r.sigma, "test_nearest_sq_distance": r.test_nearest_d2,
            "validation_ll": {f"{s:.4f}": v for s, v in r.valid_ll.items()},
            "split": f"centres: {len(ctx.fake)} generated; sigma chosen on the first 1000 of {valid_desc}; "
                     f"scored on {test_desc}", "num_real": len(test)}




def _refuse_parzen(cfg, spec, num_classes: int) -> str | None:
    if spec.real_splits == "mnist":
        return None
    return (f"the Goodfellow et al. 2014 Parzen protocol is defined for MNIST (sigma chosen on its validation split, "
            f"scored on its test split); this generator was trained on '{cfg.data.name}': use fid / kid / prdc")


register(Metric("parzen", "Parzen-window log-likelihood of the MNIST test split (Goodfellow et al. 2014)", _parzen,
                fmt=lambda r: (f"{r['value']:.1f} +- {r['stderr']:.1f} (sigma {r['sigma']:.3f}, "
                               f"nearest d2 {r['test_nearest_sq_distance']:.2f})"),
                headline=(Headline("value", "Parzen log-likelihood (nats)", "higher"),), refuse=_refuse_parzen))
