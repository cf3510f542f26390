"""Plain-PyTorch reference loops for bench/throughput.py: the DCGAN nets and the family presets.

Every reference runs on plain nn modules copied here with the preset's layer shapes (ganforge's
28 px DCGAN nets: G z -> ConvT 7x7 -> 2 x ConvT 4x4 stride 2, width 64; D the mirror), not on
ganforge's own nets; `parity_problems` checks the constants and the parameter shapes against the
preset before anything is timed. DCGAN_G / DCGAN_D are also the --model dcgan reference's nets
(moved here from throughput.py; DCGAN_D's defaults build the same module as before). The families
are written the way their public code writes them:

wgan_gp      caogang/wgan-gp (the PyTorch port of igul222/improved_wgan_training): each critic step
             backwards -D(x).mean() and D(G(z)).mean() one term at a time (backward(mone) /
             backward(one)), G(z) without a graph, then the gradient penalty as its own term:
             interpolates made requires_grad, torch.autograd.grad(create_graph=True) and
             ((||grad||_2 - 1) ** 2).mean() * lambda; after n_critic = 5 critic steps one G step with
             D's requires_grad off. Adam 1e-4, betas (0, 0.9), batch 64, a critic without batch norm.
wgan_clip    martinarjovsky/WassersteinGAN: the same critic terms (D with batch norm), RMSprop 5e-5 and
             p.data.clamp_(-0.01, 0.01) on every critic parameter after each critic step. The paper
             code's 100 critic steps during the first 25 G steps are left out: the preset keeps
             n_dis = 5 throughout, and both sides must do the same work per counted step.
sngan_hinge  pfnet-research/sngan_projection and mimicry: torch.nn.utils.spectral_norm on every D conv
             (one power iteration per training forward), no batch norm in D, the hinge loss
             relu(1 - D(x)).mean() + relu(1 + D(G(z))).mean() in one backward, G loss -D(G(z)).mean(),
             z_dim 128; G's moving average (the preset's 10 kimg half-life) after each G step with
             the per-parameter lerp loop of StyleGAN2-ADA's training_loop.py.
lsgan        PyTorch-GAN's lsgan.py: nn.MSELoss to 1 / 0 targets (halved, as the paper's eq. 2 and the
             preset), D without an output activation.
cgan         znxlwm's cDCGAN: the one-hot row onehot[y] beside z for G, the one-hot maps fill[y] as
             ten extra D input channels; Sigmoid + BCELoss as pytorch/examples dcgan.

The n_dis = 1 families take pytorch/examples dcgan's shape: one G forward per step, D on the real
batch and on the detached fake, then the G step through that same fake, as the presets do
(train.reuse_fake = true). Where a family's code draws a second G batch for the G step (mimicry,
znxlwm), the reference reuses the first like the preset, so both sides generate as many samples.
Their G step leaves D's parameters trainable (gradients computed, not applied), as that code does;
ganforge freezes D there.

One counted step is one D update on one real batch (every n_dis-th step also a G update), as one
ganforge train_step; samples/s are real images consumed by D per second on both sides.
"""

import copy
import functools
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from bench.common import MnistDataset, load_labels
from ganforge.nets import build_D, build_G

ONE, MONE = torch.tensor(1.0), torch.tensor(-1.0)
CLASSES = 10
ONEHOT = torch.eye(CLASSES)  # znxlwm: onehot[y] for G
FILL = ONEHOT[:, :, None, None].expand(CLASSES, CLASSES, 28, 28)  # znxlwm: fill[y] for D


class DCGAN_G(nn.Module):  # pytorch/examples dcgan, adapted to 28 px as ganforge's 28 px model
    def __init__(self, nz=100, ngf=64):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 2, 7, 1, 0, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, 1, 4, 2, 1), nn.Tanh())

    def forward(self, x):
        return self.main(x)


class DCGAN_D(nn.Module):
    """pytorch/examples dcgan's D at 28 px. norm="none" drops the batch norm (the second conv then
    keeps its bias); sn wraps every conv in torch.nn.utils.spectral_norm; sigmoid ends in nn.Sigmoid
    for BCELoss. Returns [N]."""

    def __init__(self, nc=1, ndf=64, norm="batch", sn=False, sigmoid=True):
        super().__init__()
        wrap = nn.utils.spectral_norm if sn else (lambda conv: conv)
        bn = [nn.BatchNorm2d(ndf * 2)] if norm == "batch" else []
        self.main = nn.Sequential(
            wrap(nn.Conv2d(nc, ndf, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True),
            wrap(nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=not bn)), *bn, nn.LeakyReLU(0.2, inplace=True),
            wrap(nn.Conv2d(ndf * 2, 1, 7, 1, 0)), *([nn.Sigmoid()] if sigmoid else []))

    def forward(self, x):
        return self.main(x).view(-1, 1).squeeze(1)


