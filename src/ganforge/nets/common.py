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
