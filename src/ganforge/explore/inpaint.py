"""Inpainting through a trained generator (Yeh et al. 2017, "Semantic Image Inpainting with Deep
Generative Models"): the hole is filled from the image G makes at the latent that best agrees
with the pixels around it. Any latent model ganforge trains will do: no training for the task.

The search is the projector's (explore/project.py: Adam, its learning-rate ramps and latent noise,
StyleGAN noise maps in w / w+), with the paper's loss in place of the projector's distance:

    context  = sum_i |W_i (G(z)_i - y_i)|      W_i = the share of missing pixels in the 7 x 7 window
                                               around a known pixel i, 0 on missing pixels
    prior    = log(1 - D(G(z)))                D's probability that G(z) is real, from its logit
    loss     = context + lambda * prior        lambda = 0.003, the paper's

The weights make the known pixels next to the hole count most, and those far from it not at all:
what lies beside the hole is what the fill must continue. The prior needs the run's D (a run folder
or a checkpoint; an export holds G alone, and the search then goes on with the context term only,
which the result says). A conditional G takes the class given or searches it.

Blending: G's image and the photo differ in brightness and detail; the paper pastes G's pixels by
Poisson blending (Perez et al. 2003): inside the hole the result keeps the gradients of G's image
while meeting the known pixels at the hole's edge, solved here by Jacobi iterations. Known pixels
are never changed. `blend="paste"` copies G's pixels as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ganforge.core.errors import ConfigError
from ganforge.core.rng import check_seed
from ganforge.explore.project import Distance, Projection, check_choice, search
from ganforge.generator import GeneratorHandle

WINDOW = 7  # the paper's neighbourhood of the context weights
PRIOR_WEIGHT = 0.003  # the paper's lambda
BLENDS = ("poisson", "paste")
POISSON_TOL = 1e-5  # Jacobi stops when no pixel moves more than this (pixels in the data's range)
POISSON_MAX_ITERS = 20_000


@dataclass
class Inpainting:
    """The filled images (known pixels unchanged), G's images before blending, and the search."""
    x: torch.Tensor  # [N, C, H, W] in the data's range
    generated: torch.Tensor
    projection: Projection
    prior_used: bool


def context_weights(mask: torch.Tensor, window: int = WINDOW) -> torch.Tensor:
    """Yeh et al.'s W [N, 1, H, W] for masks [N, 1, H, W] (1 = missing): each known pixel weighted by
    the share of missing pixels in the window around it (the image's edge counts as neither)."""
    share = F.avg_pool2d(mask.float(), window, stride=1, padding=window // 2, count_include_pad=False)
    return (1 - mask.float()) * share


def _neighbours(f: torch.Tensor) -> torch.Tensor:
    """The sum of each pixel's four neighbours, the image's edge mirrored (no flow across it)."""
    p = F.pad(f, (1, 1, 1, 1), mode="replicate")
    return p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]


def poisson_blend(known: torch.Tensor, generated: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Images whose missing pixels (mask 1) solve laplacian(f) = laplacian(generated) with f = known
    on the known pixels; the known pixels are returned unchanged."""
    hole = mask.float().expand_as(known)
    guidance = 4 * generated - _neighbours(generated)  # the discrete laplacian of G's image, negated
    f = hole * generated + (1 - hole) * known
    for _ in range(POISSON_MAX_ITERS):
        new = hole * (_neighbours(f) + guidance) / 4 + (1 - hole) * known
        moved = (new - f).abs().max()
        f = new
        if moved < POISSON_TOL:
            break
    return f


def check_inpainting(G: GeneratorHandle, steps: int, prior_weight: float, blend: str) -> None:
    if not G.takes_latent or G.is_points:
        raise ConfigError("inpainting through a generator needs a model that draws images from latents "
                          f"(this one is train.recipe={G.cfg.train.recipe})")
    if steps < 1:
        raise ConfigError(f"--steps {steps}: at least 1")
    if not (prior_weight >= 0 and prior_weight < float("inf")):
        raise ConfigError(f"--prior-weight {prior_weight}: a number >= 0 (the paper's lambda: {PRIOR_WEIGHT})")
    if blend not in BLENDS:
        raise ConfigError(f"--blend {blend}: one of {', '.join(BLENDS)}")


def inpaint(G: GeneratorHandle, x: torch.Tensor, mask: torch.Tensor, critic: Callable | None = None,
            steps: int = 1000, prior_weight: float = PRIOR_WEIGHT, space: str = "z", c: torch.Tensor | None = None,
            blend: str = "poisson", seed: int = 0, progress: Callable[[int, float], None] | None = None) -> Inpainting:
    """Fill the missing pixels (mask [N, 1, H, W], 1 = missing) of images x [N, C, H, W] (data's
    range) from G. `critic(images, c)` -> D's logits [N] gives the prior; None leaves it out."""
    check_inpainting(G, steps, prior_weight, blend)
    check_choice(space, "mean", G)
    check_seed(seed)
    mask = mask.float()
    known = x.float() * (1 - mask)  # what lies under the hole is never looked at

    def prior(x_rec: torch.Tensor, c_: torch.Tensor | None) -> torch.Tensor:
        return -F.softplus(critic(x_rec, c_).float())  # log(1 - sigmoid(logit))

    use_prior = critic is not None and prior_weight > 0
    distance = Distance(None, 1.0, 0.0, context=context_weights(mask), prior=prior if use_prior else None,
                        prior_weight=prior_weight)
    result = search(G, known, space, steps, "mean", c, distance, seed=seed, progress=progress)
    generated = result.x
    cpu_mask = mask.cpu()
    filled = poisson_blend(known.cpu(), generated, cpu_mask) if blend == "poisson" else \
        cpu_mask * generated + (1 - cpu_mask) * known.cpu()
    lo, hi = (-1.0, 1.0) if G.value_range == "signed" else (0.0, 1.0)
    filled = cpu_mask * filled.clamp(lo, hi) + (1 - cpu_mask) * known.cpu()  # known pixels exactly as given
    return Inpainting(filled, generated, result, use_prior)
