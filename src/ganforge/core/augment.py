"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"):
the same random, differentiable transformations applied to every image D sees, real and generated,
in D's and G's updates, so D cannot memorise a small training set and G still gets gradients.

Policies (`train.augment: color,translation,cutout`), with the paper's ranges, drawn per sample:
- color: brightness + U(-0.5, 0.5); saturation x U(0, 2) around the pixel's channel mean;
  contrast x U(0.5, 1.5) around the image mean
- translation: a shift of up to 1/8 of the size in each direction, zeros shifted in
- cutout: a zeroed square of half the size at a random centre (clipped at the border)

With a probability p < 1 (`train.augment_p`, or adapted by ADA: `train.ada_target`), each policy
is applied to each sample with probability p, independently (StyleGAN2-ADA's scheme over DiffAugment's
transformations). `ada_step` is ADA's controller.

Randomness comes from the global torch stream (per rank under torchrun; saved in checkpoints).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _uniform(x: Tensor, low: float, high: float) -> Tensor:
    return torch.rand(len(x), 1, 1, 1, dtype=x.dtype, device=x.device) * (high - low) + low


def color(x: Tensor) -> Tensor:
    x = x + _uniform(x, -0.5, 0.5)
    mean_c = x.mean(dim=1, keepdim=True)
    x = (x - mean_c) * _uniform(x, 0.0, 2.0) + mean_c
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(x, 0.5, 1.5) + mean


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    # read pixel (y + dy, x + dx) of the input padded with one ring of zeros; off-image reads hit the ring
    ys = (torch.arange(h, device=x.device).view(1, h, 1) + dy).clamp(-1, h) + 1  # [N, H, 1]
    xs = (torch.arange(w, device=x.device).view(1, 1, w) + dx).clamp(-1, w) + 1  # [N, 1, W]
    padded = F.pad(x, (1, 1, 1, 1))
    rows = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded[rows, :, ys, xs].permute(0, 3, 1, 2)  # [N, H, W, C] -> [N, C, H, W]


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((ys >= cy - ch // 2) & (ys < cy - ch // 2 + ch) & (xs >= cx - cw // 2) & (xs < cx - cw // 2 + cw))
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES = {"color": color, "translation": translation, "cutout": cutout}


def parse_policy(policy: str) -> list[str]:
    return [p.strip() for p in policy.split(",") if p.strip()]


def diff_augment(x: Tensor, policy: list[str], p: float = 1.0) -> Tensor:
    """Each policy in turn, to every sample (p = 1) or to each sample with probability p."""
    for name in policy:
        y = POLICIES[name](x)
        if p < 1:
            keep = torch.rand(len(x), *([1] * (x.dim() - 1)), device=x.device) >= p
            y = torch.where(keep, x, y)
        x = y
    return x


def ada_step(p: float, r_t: float, target: float, images: int, kimg: float) -> float:
    """ADA's controller: p after `images` images whose real logits had mean sign r_t; it moves by
    images / (kimg * 1000) toward more augmentation when r_t > target, less otherwise, within [0, 1]."""
    step = images / (kimg * 1000)
    return min(1.0, max(0.0, p + (step if r_t > target else -step)))
