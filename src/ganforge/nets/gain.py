"""GAIN's nets (Yoon et al. 2018), as the authors build them (`jsyoon0823/GAIN`: gain.py for
tabular data, MNST_Code_Example.py for MNIST; model.gain_variant chooses): fully connected, on
the flattened image.

- G(x~, m): [x~, m] -> FC -> ReLU -> FC -> ReLU -> FC -> sigmoid, one value per pixel. x~ is the
  image with its missing pixels replaced by noise, m the mask of observed pixels (1 = observed).
  ganforge's masks mark the missing pixels, so GAINGenerator takes (a, mask) and makes x~ and m.
- D(x^, h): [x^, h] -> FC -> ReLU -> FC -> ReLU -> FC: one logit per pixel, "this pixel was
  observed", given the completed image x^ and the hint h.

Hidden layers of model.width and model.width / 2 units in the MNIST variant (256 and 128, as
configs/mnist_gain.yaml), both model.width in the tabular one (the code makes them as wide as the
data); Xavier-normal
weights (the reference's xavier_init: N(0, 1 / (fan_in / 2))) and zero biases.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganforge.nets.registry import register_D, register_G

NOISE = {"tabular": 0.01, "mnist": 1.0}  # the noise in the holes of G's input: U(0, NOISE) per variant


def _fc(n_in: int, n_out: int) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.normal_(layer.weight, 0.0, 1.0 / math.sqrt(n_in / 2.0))
    nn.init.zeros_(layer.bias)
    return layer


def _mlp(n_in: int, hidden: int, n_out: int, taper: bool) -> nn.Sequential:
    second = hidden // 2 if taper else hidden  # the MNIST script: 256 then 128; the tabular code: both as wide
    return nn.Sequential(_fc(n_in, hidden), nn.ReLU(), _fc(hidden, second), nn.ReLU(), _fc(second, n_out))


class GAINGenerator(nn.Module):
    """(a, mask) -> every pixel of the completed image in [0, 1] ([N, C, H, W]); `mask` is 1 where a
    pixel is missing (ganforge's convention), so G's m = 1 - mask. The missing pixels of a are
    replaced by noise U(0, `noise`) in training (the MNIST script: 1; the tabular code: 0.01) and by
    its mean in eval mode, so that a completion does not depend on a random draw."""

    takes_mask = True

    def __init__(self, sample_shape: tuple[int, ...], width: int, variant: str = "tabular"):
        super().__init__()
        dim = math.prod(sample_shape)
        self.noise = NOISE[variant]
        self.net = nn.Sequential(_mlp(2 * dim, width, dim, taper=variant == "mnist"), nn.Sigmoid())

    def forward(self, a: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = (1 - mask).expand_as(a)
        noise = torch.rand_like(a) * self.noise if self.training else torch.full_like(a, self.noise / 2)
        x_tilde = m * a + (1 - m) * noise
        return self.net(torch.cat([x_tilde.flatten(1), m.flatten(1)], 1)).reshape(a.shape)  # not len(a): ONNX keeps the batch free


class GAINDiscriminator(nn.Module):
    """(x^, h) -> a logit per value, that it was observed ([N, C, H, W])."""

    def __init__(self, sample_shape: tuple[int, ...], width: int, variant: str = "tabular"):
        super().__init__()
        dim = math.prod(sample_shape)
        self.net = _mlp(2 * dim, width, dim, taper=variant == "mnist")

    def forward(self, x: torch.Tensor, hint: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x.flatten(1), hint.flatten(1)], 1)).reshape(x.shape)


def _check(shape: tuple, cfg) -> str | None:
    if len(shape) != 3:
        return "gain nets complete images: use them with image data and data.degrade"
    if cfg.model.width < 8:
        return f"model.width={cfg.model.width}: GAIN's hidden layers need at least 8 units (the MNIST script: 256)"
    return None


@register_G("gain", check=_check)
def _gain_G(*, sample_shape, width, variant="tabular"):
    return GAINGenerator(sample_shape, width, variant)


@register_D("gain", check=_check)
def _gain_D(*, sample_shape, width, variant="tabular"):
    return GAINDiscriminator(sample_shape, width, variant)
