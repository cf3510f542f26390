"""Encoders: an image (or a 2-D point) back to a latent code, x -> z (or StyleGAN's w / w+).

Two families, chosen by `model.E` (empty: the one that suits the data, see `default_encoder`):

- mlp: flatten, two hidden layers of `width` units with leaky ReLU (0.2), batch norm on the
  second, a linear output: pixels as a vector, with no notion of neighbours.
- conv: DCGAN's discriminator body (stride-2 4x4 convs, leaky ReLU, batch norm after the first)
  down to a 4 x 4 (or 7 x 7) map, then a linear output.

`features(x)` is the penultimate layer: what a probe or a nearest-neighbour classifier reads.
BiGAN's own encoder (nets/bigan.py) registers here too, as "bigan".
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganforge.nets.dcgan import base_size
from ganforge.nets.registry import ENCODERS, images_only, register_E

DEFAULT_WIDTH = {"mlp": 1024, "conv": 64}


class MLPEncoder(nn.Module):
    def __init__(self, sample_shape: tuple[int, ...], out_dim: int, width: int = 1024):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(math.prod(sample_shape), width), nn.LeakyReLU(0.2),
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.LeakyReLU(0.2))
        self.head = nn.Linear(width, out_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ConvEncoder(nn.Module):
    def __init__(self, sample_shape: tuple[int, ...], out_dim: int, width: int = 64):
        super().__init__()
        channels, resolution = sample_shape[0], sample_shape[-1]
        s0, n_down = base_size(resolution)
        layers: list[nn.Module] = []
        c_in = channels
        for i in range(n_down):
            c_out = width * 2 ** i
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=i == 0)]
            layers += [nn.BatchNorm2d(c_out)] if i else []
            layers += [nn.LeakyReLU(0.2)]
            c_in = c_out
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(c_in * s0 * s0, out_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_E("mlp")
def _mlp_E(*, sample_shape, width, out_dim):
    return MLPEncoder(tuple(sample_shape), out_dim, width or DEFAULT_WIDTH["mlp"])


def _conv_check(shape: tuple, cfg) -> str | None:
    problem = images_only("conv encoder")(shape, cfg)
    if problem:
        return problem.replace("model.arch=mlp (and model.G / model.D empty or mlp)", "model.E=mlp")
    try:
        base_size(shape[-1])
    except ValueError:
        return (f"model.E=conv needs a resolution of 4 or 7 times a power of 2 (data.resolution={shape[-1]}): "
                "use model.E=mlp")
    return None


@register_E("conv", check=_conv_check)
def _conv_E(*, sample_shape, width, out_dim):
    return ConvEncoder(tuple(sample_shape), out_dim, width or DEFAULT_WIDTH["conv"])


def default_encoder(sample_shape: tuple[int, ...], G_name: str) -> str:
    """The encoder of the generator's own family when it has one (mlp, bigan); else conv for
    images of a convolutional G, mlp for points and for the paper's maxout G (data as vectors)."""
    if G_name in ENCODERS:
        return G_name
    return "conv" if len(sample_shape) == 3 and G_name != "goodfellow2014" else "mlp"
