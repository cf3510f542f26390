"""GAN objectives as pure functions of discriminator logits.

Working on logits (softplus) instead of Sigmoid + BCELoss is the numerically stable form of the
same losses: BCE(sigmoid(l), 1) = softplus(-l) and BCE(sigmoid(l), 0) = softplus(l).

- D (both objectives): -log D(x) - log(1 - D(G(z)))          (Goodfellow et al. 2014, eq. 1)
- G, minimax:          log(1 - D(G(z)))  = -softplus(l_fake)  (the paper's saturating form)
- G, ns:              -log D(G(z))       =  softplus(-l_fake) (the paper's practical suggestion)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

G_LOSSES = ("ns", "minimax")


def d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def g_loss(kind: str, logits_fake: torch.Tensor) -> torch.Tensor:
    if kind == "ns":
        return F.softplus(-logits_fake).mean()
    if kind == "minimax":
        return -F.softplus(logits_fake).mean()
    raise ValueError(f"unknown generator loss '{kind}' (choose from {', '.join(G_LOSSES)})")
