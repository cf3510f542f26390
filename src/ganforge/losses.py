"""GAN objectives on discriminator logits, each registered by name with the statistics it reports.

Working on logits (softplus) instead of Sigmoid + BCELoss is the numerically stable form of the
same losses: BCE(sigmoid(l), 1) = softplus(-l) and BCE(sigmoid(l), 0) = softplus(l).

- D (both objectives): -log D(x) - log(1 - D(G(z)))          (Goodfellow et al. 2014, eq. 1)
- G, minimax:          log(1 - D(G(z)))  = -softplus(l_fake)  (the paper's saturating form)
- G, ns:              -log D(G(z))       =  softplus(-l_fake) (the paper's practical suggestion)
- lsgan, hinge, wasserstein: see their functions below; gradient_penalty and r1_penalty are the
  regularisers, pure functions that the recipe schedules (loss.gp_weight, loss.r1_gamma / r1_every).

A `Loss` is a pair of pure functions plus what its numbers mean: `stats` turns the logits of a D
update into named scalars (for a logistic D, the mean probabilities D(x) and D(G(z))), `labels`
says how the progress line names them, and `plots` how the report draws them. Adding a loss is one
`Loss(...)` entry in `LOSSES` and its test; penalties (gradient penalty, R1) belong here too, as
pure functions that a recipe schedules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ganforge.core.registry import Registry
from ganforge.core.stats import StatPlot

Tensor = torch.Tensor


@dataclass(frozen=True)
class Loss:
    name: str
    d: Callable[[Tensor, Tensor], Tensor]  # (logits_real, logits_fake) -> loss_D
    g: Callable[[Tensor], Tensor]  # logits_fake -> loss_G
    stats: Callable[[Tensor, Tensor], dict[str, Tensor]]  # (logits_real, logits_fake) -> detached scalars
    labels: dict[str, str]  # stat key -> how the progress line names it
    plots: tuple[StatPlot, ...] = ()
    # D's decision boundary: outputs above it mean "real". D's accuracy against it is how the health
    # checks see a D that wins outright. None for the Wasserstein critic, whose scores have no
    # boundary (a critic is meant to separate the two as far as its Lipschitz bound allows).
    boundary: float | None = None

    def accuracy(self, logits_real: Tensor, logits_fake: Tensor) -> Tensor | None:
        """The fraction of real and generated samples that D puts on the right side of its boundary."""
        if self.boundary is None:
            return None
        right = torch.cat([logits_real.detach() > self.boundary, logits_fake.detach() <= self.boundary])
        return right.float().mean()


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
_D_OUTPUTS = "what D says of real and generated batches"
_SIGMOID_PLOTS = (StatPlot("d_outputs.png", ("D_x", "D_G_z"), "mean D output", _SIGMOID_LABELS, ylim=(0.0, 1.0),
                           hline=(0.5, "equilibrium 1/2"), caption=_D_OUTPUTS),)

# --- least squares (Mao et al. 2017, "Least Squares GANs", a = 0, b = c = 1) ------------------

def d_lsgan(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """D regresses real samples to 1 and fakes to 0; halved, as in the paper's eq. 2."""
    return 0.5 * ((logits_real - 1) ** 2).mean() + 0.5 * (logits_fake ** 2).mean()


def g_lsgan(logits_fake: Tensor) -> Tensor:
    return 0.5 * ((logits_fake - 1) ** 2).mean()


# --- hinge (Lim & Ye 2017; Miyato et al. 2018, SN-GAN) ---------------------------------------

