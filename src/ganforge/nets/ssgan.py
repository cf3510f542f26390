"""The semi-supervised GAN's MNIST nets (Salimans et al. 2016), as the authors build them
(`openai/improved-gan`, mnist_svhn_cifar10/train_mnist_feature_matching.py and its nn.py):
fully connected, on the flattened image in [0, 1].

- D: Gaussian noise (std 0.3) on the input, then five weight-normalised dense layers of model.width,
  /2, /4, /4, /4 units (1000, 500, 250, 250, 250 at the preset's width 1000) with ReLU, each
  followed by Gaussian noise (std 0.5), and a weight-normalised dense layer to K logits, one per
  class (the fake class's logit is fixed at 0, so it has no weights). `features` is the last hidden
  layer's output (before its noise): what G's feature matching compares.
- G: z -> dense (model.width / 2 = 500) -> batch norm (a bias, no scale) -> softplus, twice, ->
  a dense layer with weight normalisation (a trained scale per output) -> sigmoid.

Weight normalisation (Salimans & Kingma 2016) as the reference's DenseLayer: W = g v / ||v|| per
output unit, v ~ N(0, 0.1^2); the hidden layers' scales g are not trained (buffers here), set with
the biases by a data-dependent initialisation (`WNLinear.init`: each unit's pre-activation on a
batch of real images made zero-mean and unit-variance), the last layer's scale is trained. The
noise is on in training mode only; a classifier in eval mode is deterministic, as the reference's
test function is.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.nets.registry import register_D, register_G

INPUT_NOISE, HIDDEN_NOISE = 0.3, 0.5  # the reference's Gaussian noise std on D's input and hidden layers
THETA_STD = 0.1  # the reference's init of v: Normal(0.1)
BN_EPS = 1e-6  # the reference's batch norm: sqrt(1e-6 + var)


class GaussianNoise(nn.Module):
    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sigma * torch.randn_like(x) if self.training and self.sigma else x


class WNLinear(nn.Module):
    """A weight-normalised dense layer: y = x (g v / ||v||)^T + b, the norm per output unit."""

    def __init__(self, n_in: int, n_out: int, train_scale: bool = False):
        super().__init__()
        self.v = nn.Parameter(torch.randn(n_out, n_in) * THETA_STD)
        self.b = nn.Parameter(torch.zeros(n_out))
        g = torch.ones(n_out)
        if train_scale:
            self.g = nn.Parameter(g)
        else:
            self.register_buffer("g", g)

    def weight(self) -> torch.Tensor:
        return self.v * (self.g / self.v.norm(dim=1)).unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight(), self.b)

    @torch.no_grad()
    def init(self, x: torch.Tensor) -> torch.Tensor:
        """Data-dependent initialisation on the batch x: g /= std, b = -mean / std of the
        pre-activations, which returns them standardised (what the next layer is initialised on)."""
        a = F.linear(x, self.weight())
        mean = a.mean(0)
        std = (a - mean).square().mean(0).sqrt()
        self.g.div_(std)
        self.b.copy_(-mean / std)
        return (a - mean) / std


def _hidden_sizes(width: int) -> list[int]:
    return [width, width // 2, width // 4, width // 4, width // 4]


class SemiSupervisedD(nn.Module):
    """x [N, C, H, W] -> K class logits [N, K]; `features(x)`: the last hidden layer."""

    def __init__(self, sample_shape: tuple[int, ...], width: int, num_classes: int):
        super().__init__()
        sizes = [math.prod(sample_shape), *_hidden_sizes(width)]
        self.hidden = nn.ModuleList(WNLinear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.out = WNLinear(sizes[-1], num_classes, train_scale=True)
        self.input_noise, self.hidden_noise = GaussianNoise(INPUT_NOISE), GaussianNoise(HIDDEN_NOISE)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input_noise(x.flatten(1))
        for i, layer in enumerate(self.hidden):
            h = F.relu(layer(self.hidden_noise(h) if i else h))
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden_noise(self.features(x)))

    @torch.no_grad()
    def data_init(self, x: torch.Tensor) -> None:
        """The reference's initialisation pass: every layer in turn on real images, noise on."""
        h = self.input_noise(x.flatten(1))
        for i, layer in enumerate(self.hidden):
            h = F.relu(layer.init(self.hidden_noise(h) if i else h))
        self.out.init(self.hidden_noise(h))


class SemiSupervisedG(nn.Module):
    """z -> images in [0, 1] [N, C, H, W]."""

    def __init__(self, z_dim: int, sample_shape: tuple[int, ...], width: int):
        super().__init__()
        hidden = width // 2
        self.sample_shape = tuple(sample_shape)
        layers: list[nn.Module] = []
        for n_in in (z_dim, hidden):
            linear = nn.Linear(n_in, hidden, bias=False)  # the batch norm's bias replaces it
            nn.init.xavier_uniform_(linear.weight)  # Lasagne's default (Glorot uniform)
            layers += [linear, nn.BatchNorm1d(hidden, eps=BN_EPS, affine=False), _Bias(hidden), nn.Softplus()]
        self.body = nn.Sequential(*layers)
        self.out = WNLinear(hidden, math.prod(sample_shape), train_scale=True)
        nn.init.xavier_uniform_(self.out.v)  # l2normalize(DenseLayer): Glorot-uniform directions, scale 1
        # The reference's l2normalize adds 1e-6 under the square root; at these norms it changes nothing.

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(self.body(z))).reshape(-1, *self.sample_shape)


class _Bias(nn.Module):
    def __init__(self, n: int):
        super().__init__()
        self.b = nn.Parameter(torch.zeros(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b


def _only_ssgan(shape: tuple, cfg) -> str | None:
    if cfg.train.recipe != "ssgan":
        return (f"model.arch=ssgan nets are the semi-supervised GAN's (D gives class logits): use them with "
                f"train.recipe=ssgan (not {cfg.train.recipe})")
    if len(shape) != 3:
        return f"model.arch=ssgan works on images; {cfg.data.name} data is {shape[0]}-D points"
    if cfg.data.range != "unit":
        return "model.arch=ssgan's G ends in a sigmoid (images in [0, 1], as the reference): set data.range=unit"
    return None


@register_G("ssgan", check=_only_ssgan)
def ssgan_G(*, z_dim: int, sample_shape: tuple[int, ...], width: int) -> nn.Module:
    return SemiSupervisedG(z_dim, sample_shape, width)


@register_D("ssgan", check=_only_ssgan)
def ssgan_D(*, sample_shape: tuple[int, ...], width: int, num_classes: int) -> nn.Module:
    return SemiSupervisedD(sample_shape, width, num_classes)
