"""GAN objectives on discriminator logits, each registered by name with the statistics it reports.

Working on logits (softplus) instead of Sigmoid + BCELoss is the numerically stable form of the
same losses: BCE(sigmoid(l), 1) = softplus(-l) and BCE(sigmoid(l), 0) = softplus(l).

- D (both objectives): -log D(x) - log(1 - D(G(z)))          (Goodfellow et al. 2014, eq. 1)
- G, minimax:          log(1 - D(G(z)))  = -softplus(l_fake)  (the paper's saturating form)
- G, ns:              -log D(G(z))       =  softplus(-l_fake) (the paper's practical suggestion)

A `Loss` is a pair of pure functions plus what its numbers mean: `stats` turns the logits of a D
update into named scalars (for a logistic D, the mean probabilities D(x) and D(G(z))), `labels`
says how the progress line names them, and `plots` how the report draws them. Adding a loss is one
`Loss(...)` entry in `LOSSES` and its test; penalties (gradient penalty, R1) belong here too, as
pure functions that a recipe schedules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ganforge.reporting import StatPlot

Tensor = torch.Tensor


@dataclass(frozen=True)
class Loss:
    name: str
    d: Callable[[Tensor, Tensor], Tensor]  # (logits_real, logits_fake) -> loss_D
    g: Callable[[Tensor], Tensor]  # logits_fake -> loss_G
    stats: Callable[[Tensor, Tensor], dict[str, Tensor]]  # (logits_real, logits_fake) -> detached scalars
    labels: dict[str, str]  # stat key -> how the progress line names it
    plots: tuple[StatPlot, ...] = ()


def d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """The logistic D objective: BCE on real (target 1) and fake (target 0) logits."""
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def g_ns(logits_fake: Tensor) -> Tensor:
    return F.softplus(-logits_fake).mean()


def g_minimax(logits_fake: Tensor) -> Tensor:
    return -F.softplus(logits_fake).mean()


def sigmoid_stats(logits_real: Tensor, logits_fake: Tensor) -> dict[str, Tensor]:
    """Mean D(x) and D(G(z)) as probabilities: both tend to 1/2 at the equilibrium."""
    return {"D_x": torch.sigmoid(logits_real.detach()).mean(), "D_G_z": torch.sigmoid(logits_fake.detach()).mean()}


_SIGMOID_LABELS = {"D_x": "D(x)", "D_G_z": "D(G(z))"}
_SIGMOID_PLOTS = (StatPlot("d_outputs.png", ("D_x", "D_G_z"), "mean D output", _SIGMOID_LABELS, ylim=(0.0, 1.0),
                           hline=(0.5, "equilibrium 1/2")),)

LOSSES: dict[str, Loss] = {loss.name: loss for loss in (
    Loss("ns", d_loss, g_ns, sigmoid_stats, _SIGMOID_LABELS, _SIGMOID_PLOTS),
    Loss("minimax", d_loss, g_minimax, sigmoid_stats, _SIGMOID_LABELS, _SIGMOID_PLOTS),
)}


def get_loss(name: str) -> Loss:
    if name not in LOSSES:
        raise ValueError(f"unknown loss '{name}' (choose from {', '.join(LOSSES)})")
    return LOSSES[name]


def g_loss(kind: str, logits_fake: Tensor) -> Tensor:
    """The generator objective of the loss named `kind`."""
    return get_loss(kind).g(logits_fake)
