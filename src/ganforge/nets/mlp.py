"""The textbook MNIST GAN: fully connected G and D with LeakyReLU(0.2); D with dropout.

G: z -> w -> 2w -> 4w -> prod(sample_shape), output activation from the data range.
D: prod(sample_shape) -> 4w -> 2w -> w -> 1 logit, Dropout after every hidden layer.
With w = 256 and z_dim = 128 this is exactly the seed chapter's model (its Sigmoid head is
folded into the loss, which works on logits).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganforge.nets.common import Dropout, output_activation
from ganforge.nets.registry import register_D, register_G, unconditional


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int, sample_shape: tuple[int, ...], width: int = 256, out_act: str = "tanh"):
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        dims = [z_dim, width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(d_in, d_out), nn.LeakyReLU(0.2)]
        layers += [nn.Linear(dims[-1], math.prod(self.sample_shape)), output_activation(out_act)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [N, z_dim] -> [N, *sample_shape]
        return self.net(z).view(-1, *self.sample_shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, sample_shape: tuple[int, ...], width: int = 256, dropout: float = 0.3):
        super().__init__()
        dims = [math.prod(sample_shape), 4 * width, 2 * width, width]
        layers: list[nn.Module] = [nn.Flatten()]
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(d_in, d_out), nn.LeakyReLU(0.2)]
            if dropout > 0:
                layers.append(Dropout(dropout))
        layers.append(nn.Linear(dims[-1], 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, *sample_shape] -> [N] logits
        return self.net(x).squeeze(1)


@register_G("mlp")
def build_generator(*, z_dim: int, c_dim: int, sample_shape: tuple, width: int, out: str, **_) -> nn.Module:
    unconditional("mlp", c_dim)
    return MLPGenerator(z_dim, sample_shape, width, out)


@register_D("mlp")
def build_discriminator(*, c_dim: int, sample_shape: tuple, width: int, dropout: float, **_) -> nn.Module:
    unconditional("mlp", c_dim)
    return MLPDiscriminator(sample_shape, width, dropout)
