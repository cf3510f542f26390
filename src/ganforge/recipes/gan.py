"""The classic GAN training step: Algorithm 1 of Goodfellow et al. 2014 with k = train.n_dis.

Two players, G fed z and D judging x. One call of `train_step` is one discriminator update on one
real batch; every k-th call is also followed by one generator update. The objective comes from the
loss registry (loss.kind), the nets from the net registries (model.G / model.D), so the textbook
MLP GAN, the paper's maxout model and DCGAN are all this recipe with another config.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.core import latent
from ganforge import losses
from ganforge.core.augment import ada_step, diff_augment, parse_policy
from ganforge.core.errors import ConfigError
from ganforge.config import Config, net_names
from ganforge.core.distributed import DistInfo, all_reduce_mean
from ganforge.generator import GeneratorHandle
from ganforge.losses import LOSSES
from ganforge.nets import build_D, build_G, class_count, joint_D, sample_shape_for
from ganforge.nets.registry import GENERATORS
from ganforge.recipes.base import LOSSES_CAPTION, RecipeBase, has_batchnorm, register
from ganforge.core.stats import StatPlot
from ganforge.data import DATASETS


def packed_shape(sample_shape: tuple[int, ...], pack: int) -> tuple[int, ...]:
    """What D sees under PacGAN packing: `pack` samples stacked along the first (channel) axis."""
    return (sample_shape[0] * pack, *sample_shape[1:])


def _d_has_batchnorm(cfg: Config) -> bool:
    """Whether the configured D has batch norm, from a shape-only build (meta device: no memory, no RNG)."""
    with torch.device("meta"):
        return has_batchnorm(build_D(cfg, sample_shape_for(cfg)))


def _g_has_styles(cfg: Config) -> bool:
    """Whether the configured G maps z to per-layer styles, as StyleGAN does (its registry entry says)."""
    return GENERATORS[net_names(cfg)[0]].styles


@register
class GANRecipe(RecipeBase):
    kind = "gan"
    reads = frozenset({"model.conditional", "train.pack", "train.augment", "train.augment_p", "train.ada_target",
                       "train.ada_every", "train.ada_kimg", "loss.clip", "loss.gp_weight", "loss.r1_gamma",
                       "loss.r1_every", "loss.pl_weight", "loss.pl_every", "loss.pl_decay", "loss.pl_batch_shrink",
                       "train.ema_halflife_kimg", "train.update", "train.n_dis", "train.reuse_fake",
                       "eval.every_steps"})
    generator_player = "G"  # the player `ganforge sample` / eval / export use

    def __init__(self, cfg: Config, G: nn.Module, D: nn.Module, device: torch.device, dist: DistInfo = DistInfo()):
        super().__init__(cfg, device, dist)
        self.loss = LOSSES[cfg.loss.kind]
        self.pG = self.add_player("G", G, cfg.optim.lr_G, cfg.train.ema_halflife_kimg)
        self.pD = self.add_player("D", D, cfg.optim.lr_D)
        self.G, self.D = self.pG.net, self.pD.net
        # Latents come from their own generator, identical on every rank: each rank draws the whole
        # global batch and keeps its slice, so N processes see exactly the latents one process would.
        self.z_rng = torch.Generator().manual_seed(cfg.train.seed + 1_000_003)
        # One D pass over [x_real; x_fake] is exact only when D has no batch statistics:
        # batch norm would mix real and fake statistics, so such a D sees them separately.
        self.joint_d_pass = not has_batchnorm(D)
        self.augment = parse_policy(cfg.train.augment)  # DiffAugment policies, [] = off
        self.aug_p = cfg.train.augment_p  # how often each policy applies; ADA adapts it
        self._ada_signs = torch.zeros(2, device=device)  # sum of sign(D(x_real)) and its count since the last update
        self.pack = cfg.train.pack
        self.K = class_count(cfg)  # classes of a conditional model, 0 = unconditional
        self.acgan = cfg.model.conditional == "acgan"
        # StyleGAN2's path-length regulariser: the running mean of the lengths, a, kept in checkpoints
        self.pl_mean = torch.zeros((), device=device)
        self._clip_D()

    @classmethod
    def check(cls, cfg: Config) -> str | None:
        t, L, m = cfg.train, cfg.loss, cfg.model
        if joint_D(cfg):
            return (f"model.D={net_names(cfg)[1]} judges (x, z) pairs: train it with train.recipe=bigan, or choose "
                    "a discriminator of images (model.D=mlp, dcgan, ...)")
        if t.update == "simultaneous" and t.n_dis != 1:
            return f"train.update=simultaneous updates both players every step: set train.n_dis=1 (not {t.n_dis})"
        constraints = [k for k, on in (("loss.clip", L.clip > 0), ("loss.gp_weight", L.gp_weight > 0),
                                       ("model.d_spectral_norm", m.d_spectral_norm)) if on]
        if m.conditional != "none":
            if not DATASETS[cfg.data.name].has_labels(cfg.data):
                hint = (" (set data.labels=true: one sub-folder per class)" if DATASETS[cfg.data.name].labels_if_asked
                        else "")
                return f"model.conditional={m.conditional} needs labelled data; {cfg.data.name} has no labels{hint}"
            if t.pack > 1:
                return f"train.pack={t.pack} packs samples of different classes: use train.pack=1 with a conditional model"
        if t.augment and sample_shape_for(cfg) == (2,):
            return f"train.augment={t.augment!r} transforms images; {cfg.data.name} data is 2-D points: drop it"
        if L.kind == "wasserstein" and not constraints:
            return ("loss.kind=wasserstein needs a Lipschitz constraint on D: set loss.gp_weight=10 (WGAN-GP), "
                    "loss.clip=0.01 (WGAN, with optim.kind=rmsprop) or model.d_spectral_norm=true")
        if len(constraints) > 1 and "loss.clip" in constraints:
            return f"choose one Lipschitz constraint: {' and '.join(constraints)} are both set (drop loss.clip)"
        if t.ada_target and (LOSSES[L.kind].boundary is None or t.update == "simultaneous"):
            why = (f"loss.kind={L.kind} has no decision boundary to judge D's real outputs by"
                   if LOSSES[L.kind].boundary is None else
                   "train.update=simultaneous has no separate D update to watch")
            return f"train.ada_target={t.ada_target}: {why}; use a fixed train.augment_p, or set train.ada_target=0"
        if L.pl_weight > 0 and not _g_has_styles(cfg):
            return (f"loss.pl_weight={L.pl_weight} regularises the map from styles w to images: it needs a "
                    "generator with a mapping network (model.arch=stylegan), or set loss.pl_weight=0")
        penalties = [k for k, on in (("loss.gp_weight", L.gp_weight > 0), ("loss.r1_gamma", L.r1_gamma > 0),
                                     ("loss.pl_weight", L.pl_weight > 0)) if on]
        if penalties and t.precision == "fp16":
            return (f"{' and '.join(penalties)} with train.precision=fp16: the penalty's inner gradient is taken "
                    "without loss scaling and can underflow; use train.precision=bf16 or fp32")
        if penalties and t.update == "simultaneous":
            return (f"{' and '.join(penalties)} {'need' if len(penalties) > 1 else 'needs'} train.update=alternating "
                    "(each penalty is part of its player's update)")
        if any(p != "loss.pl_weight" for p in penalties) and _d_has_batchnorm(cfg):
            penalties = [p for p in penalties if p != "loss.pl_weight"]
            verb = "penalise" if len(penalties) > 1 else "penalises"
            return (f"{' and '.join(penalties)} {verb} per-sample gradients of D, which batch norm mixes "
                    "across the batch: set model.d_norm=none")
        return None

    @classmethod
    def build(cls, cfg: Config, data, device: torch.device, dist: DistInfo = DistInfo()) -> "GANRecipe":
        per_rank = cfg.train.batch_size // dist.world_size
        if per_rank % cfg.train.pack:
            raise ConfigError(f"train.pack={cfg.train.pack}: each of the {dist.world_size} processes gets {per_rank} "
                              "samples a step, not a multiple of the pack: change train.batch_size")
        G = build_G(cfg, data.sample_shape)  # G first, then D: the global RNG draws their initial weights
        D = build_D(cfg, packed_shape(data.sample_shape, cfg.train.pack))
        if hasattr(G, "init_output_bias"):  # nets that start from the data's pixel marginals
            G.init_output_bias(data.pixel_mean())
        return cls(cfg, G, D, device, dist)

    @classmethod
    def load_generator(cls, cfg: Config, nets: dict[str, dict], step: int, device: str = "cpu") -> GeneratorHandle:
        G = build_G(cfg, sample_shape_for(cfg))
        player, state = cls.player_state(nets)
        G.load_state_dict(state)
        return GeneratorHandle(G.to(device).eval(), cfg, step, player=player)

    @classmethod
    def load_critic(cls, cfg: Config, nets: dict[str, dict], device: str = "cpu"):
        """D as a function (images, classes or None) -> one logit per image, for judging single images
        (inpainting's prior); (None, why) where this model's D cannot."""
        if "D" not in nets:
            return None, "the source holds G alone (an export): give the run folder or a checkpoint for D"
        if cfg.train.pack > 1:
            return None, f"its D judges packs of {cfg.train.pack} images (train.pack), not one image"
        if cfg.loss.kind not in ("ns", "minimax"):
            return None, f"its D was trained with loss.kind={cfg.loss.kind}: its output is no probability to read"
        D = build_D(cfg, sample_shape_for(cfg))
        D.load_state_dict(nets["D"])
        D = D.to(device).eval().requires_grad_(False)
        conditional = class_count(cfg) > 0

        def critic(x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
            out = D(x, c) if conditional else D(x)
            out = out.reshape(len(x), -1)
            return out[:, 0]  # ACGAN: the real / fake logit before the class logits
        return critic, "D"

    # --- inputs and samples -------------------------------------------------------------------
    def _train_z(self, n_local: int) -> torch.Tensor:
        m, world = self.cfg.model, self.dist.world_size
        z = latent.sample_z(n_local * world, m.z_dim, m.z_dist, self.z_rng).to(self.device)
        return z[self.dist.rank * n_local:(self.dist.rank + 1) * n_local]

    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """n latents; for a conditional model, a row per class (the first n classes when there are
        more), as many samples per row as fit."""
        m = self.cfg.model
        if not self.K:
            return {"z": latent.sample_z(n, m.z_dim, m.z_dist, generator).to(self.device)}
        rows = min(self.K, n)
        per_row = max(1, n // rows)
        z = latent.sample_z(rows * per_row, m.z_dim, m.z_dist, generator)
        return {"z": z.to(self.device), "c": torch.arange(rows).repeat_interleave(per_row).to(self.device)}

    def grid_columns(self, inputs: dict) -> int | None:
        """A conditional model's grid has a row per class."""
        c = inputs.get("c")
        return int((c == c[0]).sum()) if c is not None and (c == c[0]).sum() > 1 else None

    def generator(self) -> GeneratorHandle:
        """The live generator: G's moving average when train.ema_halflife_kimg > 0, else G."""
        player = self.generator_player + ("_ema" if self.pG.ema is not None else "")
        return GeneratorHandle(self.pG.sampler, self.cfg, device=self.device, player=player)

    def sample(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.generator()(inputs)

    # --- what the statistics mean ---------------------------------------------------------------
    def stat_labels(self) -> dict[str, str]:
        return {"loss_D": "loss_D", "loss_G": "loss_G", "gp": "GP", "r1": "R1", "pl": "PL", "pl_mean": "a_PL",
                "aug_p": "p", "aux_D": "aux_D", "aux_acc_real": "acc(x)", "D_acc": "acc(D)",
                **self.loss.labels}

    def stat_plots(self) -> tuple[StatPlot, ...]:
        ada = (StatPlot("augment_p.png", ("aug_p",), "ADA: augmentation probability p", ylim=(0, 1)),
               ) if self.cfg.train.ada_target else ()
        return (StatPlot("losses.png", ("loss_D", "loss_G"), "loss", caption=LOSSES_CAPTION), *self.loss.plots, *ada)

    # --- the step --------------------------------------------------------------------------------
    def _d_input(self, x: torch.Tensor) -> torch.Tensor:
        """What D is shown: DiffAugment'ed when asked, then packed ([B, C, ...] -> [B / m, m C, ...])."""
        if self.augment:
            x = diff_augment(x, self.augment, self.aug_p)
        if self.pack > 1:
            x = x.reshape(len(x) // self.pack, self.pack * x.shape[1], *x.shape[2:])
        return x

    def _G(self, net, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return net(z, c) if self.K else net(z)

    def _D(self, net, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return net(x, c) if self.K else net(x)

    def _split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(real / fake logits [N], ACGAN class logits [N, K] or None), in float32."""
        out = out.float()
        return (out[:, 0], out[:, 1:]) if self.acgan else (out, None)

    def _d_logits(self, x_real: torch.Tensor, x_fake: torch.Tensor, c: torch.Tensor | None = None):
        """D's outputs on real and generated batches, given as D's inputs (see _d_input); generated
        samples carry the real batch's classes."""
        if self.joint_d_pass:
            out = self._D(self.pD.run, torch.cat([x_real, x_fake]), None if c is None else torch.cat([c, c]))
            return out[: len(x_real)], out[len(x_real):]
        return self._D(self.pD.run, x_real, c), self._D(self.pD.run, x_fake, c)

    @staticmethod
    def _class_loss(aux: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """AC-GAN (Odena et al. 2017): the cross-entropy of the auxiliary head's class prediction."""
        return F.cross_entropy(aux, c)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg, x_real = self.cfg, batch["x"]
        c = batch["c"] if self.K else None  # G draws each sample for the class of its real counterpart
        n = len(x_real)
        if self.pD.channels_last:
            x_real = x_real.contiguous(memory_format=torch.channels_last)
        if cfg.train.update == "simultaneous":
            return self._simultaneous_step(x_real, c)
        g_step = (self.pD.updates + 1) % cfg.train.n_dis == 0
        reuse = cfg.train.reuse_fake and g_step
        # Keep G's graph only when the G step will reuse this very x_fake.
        with torch.set_grad_enabled(reuse), self.autocast():
            x_fake = self._G(self.pG.run, self._train_z(n), c)

        # D step: maximise log D(x) + log(1 - D(G(z))). Losses in float32 whatever the precision.
        with self.autocast():
            d_real, d_fake = self._d_input(x_real), self._d_input(x_fake.detach())
            (logits_real, aux_real), (logits_fake, aux_fake) = map(self._split, self._d_logits(d_real, d_fake, c))
        loss_D = cfg.loss.d_scale * self.loss.d(logits_real, logits_fake)
        aux_stats = {}
        if self.acgan:  # D also learns to tell the class of real and generated samples
            aux_D = self._class_loss(aux_real, c) + self._class_loss(aux_fake, c)
            loss_D = loss_D + aux_D
            aux_stats = {"aux_D": aux_D.detach(), "aux_acc_real": (aux_real.argmax(1) == c).float().mean()}
        penalty, penalty_stats = self._penalties(d_real, d_fake, c)
        self.step(self.pD, loss_D + penalty if penalty_stats else loss_D)
        self._clip_D()
        stats = {**self.d_stats(loss_D, logits_real, logits_fake), **aux_stats, **penalty_stats,
                 **self._ada(logits_real)}
        if not g_step:
            return stats

        # G step, with D frozen (no D gradients are computed or kept).
        with self.freeze("D"):
            with self.autocast():
                if not reuse:
                    x_fake = self._G(self.pG.run, self._train_z(n), c)
                logits, aux = self._split(self._D(self.pD.frozen, self._d_input(x_fake), c))
            loss_G = self.loss.g(logits)
            if self.acgan:  # G makes its samples recognisable as their class
                loss_G = loss_G + self._class_loss(aux, c)
            penalty, penalty_stats = self._g_penalties(n)
            self.step(self.pG, loss_G + penalty if penalty_stats else loss_G)
        self.update_ema(self.pG)
        stats["loss_G"] = loss_G.detach()
        return {**stats, **penalty_stats}

    def _g_penalties(self, n: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """G's regulariser for this update: lazy path-length regularisation (StyleGAN2), every
        pl_every-th G update on n / pl_batch_shrink fresh latents, scaled by pl_every. Added to G's
        loss in the same backward (the reference code takes a separate optimizer step for it)."""
        L = self.cfg.loss
        if not (L.pl_weight > 0 and self.pG.updates % L.pl_every == 0):
            return 0.0, {}
        z = self._train_z(max(1, n // L.pl_batch_shrink))
        with self.autocast():
            ws = self.G.ws(z, update_avg=False)
            pl, new_mean, length = losses.path_length_penalty(self.G.synthesis, ws, self.pl_mean, L.pl_decay)
        if self.dist.enabled:  # one running mean on every rank
            length = all_reduce_mean(length, self.dist)
            new_mean = self.pl_mean.lerp(length, L.pl_decay)
        self.pl_mean = new_mean
        return L.pl_weight * L.pl_every * pl, {"pl": pl.detach(), "pl_mean": new_mean.detach()}

    @torch.no_grad()
    def _ada(self, logits_real: torch.Tensor) -> dict[str, torch.Tensor]:
        """ADA: gather sign(D(x_real)) (against the loss's decision boundary) and, every ada_every D
        updates, move p (the same on every rank: the signs are summed over ranks first)."""
        t = self.cfg.train
        if not t.ada_target:
            return {}
        signs = (logits_real.float() - self.loss.boundary).sign()  # +1: D calls the real image real
        self._ada_signs += torch.stack([signs.sum(), signs.new_tensor(float(len(signs)))])
        if self.pD.updates % t.ada_every == 0:
            signs = self._ada_signs
            if self.dist.enabled:
                signs = all_reduce_mean(signs, self.dist)  # a mean of sums: the ratio is the global one
            r_t = float(signs[0] / signs[1])
            self.aug_p = ada_step(self.aug_p, r_t, t.ada_target, t.batch_size * t.ada_every, t.ada_kimg)
            self._ada_signs.zero_()
        return {"aug_p": torch.tensor(self.aug_p, device=self.device)}

    @torch.no_grad()
    def _clip_D(self) -> None:
        """WGAN: keep the critic K-Lipschitz by clamping its weights (at the start and after every D update)."""
        if self.cfg.loss.clip > 0:
            for p in self.D.parameters():
                p.clamp_(-self.cfg.loss.clip, self.cfg.loss.clip)

    def _penalties(self, x_real: torch.Tensor, x_fake: torch.Tensor,
                   c: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D's regularisers for this update, on D's inputs (augmented, packed): the WGAN-GP gradient
        penalty every update, lazy R1 every r1_every-th update scaled by r1_every (StyleGAN2). They
        call the plain D: its parameters are DDP's too, so their gradients are averaged with the rest
        in one backward."""
        L, total, stats = self.cfg.loss, 0.0, {}
        D = self._critic(c)
        with self.autocast():
            if L.gp_weight > 0:
                gp = losses.gradient_penalty(D, x_real, x_fake.detach())
                total, stats["gp"] = total + L.gp_weight * gp, gp.detach()
            if L.r1_gamma > 0 and self.pD.updates % L.r1_every == 0:
                r1 = losses.r1_penalty(D, x_real)
                total, stats["r1"] = total + (L.r1_gamma / 2) * L.r1_every * r1, r1.detach()
        return total, stats

    def _critic(self, c: torch.Tensor | None):
        """The plain D as a function of images alone, the real / fake logit (for the penalties)."""
        return (lambda x: self._split(self._D(self.D, x, c))[0]) if self.K else self.D

    def _simultaneous_step(self, x_real: torch.Tensor, c: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The paper's code (AdversaryCost2.get_gradients): one G forward, one D forward over real and
        fake (one dropout mask), each player's gradient of its own objective at the current
        parameters, both applied at once."""
        cfg, pG, pD = self.cfg, self.pG, self.pD
        with self.autocast():
            x_fake = self._G(pG.run, self._train_z(len(x_real)), c)
            (logits_real, aux_real), (logits_fake, aux_fake) = map(
                self._split, self._d_logits(self._d_input(x_real), self._d_input(x_fake), c))
        loss_D = cfg.loss.d_scale * self.loss.d(logits_real, logits_fake)
        loss_G = self.loss.g(logits_fake)
        if self.acgan:
            loss_D = loss_D + (self._class_loss(aux_real, c) + self._class_loss(aux_fake, c))  # inputs= below keeps it D's
            loss_G = loss_G + self._class_loss(aux_fake, c)
        self.prepare(pD)
        self.prepare(pG)
        # `inputs=` keeps each objective's gradient to its own player's parameters.
        pG.scaler.scale(loss_G).backward(inputs=list(self.G.parameters()), retain_graph=True)
        pD.scaler.scale(loss_D).backward(inputs=list(self.D.parameters()))
        self.apply(pD)
        self.apply(pG)
        self._clip_D()
        self.update_ema(pG)
        return {**self.d_stats(loss_D, logits_real, logits_fake), "loss_G": loss_G.detach()}

    # --- checkpoint state --------------------------------------------------------------------
    def extra_state(self) -> dict:
        return {"z_rng": self.z_rng.get_state(), "pl_mean": self.pl_mean.detach().cpu(), "aug_p": self.aug_p,
                "ada_signs": self._ada_signs.cpu()}

    def load_extra_state(self, state: dict) -> None:
        if "z_rng" in state:  # absent in checkpoints of 0.1.0 development builds: keep the seeded stream
            self.z_rng.set_state(state["z_rng"])
        if "pl_mean" in state:  # absent in checkpoints from before path length and ADA: keep the start values
            self.pl_mean = state["pl_mean"].to(self.device)
            self.aug_p, self._ada_signs = float(state["aug_p"]), state["ada_signs"].to(self.device)
