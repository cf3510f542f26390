"""Small pieces shared by the net families."""

import torch
from torch import nn


def output_activation(kind: str) -> nn.Module:
    """tanh for images in [-1, 1], sigmoid for images in [0, 1], identity for unbounded points."""
    return {"tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "none": nn.Identity()}[kind]


class Dropout(nn.Module):
    """Inverted dropout, the same function as nn.Dropout, with the mask drawn by torch.rand.

    On CPU, nn.Dropout's bernoulli_ costs about twice what a uniform draw and a compare do, and in
    the textbook MLP GAN the masks were 20 % of a float32 step and 37 % of a bf16 step (measured
    with torch.profiler, bench notes in docs/RESULTS.md).
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape, device=x.device) >= self.p
        return x * keep * (1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


def one_hot(c: torch.Tensor, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    """Class indices [N] -> one-hot rows [N, K] in `like`'s dtype and device."""
    return torch.nn.functional.one_hot(c.long(), num_classes).to(like.dtype)


class ConditionalHead(nn.Module):
    """What a conditional D adds to its unconditional logit, from its last features h [N, F]:

    cgan        nothing here (the class is fed with the input, Mirza & Osindero 2014)
    projection  + <embed(c), h>  (Miyato & Koyama 2018)
    acgan       K class logits beside the real / fake logit -> [N, 1 + K] (Odena et al. 2017)
    """

    def __init__(self, kind: str, num_classes: int, feature_dim: int):
        super().__init__()
        self.kind = kind
        if kind == "projection":
            self.embed = nn.Embedding(num_classes, feature_dim)
        elif kind == "acgan":
            self.aux = nn.Linear(feature_dim, num_classes)

    def forward(self, logit: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.kind == "projection":
            return logit + (self.embed(c) * h).sum(1)
        if self.kind == "acgan":
            return torch.cat([logit[:, None], self.aux(h)], 1)
        return logit