def d_hinge(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    return F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean()


def g_hinge(logits_fake: Tensor) -> Tensor:
    return -logits_fake.mean()


# --- Wasserstein (Arjovsky et al. 2017): D is a critic and needs a Lipschitz constraint -------

def d_wasserstein(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    return logits_fake.mean() - logits_real.mean()


def g_wasserstein(logits_fake: Tensor) -> Tensor:
    return -logits_fake.mean()


def mean_scores(logits_real: Tensor, logits_fake: Tensor) -> dict[str, Tensor]:
    """Mean raw D outputs on real and generated samples (LSGAN targets 1 and 0; hinge margins +-1)."""
    return {"D_real": logits_real.detach().mean(), "D_fake": logits_fake.detach().mean()}


def critic_stats(logits_real: Tensor, logits_fake: Tensor) -> dict[str, Tensor]:
    """The critic's estimate of the Wasserstein distance, E[D(x)] - E[D(G(z))] (meaningful up to the
    Lipschitz constant; it falls as G improves)."""
    return {"W_estimate": (logits_real.detach().mean() - logits_fake.detach().mean())}


_SCORE_LABELS = {"D_real": "D(x)", "D_fake": "D(G(z))"}

# --- penalties: pure functions a recipe schedules ---------------------------------------------

def gradient_penalty(D, x_real: Tensor, x_fake: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017, eq. 3): E[(||grad D(x_hat)||_2 - 1)^2] at random points
    x_hat on the lines between real and generated samples (without the weight lambda)."""
    eps = torch.rand(len(x_real), *([1] * (x_real.dim() - 1)), generator=generator).to(x_real)
    x_hat = (eps * x_real.detach() + (1 - eps) * x_fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).float().sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def r1_penalty(D, x_real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018): E[||grad D(x)||^2] on real samples (without gamma / 2)."""
    x = x_real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).float().sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


def path_length_penalty(synthesis, ws: Tensor, pl_mean: Tensor, decay: float = 0.01,
                        generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Path-length regularisation (Karras et al. 2020, eq. 4): E[(||J_w^T y||_2 - a)^2], J_w the
    Jacobian of the images with respect to the styles, y ~ N(0, I) / sqrt(H W), and a the running
    mean of the lengths. The length of a sample is sqrt of the mean over its layers of the squared
    norm of its style gradient (as the reference code computes it for per-layer ws [N, L, w_dim]).
    Returns (penalty without its weight, the updated running mean (detached), the batch's mean length)."""
    images = synthesis(ws)
    y = torch.randn(images.shape, generator=generator).to(images) / math.sqrt(images.shape[2] * images.shape[3])
    (grad,) = torch.autograd.grad((images.float() * y).sum(), ws, create_graph=True)
    lengths = grad.float().pow(2).sum(2).mean(1).sqrt()
    new_mean = pl_mean.lerp(lengths.mean().detach(), decay)
    return (lengths - new_mean).pow(2).mean(), new_mean, lengths.mean().detach()


LOSSES: Registry[Loss] = Registry("loss")
for _loss in (
    Loss("ns", d_loss, g_ns, sigmoid_stats, _SIGMOID_LABELS, _SIGMOID_PLOTS, boundary=0.0),
    Loss("minimax", d_loss, g_minimax, sigmoid_stats, _SIGMOID_LABELS, _SIGMOID_PLOTS, boundary=0.0),
    Loss("lsgan", d_lsgan, g_lsgan, mean_scores, _SCORE_LABELS,
         (StatPlot("d_outputs.png", ("D_real", "D_fake"), "mean D output", _SCORE_LABELS,
                   hline=(0.5, "equilibrium 1/2"), caption=_D_OUTPUTS),), boundary=0.5),
    Loss("hinge", d_hinge, g_hinge, mean_scores, _SCORE_LABELS,
         (StatPlot("d_outputs.png", ("D_real", "D_fake"), "mean D output (logit)", _SCORE_LABELS,
                   hline=(0.0, "equilibrium 0"), caption=_D_OUTPUTS),), boundary=0.0),
    Loss("wasserstein", d_wasserstein, g_wasserstein, critic_stats, {"W_estimate": "W"},
         (StatPlot("wasserstein.png", ("W_estimate",), "E[D(x)] - E[D(G(z))]",
                   caption="the critic's estimate of the Wasserstein distance"),)),
):
    LOSSES.add(_loss.name, _loss)


def get_loss(name: str) -> Loss:
    if name not in LOSSES:
        raise ValueError(f"unknown loss '{name}' (choose from {', '.join(LOSSES)})")
    return LOSSES[name]


def g_loss(kind: str, logits_fake: Tensor) -> Tensor:
    """The generator objective of the loss named `kind`."""
    return get_loss(kind).g(logits_fake)
