"""DCGAN (Radford, Metz, Chintala 2015), parameterised by resolution, channels and width.

G: z -> ConvTranspose to an s0 x s0 map (s0 = 4, or 7 for 28 px), then stride-2 ConvTranspose
blocks with BatchNorm + ReLU doubling the size up to the resolution, halving the channels down to
`width`, and a final tanh. D mirrors it: stride-2 convs with LeakyReLU(0.2) and BatchNorm (not on
the first), then one s0 x s0 conv to a logit. Weights N(0, 0.02), BatchNorm scales N(1, 0.02).
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.nets.common import ConditionalHead, one_hot, output_activation
from ganforge.nets.registry import images_only, register_D, register_G


def base_size(resolution: int) -> tuple[int, int]:
    """(s0, n_up): the resolution is s0 * 2**n_up with s0 in {4, 7}."""
    s, n = resolution, 0
    while s % 2 == 0 and s > 4:
        s, n = s // 2, n + 1
    if s not in (4, 7) or n == 0:
        raise ValueError(f"dcgan does not support resolution {resolution}")
    return s, n


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """With c_dim > 0 the one-hot class is appended to z (cGAN); with code_dim > 0 a caption's code
    (nets/text.py: Reed et al. 2016 join it to z the same way)."""

    def __init__(self, z_dim: int, resolution: int, channels: int, width: int = 64, out_act: str = "tanh",
                 c_dim: int = 0, code_dim: int = 0):
        super().__init__()
        self.c_dim = c_dim
        s0, n_up = base_size(resolution)
        ch = [width * 2 ** i for i in reversed(range(n_up))]  # e.g. 28 px: [128, 64]
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim + c_dim + code_dim, ch[0], s0, 1, 0, bias=False),
                                   nn.BatchNorm2d(ch[0]), nn.ReLU(True)]
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ch[-1], channels, 4, 2, 1), output_activation(out_act)]
        self.net = nn.Sequential(*layers)
        _init_weights(self)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, code: torch.Tensor | None = None
                ) -> torch.Tensor:  # [N, z_dim] -> [N, C, H, W]
        if self.c_dim:
            z = torch.cat([z, one_hot(c, self.c_dim, z)], 1)
        if code is not None:
            z = torch.cat([z, code.to(z.dtype)], 1)
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """`norm="none"` drops the batch norm (a WGAN-GP / R1 critic: their penalties are per-sample
    gradients, which batch statistics would mix); the convs then keep their biases."""

    def __init__(self, resolution: int, channels: int, width: int = 64, norm: str = "batch", c_dim: int = 0,
                 cond: str = "none", code_dim: int = 0):
        super().__init__()
        self.c_dim, self.cond = c_dim, cond if c_dim else "none"
        s0, n_down = base_size(resolution)
        ch = [width * 2 ** i for i in range(n_down)]  # e.g. 28 px: [64, 128]
        c_in = channels + (c_dim if self.cond == "cgan" else 0)  # cgan: one-hot class maps as extra channels
        layers: list[nn.Module] = [nn.Conv2d(c_in, ch[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            if norm == "batch":
                layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out)]
            else:
                layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1))
            layers.append(nn.LeakyReLU(0.2, True))
        layers += [nn.Conv2d(ch[-1], 1, s0, 1, 0)]
        self.net = nn.Sequential(*layers)
        if self.cond != "none":  # on the whole last feature map: a class is a layout, not a count of strokes
            self.head = ConditionalHead(self.cond, c_dim, ch[-1] * s0 * s0)
        if code_dim:  # Reed et al. 2016: the caption's code replicated over the s0 x s0 map, joined by a 1x1 conv
            self.joint = nn.Sequential(nn.Conv2d(ch[-1] + code_dim, ch[-1], 1), nn.LeakyReLU(0.2, True))
        _init_weights(self)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None, code: torch.Tensor | None = None) -> torch.Tensor:
        """[N, C, H, W] -> [N] logits ([N, 1 + K] for acgan)."""
        if code is not None:
            h = self.net[:-1](x)
            maps = code.to(h.dtype)[:, :, None, None].expand(-1, -1, *h.shape[2:])
            return self.net[-1](self.joint(torch.cat([h, maps], 1))).flatten()
        if self.cond == "none":
            return self.net(x).flatten()
        if self.cond == "cgan":
            maps = one_hot(c, self.c_dim, x)[:, :, None, None].expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, maps], 1)
        h = self.net[:-1](x)  # [N, C, s0, s0]
        return self.head(self.net[-1](h).flatten(), h.flatten(1), c)


def _check(shape: tuple, cfg) -> str | None:
    problem = images_only("dcgan")(shape, cfg)
    if problem:
        return problem
    resolution = shape[-1]
    r = resolution
    while r % 2 == 0 and r > 4:
        r //= 2
    if r not in (4, 7) or resolution == r:
        return f"data.resolution={resolution} is not supported by dcgan: use 28, 32, 64 or 128"
    return None


@register_G("dcgan", check=_check, conditional=True)
def build_generator(*, z_dim: int, c_dim: int, sample_shape: tuple, width: int, out: str, code_dim: int = 0
                    ) -> nn.Module:
    return DCGANGenerator(z_dim, sample_shape[-1], sample_shape[0], width, out, c_dim, code_dim)


@register_D("dcgan", check=_check, conditional=True)
def build_discriminator(*, c_dim: int, sample_shape: tuple, width: int, norm: str = "batch", cond: str = "none",
                        code_dim: int = 0) -> nn.Module:
    return DCGANDiscriminator(sample_shape[-1], sample_shape[0], width, norm, c_dim, cond, code_dim)
