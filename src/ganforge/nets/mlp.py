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

from ganforge.nets.common import ConditionalHead, Dropout, one_hot, output_activation
from ganforge.nets.registry import register_D, register_G


class MLPGenerator(nn.Module):
    """With c_dim > 0 the one-hot class is appended to z (cGAN)."""

    def __init__(self, z_dim: int, sample_shape: tuple[int, ...], width: int = 256, out_act: str = "tanh",
                 c_dim: int = 0):
        super().__init__()
        self.sample_shape, self.c_dim = tuple(sample_shape), c_dim
        dims = [z_dim + c_dim, width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(d_in, d_out), nn.LeakyReLU(0.2)]
        layers += [nn.Linear(dims[-1], math.prod(self.sample_shape)), output_activation(out_act)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:  # [N, z_dim] -> [N, *shape]
        if self.c_dim:
            z = torch.cat([z, one_hot(c, self.c_dim, z)], 1)
        return self.net(z).view(-1, *self.sample_shape)


class MLPDiscriminator(nn.Module):
    """`cond` (with c_dim > 0): cgan appends the one-hot class to the input; projection and acgan
    act on the last hidden layer through a ConditionalHead."""

    def __init__(self, sample_shape: tuple[int, ...], width: int = 256, dropout: float = 0.3, c_dim: int = 0,
                 cond: str = "none"):
        super().__init__()
        self.c_dim, self.cond = c_dim, cond if c_dim else "none"
        dims = [math.prod(sample_shape) + (c_dim if self.cond == "cgan" else 0), 4 * width, 2 * width, width]
        layers: list[nn.Module] = [nn.Flatten()]
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(d_in, d_out), nn.LeakyReLU(0.2)]
            if dropout > 0:
                layers.append(Dropout(dropout))
        layers.append(nn.Linear(dims[-1], 1))
        self.net = nn.Sequential(*layers)
        if self.cond != "none":
            self.head = ConditionalHead(self.cond, c_dim, width)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """[N, *sample_shape] -> [N] logits ([N, 1 + K] for acgan)."""
        if self.cond == "none":
            return self.net(x).squeeze(1)
        x = x.flatten(1)
        if self.cond == "cgan":
            x = torch.cat([x, one_hot(c, self.c_dim, x)], 1)
        h = self.net[1:-1](x)  # the hidden layers (after Flatten, before the logit)
        return self.head(self.net[-1](h).squeeze(1), h, c)


@register_G("mlp", conditional=True)
def build_generator(*, z_dim: int, c_dim: int, sample_shape: tuple, width: int, out: str) -> nn.Module:
    return MLPGenerator(z_dim, sample_shape, width, out, c_dim)


@register_D("mlp", conditional=True)
def build_discriminator(*, c_dim: int, sample_shape: tuple, width: int, dropout: float, cond: str = "none"
                        ) -> nn.Module:
    return MLPDiscriminator(sample_shape, width, dropout, c_dim, cond)
