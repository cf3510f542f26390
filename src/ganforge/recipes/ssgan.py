"""The semi-supervised GAN (Salimans et al. 2016, "Improved Techniques for Training GANs"): a
classifier learnt from a few labelled images and many unlabelled ones, with a GAN's help.

D has K logits l_1..l_K, one per class, and the "generated" class K+1 has its logit fixed at 0, so
with Z(x) = sum_k exp l_k(x), D's probability that x is real is Z / (Z + 1). Per step, as the
authors' code does it (`openai/improved-gan`, mnist_svhn_cifar10/train_mnist_feature_matching.py):

    loss_lab = -mean l_y(x_lab) + mean lse(l(x_lab))                    (cross-entropy on the K classes)
    loss_unl = -0.5 mean lse(l(x_unl)) + 0.5 mean softplus(lse(l(x_unl))) + 0.5 mean softplus(lse(l(G(z))))
             = 0.5 [-E log D(x) - E log(1 - D(G(z)))]                   (lse: log-sum-exp over the K logits)
    D:  loss_lab + loss.unlabeled_weight x loss_unl
    G:  mean_j (mean_batch f_j(G(z)) - mean_batch f_j(x_unl2))^2           (feature matching, after D's step)

with f D's last hidden layer (noise on, as in training), x_unl2 a second unlabelled batch from an
order of its own (under torchrun each process matches its own share's means, as batch norm is per
process), and z ~ U(0, 1)^100 in the reference (U(-1, 1) here, model.z_dist=uniform1: G's
first layer is followed by batch norm, which removes the offset and scale). The labelled batch
comes from the labelled images repeated in ever new orders (with 100 labels and batch 100, each
batch holds every labelled image once), as the reference repeats them to fill each epoch.

The classifier is D with averaged weights: a = a + 0.0001 (w - a) after every D update. The
reference starts a at zero and evaluates the raw average, which is a fraction 1 - 0.9999^t of the
weights' scale after t updates (6 % after its first epoch, 0.99999998 after its 300); ganforge
divides by that fraction (Adam's bias correction), which gives every update's weights the same
decaying share from the first step on, and equals the reference's average once t is large.

With optim.kind=adam the optimizer is the reference's form of Adam (eps inside the square root:
`ReferenceAdam`). Departures from the reference, all small: G's batch norm keeps torch's running
statistics, used only when sampling for pictures (the reference never samples in eval mode).

    ganforge train configs/mnist_ssgan.yaml                         # 100 labels (10 per class)
    ganforge train configs/mnist_ssgan.yaml loss.unlabeled_weight=0 # the labelled images alone
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel

from ganforge.config import Config, net_names
from ganforge.core import latent
from ganforge.core.distributed import DistInfo
from ganforge.core.stats import StatPlot
from ganforge.data import DATASETS
from ganforge.generator import GeneratorHandle
from ganforge.nets import sample_shape_for, sized
from ganforge.nets.registry import DISCRIMINATORS, GENERATORS
from ganforge.recipes.base import LOSSES_CAPTION, RecipeBase, register

AVERAGE_RATE = 1e-4  # the reference's a + 0.0001 (w - a)
INIT_IMAGES = 500  # the reference's data-dependent init batch: trainx[:500]
G_BATCH_ORDER = 2_000_011  # seeds the order of G's unlabelled batches, apart from the trainer's


def corrected_average(rate: float):
    """A multi_avg_fn for torch's AveragedModel: the zero-started moving average a_t = (1 - rate)
    a_{t-1} + rate w_t divided by 1 - (1 - rate)^t, kept divided. With c_t = a_t / (1 - beta^t)
    and beta = 1 - rate: c_t = c_{t-1} + (rate / (1 - beta^t)) (w_t - c_{t-1}); the first update
    copies w (AveragedModel's own rule, the same value)."""
    beta = 1.0 - rate

    def update(averaged: list, current: list, n_averaged) -> None:
        t = float(n_averaged) + 1
        torch._foreach_lerp_(averaged, current, rate / (1.0 - beta ** t))
    return update


class ReferenceAdam(torch.optim.Optimizer):
    """Adam as the reference's adam_updates writes it: p -= lr m^ / sqrt(v^ + eps), eps inside the
    square root (torch's Adam adds it outside: m^ / (sqrt(v^) + eps)). With eps = 1e-8 that caps
    the step of a parameter whose gradients are below about 1e-4, which the weight-normalised
    directions of these nets have in numbers; torch's form gives them full steps."""

    def __init__(self, params, lr: float, betas: tuple[float, float], eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay})

    def __setstate__(self, state: dict) -> None:
        # torch's own idiom for keys a saved optimizer may lack: state written before weight
        # decay was supported loads with none.
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("weight_decay", 0.0)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            (b1, b2), lr, eps = group["betas"], group["lr"], group["eps"]
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            for p in params:
                if not self.state[p]:
                    self.state[p] = {"step": torch.zeros(()), "m": torch.zeros_like(p), "v": torch.zeros_like(p)}
            states = [self.state[p] for p in params]
            grads = [p.grad for p in params]
            if group["weight_decay"]:  # coupled L2, as torch's Adam applies optim.weight_decay
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            m, v = [s["m"] for s in states], [s["v"] for s in states]
            for s in states:
                s["step"] += 1
            t = float(states[0]["step"])
            torch._foreach_lerp_(m, grads, 1 - b1)  # m = b1 m + (1 - b1) g
            torch._foreach_mul_(v, b2)
            torch._foreach_addcmul_(v, grads, grads, value=1 - b2)  # v = b2 v + (1 - b2) g^2
            denom = torch._foreach_div(v, 1 - b2 ** t)
            torch._foreach_add_(denom, eps)
            torch._foreach_sqrt_(denom)
            torch._foreach_addcdiv_(params, m, denom, value=-lr / (1 - b1 ** t))
        return None


