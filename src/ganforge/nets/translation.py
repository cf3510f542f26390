"""Image-to-image nets: the U-Net generator and the PatchGAN discriminator of pix2pix (Isola et al.
2017), and the ResNet-block generator of CycleGAN (Zhu et al. 2017, after Johnson et al. 2016).

All are fully convolutional: they take any H x W that is a multiple of `size_multiple(net)`
(non-square included) and give an output of the same size (G) or a map of patch logits (D).

U-Net: `depth` stride-2 4x4 convs down (LeakyReLU 0.2, norm on all but the first), the same
number of stride-2 transposed convs up (ReLU, norm, dropout 0.5 on the innermost up-convs: the
noise of pix2pix, which has no z), each up-conv fed the matching down-conv's output beside its
own input (the skips). Channels `width * 2^i`, capped at 8 * width, as in the paper.

ResNet G: 7x7 conv, two stride-2 convs down, `n_blocks` residual blocks (reflection padding),
two transposed convs up, 7x7 conv, tanh / sigmoid; instance norm.

PatchGAN D: stride-2 4x4 convs (no norm on the first) then two stride-1 ones, the last to one
channel: each output logit judges one overlapping patch. `n_layers` stride-2 layers see 16, 34
or 70 px patches for 1, 2 or 3 (the paper's "70 x 70" at 256 px); the recipes choose 1 (16 x 16
patches) below 64 px, where a patch is half the image side.
Weights N(0, 0.02), as in both papers' code.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.nets.common import output_activation
from ganforge.nets.registry import register_D, register_G


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class UNetGenerator(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, width: int = 64, depth: int = 5,
                 norm: str = "batch", dropout: float = 0.5, out_act: str = "tanh"):
        super().__init__()
        if depth < 2:
            raise ValueError(f"a U-Net needs depth >= 2 (got {depth})")
        ch = [min(width * 2 ** i, width * 8) for i in range(depth)]  # e.g. width 32, depth 5: 32 64 128 256 256
        bias = norm != "batch"  # batch norm has its own shift
        self.down = nn.ModuleList()
        for i in range(depth):
            c_in = in_channels if i == 0 else ch[i - 1]
            layers = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(c_in, ch[i], 4, 2, 1, bias=bias or i == 0 or i == depth - 1))
            if 0 < i < depth - 1:  # no norm on the outermost input, none on the 1 x 1 bottleneck
                layers.append(_norm(norm, ch[i]))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):  # up[k] undoes down[i]
            c_in = ch[i] if i == depth - 1 else 2 * ch[i]  # below the bottleneck: own input + skip
            c_out = out_channels if i == 0 else ch[i - 1]
            layers = [nn.ReLU(), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias or i == 0)]
            if i == 0:
                layers.append(output_activation(out_act))
            else:
                layers.append(_norm(norm, c_out))
                if dropout and depth - 1 - i < 3 and i > 1:  # the innermost up-convs (at most 3), as in pix2pix
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
        self.size_multiple = 2 ** depth
        _init(self)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        skips = []
        h = a
        for block in self.down:
            h = block(h)
            skips.append(h)
        skips.pop()  # the bottleneck is the up path's input, not a skip
        for k, block in enumerate(self.up):
            if k:
                h = torch.cat([h, skips.pop()], 1)
            h = block(h)
        return h


class ResnetBlock(nn.Module):
    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _norm(norm, channels),
                                  nn.ReLU(True), nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
                                  _norm(norm, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, width: int = 64, n_blocks: int = 6,
                 norm: str = "instance", out_act: str = "tanh"):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7), _norm(norm, width),
                                   nn.ReLU(True)]
        for i in range(2):  # down
            c = width * 2 ** i
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1), _norm(norm, 2 * c), nn.ReLU(True)]
        layers += [ResnetBlock(width * 4, norm) for _ in range(n_blocks)]
        for i in reversed(range(2)):  # up
            c = width * 2 ** (i + 1)
            layers += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1), _norm(norm, c // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), output_activation(out_act)]
        self.net = nn.Sequential(*layers)
        self.size_multiple = 4
        _init(self)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.net(a)


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int, width: int = 64, n_layers: int = 2, norm: str = "batch"):
        super().__init__()
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = width
        for i in range(1, n_layers + 1):
            c_out = min(width * 2 ** i, width * 8)
            stride = 2 if i < n_layers else 1  # the last hidden conv keeps the size, as in pix2pix
            layers += [nn.Conv2d(c, c_out, 4, stride, 1, bias=bias), _norm(norm, c_out), nn.LeakyReLU(0.2, True)]
            c = c_out
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        self.size_multiple = 2 ** (n_layers - 1) * 2
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> patch logits [N, 1, h, w]
        return self.net(x)


class MaskInput(nn.Module):
    """A G that is told which pixels to produce: (a, mask) -> net([a, mask]) (the mask as one more
    input channel, 1 = missing), for completion from degraded data with holes. The image-to-image
    nets take the mask this way; GAIN's G takes it its own way."""

    takes_mask = True

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.size_multiple = size_multiple(net)

    def forward(self, a: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([a, mask.to(a.dtype)], 1))


def size_multiple(net: nn.Module) -> int:
    return getattr(net, "size_multiple", 1)


def _translation_only(name: str):
    def check(shape: tuple, cfg) -> str | None:
        if cfg.train.recipe not in ("pix2pix", "cyclegan"):
            return (f"{name} nets translate images: use them with train.recipe=pix2pix or cyclegan "
                    f"(not {cfg.train.recipe})")
        return None
    return check


@register_G("unet", check=_translation_only("unet"))
def _unet(*, sample_shape, width=64, out="tanh", in_channels=None, depth=5, norm="batch"):
    return UNetGenerator(in_channels or sample_shape[0], sample_shape[0], width, depth, norm, out_act=out)


@register_G("resnet", check=_translation_only("resnet"))
def _resnet(*, sample_shape, width=64, out="tanh", in_channels=None, n_blocks=6, norm="instance"):
    return ResnetGenerator(in_channels or sample_shape[0], sample_shape[0], width, n_blocks, norm, out_act=out)


@register_D("patchgan", check=_translation_only("patchgan"))
def _patchgan(*, sample_shape, width=64, in_channels=None, n_layers=2, norm="batch"):
    return PatchDiscriminator(in_channels or sample_shape[0], width, n_layers, norm)
