"""The MNIST model of Goodfellow et al. 2014, "Generative Adversarial Nets", as in the authors'
code (goodfeli/adversarial, mnist.yaml).

G: z (100, N(0, I)) -> ReLU 1200 -> ReLU 1200 -> sigmoid 784; weights uniform in +-0.05, the
output bias set from the training data's pixel marginals.
D: dropout(keep 0.8) -> maxout 240 x 5 -> dropout(keep 0.5) -> maxout 240 x 5 -> dropout(keep 0.5)
-> logit; weights uniform in +-0.005. pylearn2 scales kept units by 1/keep, as nn.Dropout does.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganforge.nets.common import Dropout
from ganforge.nets.registry import images_only, register_D, register_G, unconditional


class Maxout(nn.Module):
    def __init__(self, d_in: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(d_in, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, d_in] -> [N, units]
        return self.linear(x).view(-1, self.units, self.pieces).amax(-1)


def _uniform_init(module: nn.Module, irange: float) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -irange, irange)
            nn.init.zeros_(m.bias)


class GoodfellowGenerator(nn.Module):
    def __init__(self, z_dim: int, sample_shape: tuple[int, ...], width: int = 1200):
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        self.net = nn.Sequential(
            nn.Linear(z_dim, width), nn.ReLU(),
            nn.Linear(width, width), nn.ReLU(),
            nn.Linear(width, math.prod(self.sample_shape)), nn.Sigmoid(),
        )
        _uniform_init(self, 0.05)

    @torch.no_grad()
    def init_output_bias(self, pixel_mean: torch.Tensor) -> None:
        """pylearn2's init_sigmoid_bias_from_marginals: bias = logit(mean pixel), clipped."""
        p = pixel_mean.reshape(-1).clamp(1e-5, 1 - 1e-5)
        self.net[-2].bias.copy_(torch.log(p) - torch.log1p(-p))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.sample_shape)


class GoodfellowDiscriminator(nn.Module):
    def __init__(self, sample_shape: tuple[int, ...], width: int = 1200, pieces: int = 5):
        super().__init__()
        units = width // pieces
        self.net = nn.Sequential(
            nn.Flatten(), Dropout(0.2),
            Maxout(math.prod(sample_shape), units, pieces), Dropout(0.5),
            Maxout(units, units, pieces), Dropout(0.5),
            nn.Linear(units, 1),
        )
        _uniform_init(self, 0.005)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, ...] -> [N] logits
        return self.net(x).squeeze(1)


def _check_G(shape: tuple, cfg) -> str | None:
    problem = images_only("goodfellow2014")(shape, cfg)
    if problem is None and cfg.data.range != "unit":
        return "goodfellow2014 has a sigmoid generator: set data.range=unit"
    return problem


def _check_D(shape: tuple, cfg) -> str | None:
    problem = images_only("goodfellow2014")(shape, cfg)
    if problem is None and cfg.model.width % 5:
        return (f"model.width={cfg.model.width}: goodfellow2014 needs a multiple of 5 "
                "(D has width/5 maxout units of 5 pieces)")
    return problem


@register_G("goodfellow2014", check=_check_G)
def build_generator(*, z_dim: int, c_dim: int, sample_shape: tuple, width: int) -> nn.Module:
    unconditional("goodfellow2014", c_dim)
    return GoodfellowGenerator(z_dim, sample_shape, width)


@register_D("goodfellow2014", check=_check_D)
def build_discriminator(*, c_dim: int, sample_shape: tuple, width: int) -> nn.Module:
    unconditional("goodfellow2014", c_dim)
    return GoodfellowDiscriminator(sample_shape, width)