class LabelledMnist(MnistDataset):
    def __init__(self, images_u8, labels_u8):
        super().__init__(images_u8)
        self.labels = labels_u8

    def __getitem__(self, i):
        return super().__getitem__(i), int(self.labels[i])


# --- one reference run ----------------------------------------------------------------------------

class Run:
    """The nets and optimizers of one reference run, and the inputs as the family's code builds them."""

    def __init__(self, family: "Family"):
        f = self.f = family
        self.G = DCGAN_G(nz=f.z_dim + f.classes)
        self.D = DCGAN_D(1 + f.classes, norm=f.d_norm, sn=f.sn, sigmoid=f.sigmoid)
        self.opt_g, self.opt_d = f.optimizer(self.G.parameters()), f.optimizer(self.D.parameters())
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if f.ema_kimg else None
        self.d_updates = 0

    def noise(self, b, y=None):
        z = torch.randn(b, self.f.z_dim)
        if self.f.classes:
            z = torch.cat([z, ONEHOT[y]], 1)
        return z[:, :, None, None]

    def d(self, x, y=None):
        return self.D(torch.cat([x, FILL[y]], 1) if self.f.classes else x)

    @torch.no_grad()
    def update_ema(self, batch):  # StyleGAN2-ADA training_loop.py
        if self.G_ema is None:
            return
        beta = 0.5 ** (batch / (self.f.ema_kimg * 1000))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)


# --- WGAN: n_critic critic steps, then one G step ------------------------------------------------

def calc_gradient_penalty(netD, real_data, fake_data, lam):  # caogang/wgan-gp
    alpha = torch.rand(real_data.size(0), 1, 1, 1).expand(real_data.size())
    interpolates = (alpha * real_data + (1 - alpha) * fake_data).requires_grad_(True)
    disc_interpolates = netD(interpolates)
    gradients = torch.autograd.grad(outputs=disc_interpolates, inputs=interpolates,
                                    grad_outputs=torch.ones(disc_interpolates.size()),
                                    create_graph=True, retain_graph=True, only_inputs=True)[0]
    gradients = gradients.view(gradients.size(0), -1)
    return ((gradients.norm(2, dim=1) - 1) ** 2).mean() * lam


def critic_terms(r, real):
    """netD.zero_grad(); D_real.backward(mone); fake from volatile noise; D_fake.backward(one)."""
    r.D.zero_grad()
    r.D(real).mean().backward(MONE)
    with torch.no_grad():
        fake = r.G(r.noise(real.size(0)))
    r.D(fake).mean().backward(ONE)
    return fake


def wgan_gp_critic(r, real):
    fake = critic_terms(r, real)
    calc_gradient_penalty(r.D, real, fake, r.f.gp_weight).backward()
    r.opt_d.step()


def wgan_clip_critic(r, real):
    critic_terms(r, real)
    r.opt_d.step()
    for p in r.D.parameters():
        p.data.clamp_(-r.f.clip, r.f.clip)


def wgan_generator(r, b):
    for p in r.D.parameters():
        p.requires_grad = False
    r.G.zero_grad()
    r.D(r.G(r.noise(b))).mean().backward(MONE)
    r.opt_g.step()
    for p in r.D.parameters():
        p.requires_grad = True


def n_critic(critic):
    """Algorithm 1's loop, one real batch per call: a critic step, and after every n_critic-th a G step."""
    def step(r, real, y):
        critic(r, real)
        r.d_updates += 1
        if r.d_updates % r.f.n_dis == 0:
            wgan_generator(r, real.size(0))
    return step


# --- n_dis = 1: pytorch/examples dcgan's shape with the family's loss -------------------------------

def one_fake(d_loss, g_loss):
    def step(r, real, y):
        fake = r.G(r.noise(real.size(0), y))
        r.D.zero_grad()
        d_loss(r.d(real, y), r.d(fake.detach(), y)).backward()
        r.opt_d.step()
        r.G.zero_grad()
        g_loss(r.d(fake, y)).backward()
        r.opt_g.step()
        r.update_ema(real.size(0))
    return step


def hinge_d(d_real, d_fake):
    return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()


def _against(criterion, out, target, scale=1.0):
    return scale * criterion(out, torch.full_like(out, target))


