"""SRGAN's nets (Ledig et al. 2017): the SRResNet generator and the VGG-style discriminator.

SRResNet G: a 9 x 9 conv and PReLU, `n_blocks` residual blocks (conv 3 x 3, batch norm, PReLU,
conv 3 x 3, batch norm, plus the block's input), a conv and batch norm added to the first conv's
output (the long skip), then log2(scale) sub-pixel upsamplings (a conv to 4 x the channels, pixel
shuffle by 2, PReLU) and a 9 x 9 conv to the image's channels. The paper has 16 blocks of 64
channels at x4; `model.width` sets the channels.

ganforge's degraded images come back at full size (data.degrade=down=K repeats each low-resolution
pixel K x K times), so G first takes the K x K average, which gives back the low-resolution image
exactly, and works from there: every convolution of the residual trunk runs at the low resolution,
as in the paper.

D: eight 3 x 3 convs (LeakyReLU 0.2, batch norm on all but the first) with width, width, 2 width,
2 width, 4 width, 4 width, 8 width, 8 width channels, strides 1, 2 alternating; then, where the
paper flattens its 96 px inputs into a dense layer of 1024, a global average (so that any size
works), a dense layer of 16 width units, LeakyReLU and one logit. D judges the image alone, as
in the paper, not an (input, output) pair.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.nets.common import output_activation
from ganforge.nets.registry import register_D, register_G


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels),
                                  nn.PReLU(channels), nn.Conv2d(channels, channels, 3, padding=1),
                                  nn.BatchNorm2d(channels))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.body(h)


class SRResNet(nn.Module):
    """[N, C, H, W] (the low-resolution image repeated `scale` x `scale`) -> [N, C, H, W]."""

    def __init__(self, channels: int, scale: int, width: int = 64, n_blocks: int = 16, out_act: str = "tanh"):
        super().__init__()
        if scale not in (2, 4):
            raise ValueError(f"SRResNet upsamples by 2 or 4 (got {scale})")
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, padding=4), nn.PReLU(width))
        self.trunk = nn.Sequential(*[ResidualBlock(width) for _ in range(n_blocks)],
                                   nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))
        up: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            up += [nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2), nn.PReLU(width)]
        self.up = nn.Sequential(*up, nn.Conv2d(width, channels, 9, padding=4), output_activation(out_act))
        self.size_multiple = scale

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        lr = F.avg_pool2d(a, self.scale)  # the low-resolution image, exactly (a repeats each of its pixels)
        h = self.head(lr)
        return self.up(h + self.trunk(h))


class SRDiscriminator(nn.Module):
    def __init__(self, channels: int, width: int = 64):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for i, mult in enumerate((1, 1, 2, 2, 4, 4, 8, 8)):
            c_out, stride = width * mult, 1 + i % 2
            layers.append(nn.Conv2d(c_in, c_out, 3, stride, 1))
            if i:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2))
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(c_in, 16 * width), nn.LeakyReLU(0.2), nn.Linear(16 * width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> logits [N]
        return self.head(self.body(x).mean((2, 3)))[:, 0]


def scale_of(degrade: str | None) -> int | None:
    """K of data.degrade=down=K (None for any other degradation)."""
    name, _, value = (degrade or "").partition("=")
    if name.strip() != "down":
        return None
    try:
        return int(float(value)) if value.strip() else 4
    except ValueError:
        return None


def _sr_only(name: str):
    def check(shape: tuple, cfg) -> str | None:
        if cfg.train.recipe != "srgan":
            return f"{name} nets are SRGAN's: use them with train.recipe=srgan (not {cfg.train.recipe})"
        return None
    return check


@register_G("srresnet", check=_sr_only("srresnet"))
def _srresnet(*, sample_shape, width=64, out="tanh", scale=4, n_blocks=16):
    return SRResNet(sample_shape[0], scale, width, n_blocks, out)


@register_D("srgan", check=_sr_only("srgan"))
def _srgan_d(*, sample_shape, width=64):
    return SRDiscriminator(sample_shape[0], width)
