"""BiGAN's permutation-invariant MNIST nets (Donahue et al. 2017, `jeffdonahue/bigan`): a generator,
an encoder and a joint discriminator D(x, z), all fully connected on the flattened image.

As the reference code builds them: no biases, weights N(0, 0.02), batch norm without a learnt
scale or shift and with eps 1e-8, `width` (1024) units a hidden layer.

- G: z -> FC -> BN -> ReLU -> [FC(h) + FC(z)] -> BN -> ReLU -> FC -> sigmoid (or tanh): z enters
  the second layer again.
- E: x -> FC -> leaky ReLU(0.2) -> FC -> BN -> leaky ReLU (the features a probe reads) -> FC
  (N(0, 0.02)) -> squashed into the latents' box: 2 sigmoid(l) - 1 for z ~ U[-1, 1].
- D: x -> FC -> leaky ReLU -> [FC(h) + FC(z)] -> BN -> leaky ReLU -> FC to a logit, started at
  zero (the losses start at log 2). Real pairs (x, E(x)) and generated ones (G(z), z) go through
  separately, each with its own batch statistics.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganforge.nets.common import output_activation
from ganforge.nets.registry import register_D, register_E, register_G, unconditional

BN_EPS = 1e-8


def _fc(n_in: int, n_out: int, std: float = 0.02) -> nn.Linear:
    layer = nn.Linear(n_in, n_out, bias=False)
    nn.init.normal_(layer.weight, 0.0, std) if std else nn.init.zeros_(layer.weight)
    return layer


def _bn(n: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(n, eps=BN_EPS, affine=False)


class BiGANGenerator(nn.Module):
    def __init__(self, z_dim: int, sample_shape: tuple[int, ...], width: int = 1024, out: str = "sigmoid"):
        super().__init__()
        self.shape = tuple(sample_shape)
        self.fc1, self.bn1 = _fc(z_dim, width), _bn(width)
        self.fc2, self.fc2_z, self.bn2 = _fc(width, width), _fc(z_dim, width), _bn(width)
        self.out, self.act = _fc(width, math.prod(self.shape)), output_activation(out)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = torch.relu(self.bn1(self.fc1(z)))
        h = torch.relu(self.bn2(self.fc2(h) + self.fc2_z(z)))
        return self.act(self.out(h)).reshape(len(z), *self.shape)


class BiGANEncoder(nn.Module):
    def __init__(self, sample_shape: tuple[int, ...], out_dim: int, width: int = 1024, box: float | None = 1.0):
        super().__init__()
        self.fc1 = _fc(math.prod(sample_shape), width)
        self.fc2, self.bn2 = _fc(width, width), _bn(width)
        self.head = _fc(width, out_dim)
        self.box = box  # the latents' half-width: outputs squashed into it (None: unbounded latents)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.leaky_relu(self.fc1(x.flatten(1)), 0.2)
        return nn.functional.leaky_relu(self.bn2(self.fc2(h)), 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features(x))
        return logits if self.box is None else self.box * (2 * torch.sigmoid(logits) - 1)


class JointDiscriminator(nn.Module):
    """D(x, z) -> logits [N]."""

    def __init__(self, sample_shape: tuple[int, ...], z_dim: int, width: int = 1024):
        super().__init__()
        self.fc1 = _fc(math.prod(sample_shape), width)
        self.fc2, self.fc2_z, self.bn2 = _fc(width, width), _fc(z_dim, width), _bn(width)
        self.out = _fc(width, 1, std=0.0)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = nn.functional.leaky_relu(self.fc1(x.flatten(1)), 0.2)
        h = nn.functional.leaky_relu(self.bn2(self.fc2(h) + self.fc2_z(z)), 0.2)
        return self.out(h).squeeze(1)


@register_G("bigan")
def _bigan_G(*, z_dim, c_dim, sample_shape, width, out):
    unconditional("bigan", c_dim)
    return BiGANGenerator(z_dim, sample_shape, width, out)


@register_D("bigan")
def _bigan_D(*, c_dim, sample_shape, width, z_dim):
    unconditional("bigan", c_dim)
    return JointDiscriminator(sample_shape, z_dim, width)


@register_E("bigan")
def _bigan_E(*, sample_shape, width, out_dim, box):
    return BiGANEncoder(sample_shape, out_dim, width or 1024, box)
