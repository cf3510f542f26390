"""Small pieces shared by the net families."""

from torch import nn


def output_activation(kind: str) -> nn.Module:
    """tanh for images in [-1, 1], sigmoid for images in [0, 1], identity for unbounded points."""
    return {"tanh": nn.Tanh(), "sigmoid": nn.Sigmoid(), "none": nn.Identity()}[kind]