mse, bce = nn.MSELoss(), nn.BCELoss()
STEPS = {
    "wgan_gp": n_critic(wgan_gp_critic),
    "wgan_clip": n_critic(wgan_clip_critic),
    "sngan_hinge": one_fake(hinge_d, lambda d_fake: -d_fake.mean()),
    "lsgan": one_fake(lambda d_real, d_fake: _against(mse, d_real, 1.0, 0.5) + _against(mse, d_fake, 0.0, 0.5),
                      lambda d_fake: _against(mse, d_fake, 1.0, 0.5)),
    "cgan": one_fake(lambda d_real, d_fake: _against(bce, d_real, 1.0) + _against(bce, d_fake, 0.0),
                     lambda d_fake: _against(bce, d_fake, 1.0)),
}


# --- the families and their presets ---------------------------------------------------------------

@dataclass(frozen=True)
class Family:
    preset: str
    batch: int
    loss: str  # the preset's loss.kind
    optim: str = "adam"
    lr: float = 2e-4
    betas: tuple = (0.5, 0.999)
    z_dim: int = 100
    n_dis: int = 1
    d_norm: str = "batch"
    sn: bool = False
    sigmoid: bool = False  # Sigmoid + BCELoss (ganforge: softplus on logits, the same loss)
    classes: int = 0
    ema_kimg: float = 0.0
    gp_weight: float = 0.0
    clip: float = 0.0

    def optimizer(self, params):  # torch's defaults otherwise (no fused / foreach flags), as the papers' code
        if self.optim == "rmsprop":
            return torch.optim.RMSprop(params, lr=self.lr)
        return torch.optim.Adam(params, lr=self.lr, betas=self.betas)


FAMILIES = {
    "wgan_gp": Family("mnist_wgan_gp.yaml", 64, "wasserstein", lr=1e-4, betas=(0.0, 0.9), n_dis=5, d_norm="none",
                      gp_weight=10.0),
    "wgan_clip": Family("mnist_wgan_clip.yaml", 64, "wasserstein", optim="rmsprop", lr=5e-5, n_dis=5, clip=0.01),
    "sngan_hinge": Family("fashion_sngan_hinge.yaml", 128, "hinge", z_dim=128, d_norm="none", sn=True,
                          ema_kimg=10.0),
    "lsgan": Family("mnist_lsgan.yaml", 128, "lsgan"),
    "cgan": Family("mnist_cgan.yaml", 128, "ns", sigmoid=True, classes=CLASSES),
}


def reference(name: str, images, data_name: str) -> tuple[DataLoader, Callable]:
    """(loader, step): a DataLoader over a per-sample Dataset and one counted step on its batches."""
    f = FAMILIES[name]
    dataset = LabelledMnist(images, load_labels(data_name)) if f.classes else MnistDataset(images)
    loader = DataLoader(dataset, batch_size=f.batch, shuffle=True, drop_last=True)
    run, step = Run(f), STEPS[name]
    if f.classes:
        return loader, lambda batch: step(run, *batch)
    return loader, lambda real: step(run, real, None)


def parity_problems(name: str, cfg) -> list[str]:
    """Where the reference's constants or nets differ from the preset `cfg` (ganforge Config)."""
    f = FAMILIES[name]
    want = {"train.batch_size": f.batch, "loss.kind": f.loss, "optim.kind": f.optim, "optim.lr_G": f.lr,
            "optim.lr_D": f.lr, "model.z_dim": f.z_dim, "train.n_dis": f.n_dis, "model.d_norm": f.d_norm,
            "model.d_spectral_norm": f.sn, "model.g_spectral_norm": False, "model.width": 64,
            "model.conditional": "cgan" if f.classes else "none", "train.ema_halflife_kimg": f.ema_kimg,
            "loss.gp_weight": f.gp_weight, "loss.clip": f.clip, "loss.r1_gamma": 0.0, "loss.d_scale": 1.0,
            "train.reuse_fake": f.n_dis == 1, "train.augment": "", "train.pack": 1, "train.update": "alternating"}
    if f.optim == "adam":
        want["optim.betas"] = list(f.betas)
    problems = [f"{k}: preset {got!r}, reference {v!r}" for k, v in want.items()
                if (got := functools.reduce(getattr, k.split("."), cfg)) != v]
    run, shape = Run(f), (1, 28, 28)
    for what, ours, theirs in (("G", run.G, build_G(cfg, shape)), ("D", run.D, build_D(cfg, shape))):
        if _signature(ours) != _signature(theirs):
            problems.append(f"{what} nets differ: reference {_signature(ours)}, ganforge {_signature(theirs)}")
    return problems


def _signature(net):
    """Sorted parameter shapes and the batch-norm count: the same for the same layers, whichever
    spectral-norm API (weight_orig or parametrizations.weight.original) holds the weight."""
    shapes = sorted(tuple(p.shape) for p in net.parameters())
    return shapes, sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())