def lse(logits: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(logits, dim=1)


def ssgan_losses(l_lab: torch.Tensor, y: torch.Tensor, l_unl: torch.Tensor, l_fake: torch.Tensor):
    """(loss_lab, loss_unl) of the K+1 formulation, from K-logit outputs (the fake class at 0)."""
    loss_lab = -l_lab.gather(1, y[:, None]).mean() + lse(l_lab).mean()
    z_unl = lse(l_unl)
    loss_unl = -0.5 * z_unl.mean() + 0.5 * F.softplus(z_unl).mean() + 0.5 * F.softplus(lse(l_fake)).mean()
    return loss_lab, loss_unl


def feature_matching(f_fake: torch.Tensor, f_real: torch.Tensor) -> torch.Tensor:
    """The squared distance of the batch means of D's features (Salimans et al. 2016, eq. 3 / the code's mean)."""
    return (f_fake.mean(0) - f_real.mean(0)).square().mean()


@register
class SemiSupervisedRecipe(RecipeBase):
    kind = "ssgan"
    reads = frozenset({"loss.unlabeled_weight", "data.labels_per_class", "data.labels_file", "data.labels_seed",
                       "data.labels_pick", "eval.every_steps"})
    has_classifier = True
    loss_words = "K+1 classifier loss for D, feature matching for G"

    @classmethod
    def check(cls, cfg: Config) -> str | None:
        g, d = net_names(cfg)
        if (g, d) != ("ssgan", "ssgan"):
            return f"train.recipe=ssgan uses the semi-supervised GAN's nets: model.arch=ssgan (not model.G={g}, model.D={d})"
        if cfg.model.conditional != "none":
            return "train.recipe=ssgan learns the classes itself: set model.conditional=none"
        spec = DATASETS[cfg.data.name]
        if cfg.data.labels_file and not spec.labels_if_asked:
            return (f"data.labels_file names labelled images of a folder (data.name=folder); {cfg.data.name} has its "
                    "own labels: choose how many with data.labels_per_class")
        if spec.kind != "image" or not spec.has_labels(cfg.data):
            hint = " (data.labels=true: sub-folders as classes, or data.labels_file=CSV)" if spec.labels_if_asked else ""
            return f"train.recipe=ssgan learns a classifier and needs labelled images; {cfg.data.name} has none{hint}"
        return None

    @classmethod
    def build_nets(cls, cfg: Config, sample_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
        g, d = net_names(cfg)
        return (sized(lambda c: GENERATORS[g].build(z_dim=c.model.z_dim, sample_shape=tuple(sample_shape),
                                                    width=c.model.width), "G", cfg),
                sized(lambda c: DISCRIMINATORS[d].build(sample_shape=tuple(sample_shape), width=c.model.width,
                                                        num_classes=c.model.num_classes), "D", cfg))

    @classmethod
    def build(cls, cfg: Config, data, device: torch.device, dist: DistInfo = DistInfo()) -> "SemiSupervisedRecipe":
        G, D = cls.build_nets(cfg, data.sample_shape)
        pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(cfg.train.seed))[:INIT_IMAGES]
        D.data_init(data.batch(pick)["x"])  # on the CPU, before the weights move; noise from the global stream
        labelled = data.labelled if data.labelled is not None else (data.y >= 0).nonzero().flatten()
        return cls(cfg, G, D, data, labelled, device, dist)

    @classmethod
    def load_generator(cls, cfg: Config, nets: dict[str, dict], step: int, device: str = "cpu") -> GeneratorHandle:
        G, D = cls.build_nets(cfg, sample_shape_for(cfg))
        player, state = cls.player_state(nets)
        G.load_state_dict(state)
        C = next((nets[n] for n in ("C", "D_ema", "D") if n in nets), None)
        if C is not None:
            D.load_state_dict(C)
        return GeneratorHandle(G.to(device).eval(), cfg, step, player=player,
                               C=D.to(device).eval() if C is not None else None)

    def __init__(self, cfg: Config, G: nn.Module, D: nn.Module, data, labelled: torch.Tensor, device: torch.device,
                 dist: DistInfo = DistInfo()):
        super().__init__(cfg, device, dist)
        self.pG = self.add_player("G", G, cfg.optim.lr_G)
        self.pD = self.add_player("D", D, cfg.optim.lr_D)
        if cfg.optim.kind == "adam":  # the reference's form of Adam (see ReferenceAdam)
            for p in (self.pG, self.pD):
                p.opt = ReferenceAdam(p.net.parameters(), p.lr, cfg.optim.betas, weight_decay=cfg.optim.weight_decay)
        self.pD.ema = AveragedModel(self.pD.net, multi_avg_fn=corrected_average(AVERAGE_RATE),
                                    use_buffers=False).requires_grad_(False)
        self.data, self.labelled = data, labelled
        self.y_lab = data.y[labelled]
        self.z_rng = torch.Generator().manual_seed(cfg.train.seed + 1_000_003)
        self._order: tuple[int, torch.Tensor] | None = None  # (epoch, order) of G's unlabelled batches

    # --- where a step's batches come from: functions of the step, so a resumed run sees the same -----
    def _share(self, idx: torch.Tensor) -> torch.Tensor:
        return idx[self.dist.rank::self.dist.world_size]

    def labelled_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions step*B .. (step+1)*B of an endless stream of the labelled images, each pass
        over them in a fresh order seeded by (seed, pass)."""
        B, L = self.cfg.train.batch_size, len(self.labelled)
        pos = torch.arange(step * B, (step + 1) * B)
        first, last = step * B // L, ((step + 1) * B - 1) // L  # the passes this batch takes from
        orders = torch.cat([torch.randperm(L, generator=torch.Generator().manual_seed(self.cfg.train.seed * 1_000_003 + p))
                            for p in range(first, last + 1)])
        picks = self._share(orders[pos - first * L])
        batch = self.data.batch(self.labelled[picks], self.device)
        return batch["x"], self.y_lab[picks].to(self.device)

    def second_batch(self, step: int) -> torch.Tensor:
        """G's unlabelled batch: the same epoch structure as the trainer's, in an order of its own."""
        B = self.cfg.train.batch_size
        per_epoch = len(self.data) // B
        epoch, i = divmod(step, per_epoch)
        if self._order is None or self._order[0] != epoch:
            g = torch.Generator().manual_seed((self.cfg.train.seed + G_BATCH_ORDER) * 1_000_003 + epoch)
            self._order = (epoch, torch.randperm(len(self.data), generator=g))
        return self.data.batch(self._share(self._order[1][i * B:(i + 1) * B]), self.device)["x"]

    def _train_z(self, n_local: int) -> torch.Tensor:
        m, world = self.cfg.model, self.dist.world_size
        z = latent.sample_z(n_local * world, m.z_dim, m.z_dist, self.z_rng).to(self.device)
        return z[self.dist.rank * n_local:(self.dist.rank + 1) * n_local]

    # --- the step ---------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        step = self.pD.updates  # one D update per step: the trainer's step, restored on resume
        x_unl = batch["x"]
        x_lab, y_lab = self.labelled_batch(step)
        pD, pG = self.pD, self.pG
        w = self.cfg.loss.unlabeled_weight
        with self.autocast():
            if w:  # one pass over [x_lab; x_unl; G(z)]: D has no batch statistics, so this is exact
                with torch.no_grad():
                    x_fake = pG.net(self._train_z(len(x_unl)))
                l_lab, l_unl, l_fake = pD.run(torch.cat([x_lab, x_unl, x_fake])).float().split(
                    [len(x_lab), len(x_unl), len(x_fake)])
            else:
                l_lab = pD.run(x_lab).float()
        if w:
            loss_lab, loss_unl = ssgan_losses(l_lab, y_lab, l_unl, l_fake)
        else:  # the baseline: the same classifier on the labelled images alone
            loss_lab, loss_unl = F.cross_entropy(l_lab, y_lab), torch.zeros((), device=l_lab.device)
        self.step(pD, loss_lab + w * loss_unl)
        self.update_ema(pD)
        stats = {"loss_lab": loss_lab.detach(), "loss_unl": loss_unl.detach(),
                 "train_err": (l_lab.argmax(1) != y_lab).float().mean()}
        if w:
            with torch.no_grad():
                stats["D_x"] = torch.sigmoid(lse(l_unl)).mean()  # Z / (Z + 1)
                stats["D_G_z"] = torch.sigmoid(lse(l_fake)).mean()
            stats["loss_G"] = self._g_step(step)
        return stats

    def _g_step(self, step: int) -> torch.Tensor:
        x_real = self.second_batch(step)
        with self.freeze("D"), self.autocast():
            x_fake = self.pG.run(self._train_z(len(x_real)))
            with torch.no_grad():
                f_real = self.pD.frozen.features(x_real).float()
            loss_G = feature_matching(self.pD.frozen.features(x_fake).float(), f_real)
            self.step(self.pG, loss_G)
        return loss_G.detach()

    # --- what the run shows -----------------------------------------------------------------------
    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        m = self.cfg.model
        return {"z": latent.sample_z(n, m.z_dim, m.z_dist, generator).to(self.device)}

    def generator(self) -> GeneratorHandle:
        return GeneratorHandle(self.pG.net, self.cfg, device=self.device, player="G", C=self.pD.ema.module)

    def sample(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.generator()(inputs)

    def stat_labels(self) -> dict[str, str]:
        return {"loss_lab": "loss_lab", "loss_unl": "loss_unl", "loss_G": "loss_G(FM)", "train_err": "err(lab)",
                "D_x": "D(x)", "D_G_z": "D(G(z))"}

    def stat_plots(self) -> tuple[StatPlot, ...]:
        return (StatPlot("losses.png", ("loss_lab", "loss_unl", "loss_G"), "loss",
                         {"loss_lab": "D: cross-entropy on the labelled batch", "loss_unl": "D: real vs generated",
                          "loss_G": "G: feature matching"}, caption=LOSSES_CAPTION),
                StatPlot("d_outputs.png", ("D_x", "D_G_z"), "D's probability of real",
                         {"D_x": "D(x) = Z / (Z + 1)", "D_G_z": "D(G(z))"}, ylim=(0, 1)))

    def report_words(self, end: dict[str, float], value_range: str) -> list[str]:
        words = [f"On its last labelled batch the classifier (D's current weights, noise on) got "
                 f"{100 * end['train_err']:.1f} % wrong." if "train_err" in end else ""]
        if "D_x" in end:
            words.append(f"D gave unlabelled real images D(x) = {end['D_x']:.2f} and generated ones "
                         f"D(G(z)) = {end['D_G_z']:.2f}: with feature matching D is expected to win this game; "
                         "G's samples serve the classifier, not the eye.")
        return [w for w in words if w]

    # --- checkpoint state ---------------------------------------------------------------------------
    def extra_state(self) -> dict:
        return {"z_rng": self.z_rng.get_state()}

    def load_extra_state(self, state: dict) -> None:
        self.z_rng.set_state(state["z_rng"])
