"""A compact StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"),
pure PyTorch, sized by resolution and width so that 28 / 32 px models train on a CPU.

G = mapping + synthesis:
- mapping: z (normalised to unit second moment) -> w through `depth` equalised-lr linear layers
  with leaky ReLU and a 0.01 learning-rate multiplier, as in the paper;
- synthesis: a learned constant (s0 x s0, s0 = 4, or 7 for 28 px), then per resolution two
  modulated 3x3 convolutions (the first doubling the size) with weight demodulation, per-layer
  noise (strength learnt, starting at 0) and leaky ReLU, and a skip-connected ToRGB (modulated 1x1,
  no demodulation) whose outputs are upsampled and summed ("skip" generator of StyleGAN2);
- style mixing regularisation: in training, with probability `mixing`, the layers from a random
  cut on take the w of a second z (the paper's 0.9);
- `w_avg`, the running mean of w (decay 0.995), for truncation toward the mean w.
Each layer takes its own copy of w ([N, num_ws, w_dim] inside; mixing makes them differ).

D = residual blocks (two 3x3 convs, a 1x1 skip, average-pool down, sum scaled by 1/sqrt 2) from
RGB at full size down to s0, minibatch standard deviation (groups of up to 4), a 3x3 conv and two
linear layers to a logit.

Simplifications against the reference code (stylegan2-ada-pytorch), said here so nobody is
surprised: upsampling and downsampling are bilinear / average pooling instead of the FIR-filtered
transposed convolution; no class-conditional variant (a caption's code, nets/text.py, joins z at
the mapping network's input and D by projection). Path-length regularisation is the GAN recipe's
(loss.pl_weight), through `ws` and `synthesis`. Noise is random in
training and fixed (a buffer per layer) in eval mode, so a seed always gives the same image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.nets.common import output_activation
from ganforge.nets.registry import images_only, register_D, register_G, unconditional
from ganforge.nets.text import project_code

LRELU_GAIN = math.sqrt(2)


def base_and_blocks(resolution: int) -> tuple[int, int]:
    """(s0, doublings): resolution = s0 * 2**doublings with s0 in {4, 7}."""
    s, n = resolution, 0
    while s % 2 == 0 and s > 4:
        s, n = s // 2, n + 1
    if s not in (4, 7):
        raise ValueError(f"stylegan does not support resolution {resolution} (4 or 7 times a power of 2)")
    return s, n


class EqualLinear(nn.Module):
    """Linear layer with the equalised learning rate: weights drawn N(0, 1) / lr_mul and scaled by
    lr_mul / sqrt(fan_in) at run time, so every layer learns at the same pace under Adam."""

    def __init__(self, in_f: int, out_f: int, bias_init: float = 0.0, lr_mul: float = 1.0, activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_f, in_f) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_f,), float(bias_init)))
        self.scale, self.lr_mul, self.activate = lr_mul / math.sqrt(in_f), lr_mul, activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(out, 0.2) * LRELU_GAIN if self.activate else out


class EqualConv2d(nn.Module):
    def __init__(self, in_c: int, out_c: int, k: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_c, in_c, k, k))
        self.bias = nn.Parameter(torch.zeros(out_c)) if bias else None
        self.scale, self.pad = 1 / math.sqrt(in_c * k * k), k // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.pad)


class MappingNetwork(nn.Module):
    def __init__(self, z_dim: int, w_dim: int, depth: int = 8, lr_mul: float = 0.01):
        super().__init__()
        dims = [z_dim] + [w_dim] * depth
        self.net = nn.Sequential(*[EqualLinear(a, b, lr_mul=lr_mul, activate=True) for a, b in zip(dims, dims[1:])])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)  # normalise the second moment
        return self.net(z)


class ModulatedConv2d(nn.Module):
    """A convolution whose input channels are scaled by a style s = A(w) per sample, and, with
    `demodulate`, whose output channels are rescaled to unit expected variance (StyleGAN2 eq. 1-3).

    Computed on the activations rather than the weights: x * s, one convolution with the shared
    weight for the whole batch, then each output channel times its demodulation coefficient. That
    is the same linear map as convolving each sample with its own modulated weight (the tests
    compare the two), and the reference code's choice in training: one ordinary convolution
    instead of a grouped one with a group per sample, which is slower on CPUs and cannot be
    exported to ONNX with a free batch size."""

    def __init__(self, in_c: int, out_c: int, k: int, w_dim: int, demodulate: bool = True, up: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_c, in_c, k, k))
        self.affine = EqualLinear(w_dim, in_c, bias_init=1.0)  # styles start at 1
        self.scale, self.pad, self.demodulate, self.up = 1 / math.sqrt(in_c * k * k), k // 2, demodulate, up

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.affine(w)  # [N, in]
        weight = self.weight * self.scale  # [out, in, k, k]
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        out = F.conv2d(x * s[:, :, None, None].to(x.dtype), weight.to(x.dtype), padding=self.pad)
        if self.demodulate:  # 1 / ||w'|| per (sample, output channel), w' = weight * s
            d = torch.rsqrt(s.pow(2) @ weight.pow(2).sum(dim=(2, 3)).t() + 1e-8)  # [N, out]
            out = out * d[:, :, None, None].to(out.dtype)
        return out


class StyleLayer(nn.Module):
    """Modulated conv, noise, bias, leaky ReLU."""

    def __init__(self, in_c: int, out_c: int, w_dim: int, size: int, up: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_c, out_c, 3, w_dim, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(1, 1, size, size))
        self.bias = nn.Parameter(torch.zeros(out_c))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = self.conv(x, w)
        noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device) if self.training else self.noise_const
        x = x + noise * self.noise_strength + self.bias[None, :, None, None]
        return F.leaky_relu(x, 0.2) * LRELU_GAIN


class ToRGB(nn.Module):
    def __init__(self, in_c: int, out_c: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_c, out_c, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(out_c))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


class StyleGANGenerator(nn.Module):
    def __init__(self, z_dim: int, resolution: int, channels: int, width: int = 64, w_dim: int | None = None,
                 mapping_depth: int = 8, mixing: float = 0.9, out_act: str = "tanh", max_channels: int | None = None,
                 code_dim: int = 0):
        super().__init__()
        s0, n_up = base_and_blocks(resolution)
        w_dim = w_dim or max(z_dim, 4 * width)
        cap = max_channels or 8 * width
        ch = [min(width * 2 ** (n_up - i), cap) for i in range(n_up + 1)]  # per size, s0 .. resolution
        self.z_dim, self.w_dim, self.mixing = z_dim, w_dim, mixing
        # a condition's code (a caption's, nets/text.py) joins z at the mapping network's input, each
        # normalised on its own (as StyleGAN2-ADA does with its class embedding)
        self.mapping = MappingNetwork(z_dim + code_dim, w_dim, mapping_depth)
        self.const = nn.Parameter(torch.randn(1, ch[0], s0, s0))
        self.layers = nn.ModuleList([StyleLayer(ch[0], ch[0], w_dim, s0)])
        self.to_rgb = nn.ModuleList([ToRGB(ch[0], channels, w_dim)])
        size = s0
        for c_in, c_out in zip(ch[:-1], ch[1:]):
            size *= 2
            self.layers.extend([StyleLayer(c_in, c_out, w_dim, size, up=True), StyleLayer(c_out, c_out, w_dim, size)])
            self.to_rgb.append(ToRGB(c_out, channels, w_dim))
        self.num_ws = len(self.layers) + 1  # each conv layer, and the last ToRGB
        self.out = output_activation(out_act)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def _map(self, z: torch.Tensor, code: torch.Tensor | None) -> torch.Tensor:
        if code is None:
            return self.mapping(z)
        code = code.to(z.dtype)
        z = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
        return self.mapping(torch.cat([z, code * torch.rsqrt(code.pow(2).mean(1, keepdim=True) + 1e-8)], 1))

    def ws(self, z: torch.Tensor, update_avg: bool = True, code: torch.Tensor | None = None) -> torch.Tensor:
        """[N, num_ws, w_dim]: w for every layer; in training, style mixing (a second z, the same
        condition) and (unless update_avg=False, as for the path-length batch) the running mean of w."""
        w = self._map(z, code)
        if self.training and update_avg:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().mean(0).to(self.w_avg), 1 - 0.995)
        ws = w[:, None].repeat(1, self.num_ws, 1)
        if self.training and self.mixing > 0 and torch.rand(()) < self.mixing:
            cut = int(torch.randint(1, self.num_ws, ()))
            ws[:, cut:] = self._map(torch.randn_like(z), code)[:, None]
        return ws

    def truncate(self, ws: torch.Tensor, psi: float) -> torch.Tensor:
        """Truncation toward the mean w: w_avg + psi (w - w_avg)."""
        return self.w_avg.lerp(ws, psi)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        x = self.layers[0](x, ws[:, 0])
        rgb = self.to_rgb[0](x, ws[:, 1])
        for i, to_rgb in enumerate(self.to_rgb[1:]):
            x = self.layers[1 + 2 * i](x, ws[:, 1 + 2 * i])
            x = self.layers[2 + 2 * i](x, ws[:, 2 + 2 * i])
            rgb = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False) + to_rgb(x, ws[:, 3 + 2 * i])
        return self.out(rgb)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, code: torch.Tensor | None = None) -> torch.Tensor:
        return self.synthesis(self.ws(z, code=code))


class ResBlock(nn.Module):
    def __init__(self, in_c: int, out_c: int):
        super().__init__()
        self.conv1, self.conv2 = EqualConv2d(in_c, in_c, 3), EqualConv2d(in_c, out_c, 3)
        self.skip = EqualConv2d(in_c, out_c, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv1(x), 0.2) * LRELU_GAIN
        y = F.avg_pool2d(F.leaky_relu(self.conv2(y), 0.2) * LRELU_GAIN, 2)
        return (y + F.avg_pool2d(self.skip(x), 2)) / math.sqrt(2)


def minibatch_std(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    """One more feature map: the standard deviation of each feature over a group of samples,
    averaged (Karras et al. 2018), so D can see how varied a batch is."""
    n, c, h, w = x.shape
    g = min(group, n)
    while n % g:
        g -= 1
    y = x.reshape(g, n // g, c, h, w)
    y = (y - y.mean(0)).pow(2).mean(0).add(1e-8).sqrt().mean(dim=(1, 2, 3))  # [n / g]
    y = y.reshape(1, n // g, 1, 1, 1).expand(g, -1, 1, h, w).reshape(n, 1, h, w)
    return torch.cat([x, y], 1)


class StyleGANDiscriminator(nn.Module):
    mixes_batch = True  # minibatch standard deviation: a sample's logit depends on its group

    def __init__(self, resolution: int, channels: int, width: int = 64, max_channels: int | None = None,
                 code_dim: int = 0):
        super().__init__()
        s0, n_down = base_and_blocks(resolution)
        cap = max_channels or 8 * width
        ch = [min(width * 2 ** i, cap) for i in range(n_down + 1)]  # full size .. s0
        self.from_rgb = EqualConv2d(channels, ch[0], 1)
        self.blocks = nn.Sequential(*[ResBlock(a, b) for a, b in zip(ch[:-1], ch[1:])])
        self.conv = EqualConv2d(ch[-1] + 1, ch[-1], 3)
        self.fc = EqualLinear(ch[-1] * s0 * s0, ch[-1], activate=True)
        self.out = EqualLinear(ch[-1], 1)
        if code_dim:  # a condition's code (a caption's) by projection onto the last features
            self.project = project_code(code_dim, ch[-1])

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None, code: torch.Tensor | None = None) -> torch.Tensor:
        h = self.blocks(F.leaky_relu(self.from_rgb(x), 0.2) * LRELU_GAIN)
        h = F.leaky_relu(self.conv(minibatch_std(h)), 0.2) * LRELU_GAIN
        h = self.fc(h.flatten(1))
        logit = self.out(h).squeeze(1)
        return logit if code is None else logit + (self.project(code.to(h.dtype)) * h).sum(1)


def _check(shape: tuple, cfg) -> str | None:
    problem = images_only("stylegan")(shape, cfg)
    if problem:
        return problem
    try:
        base_and_blocks(shape[1])
    except ValueError:
        return f"stylegan needs data.resolution = 4 or 7 times a power of 2 (e.g. 28 or 32), not {shape[1]}"
    return None


@register_G("stylegan", check=_check, styles=True)
def _stylegan_G(*, z_dim, c_dim, sample_shape, width, out, code_dim: int = 0):
    unconditional("stylegan", c_dim)
    return StyleGANGenerator(z_dim, sample_shape[1], sample_shape[0], width, out_act=out, code_dim=code_dim)


@register_D("stylegan", check=_check)
def _stylegan_D(*, c_dim, sample_shape, width, code_dim: int = 0):
    unconditional("stylegan", c_dim)
    return StyleGANDiscriminator(sample_shape[1], sample_shape[0], width, code_dim=code_dim)
