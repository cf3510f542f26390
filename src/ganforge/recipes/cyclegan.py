"""CycleGAN (Zhu et al. 2017): two translators learnt from unpaired images, each keeping the other
honest through cycle consistency.

Four nets in two players, as the reference code has them under two optimizers: G = {"AB": G_AB,
"BA": G_BA} (ResNet-block generators) and D = {"A": D_A, "B": D_B} (PatchGAN, instance norm).
Per step, with a batch of a's and an unrelated batch of b's:

    G:  loss_G(D_B(G_AB(a))) + loss_G(D_A(G_BA(b)))                           adversarial (LSGAN)
        + cycle_weight * (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1)      cycle consistency
        + identity_weight * cycle_weight * (|G_BA(a) - a|_1 + |G_AB(b) - b|_1)    identity
    D:  loss.d_scale * [loss_D(D_B(b), D_B(pool_B(G_AB(a)))) + loss_D(D_A(a), D_A(pool_A(G_BA(b))))]

lsgan's D loss is already halved (Mao et al.), which is the reference's 0.5 x (real + fake); with
ns or hinge set loss.d_scale=0.5 for the same weighting. G steps first, then D (the reference's order); each D learns from a history pool of up to
train.pool_size generated images (half of each batch from the pool once it is full), which
damps oscillation. The presets hold the learning rate for the first half and decay it linearly to
zero over the second (optim.linear_decay_start=0.5).
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.config import Config
from ganforge.core.distributed import DistInfo
from ganforge.core.errors import ConfigError
from ganforge.losses import LOSSES
from ganforge.nets import sample_shape_for
from ganforge.recipes.base import d_words, register
from ganforge.recipes.translation import TranslationRecipe, held_out_of, loss_plot
from ganforge.core.stats import StatPlot


class ImagePool:
    """The history of generated images D learns from (Shrivastava et al. 2017, as CycleGAN uses it):
    until `size` images are stored each new one is stored and returned; after that each new image
    is, with probability 1/2, swapped for a random stored one (the stored one is returned) or
    returned as it is. Its random stream and contents are part of the checkpoint."""

    def __init__(self, size: int, seed: int):
        self.size, self.images = size, []
        self.rng = torch.Generator().manual_seed(seed)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return batch.detach()  # D's loss must not reach G through the images
        out = []
        for image in batch.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.rng) < 0.5:
                k = int(torch.randint(len(self.images), (), generator=self.rng))
                out.append(self.images[k].clone())
                self.images[k] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict:
        stored = torch.stack(self.images).cpu() if self.images else torch.zeros(0)
        return {"images": stored, "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.images = [t.to(device) for t in state["images"]] if len(state["images"]) else []
        self.rng.set_state(state["rng"])


@register
class CycleGANRecipe(TranslationRecipe):
    kind = "cyclegan"
    reads = frozenset({"loss.cycle_weight", "loss.identity_weight", "loss.adv_weight", "train.pool_size"})
    pairing = "unpaired"
    norm = "instance"
    grid_rows_caption = "reconstructions (translated back)"

    def report_words(self, end: dict[str, float], value_range: str) -> list[str]:
        words = [f"At the end an image translated there and back was {end['cycle']:.3f} from itself in mean absolute "
                 "pixel difference, A and B summed (cycle consistency; lower is better)."] if "cycle" in end else []
        return words + d_words(end)

    def __init__(self, cfg: Config, G: nn.ModuleDict, D: nn.ModuleDict, held_out: dict, device: torch.device,
                 dist: DistInfo = DistInfo()):
        super().__init__(cfg, device, dist)
        self.loss = LOSSES[cfg.loss.kind]
        # The reference code's G objective is the plain squared error, (D(G(a)) - 1)^2; ganforge's
        # lsgan G loss is Mao et al.'s, halved. Undo the halving so that cycle_weight = 10 weighs
        # the same against it as in the paper.
        self.g_adv_scale = (2.0 if cfg.loss.kind == "lsgan" else 1.0) * cfg.loss.adv_weight
        self.pG = self.add_player("G", G, cfg.optim.lr_G)
        self.pD = self.add_player("D", D, cfg.optim.lr_D)
        self.held_out = held_out
        seed = cfg.train.seed + 50
        self.pool_A, self.pool_B = ImagePool(cfg.train.pool_size, seed), ImagePool(cfg.train.pool_size, seed + 1)

    @classmethod
    def build_G(cls, cfg: Config) -> nn.ModuleDict:
        shape = sample_shape_for(cfg)
        return nn.ModuleDict({"AB": cls.build_nets(cfg, shape[0], shape)[0],
                              "BA": cls.build_nets(cfg, shape[0], shape)[0]})

    @classmethod
    def check(cls, cfg: Config) -> str | None:
        if cfg.train.compile:
            return ("train.compile=true: the CycleGAN recipe calls its four nets one by one inside two players, "
                    "which a compiled player does not allow yet; drop it")
        return super().check(cfg)

    @classmethod
    def build(cls, cfg: Config, data, device: torch.device, dist: DistInfo = DistInfo()) -> "CycleGANRecipe":
        if dist.enabled:
            raise ConfigError("the CycleGAN recipe does not run under torchrun yet (its players hold two nets "
                              "each, which DDP cannot sync net by net): run it in one process")
        shape = data.sample_shape
        G_AB, D_B = cls.build_nets(cfg, shape[0], shape)
        G_BA, D_A = cls.build_nets(cfg, shape[0], shape)
        G = nn.ModuleDict({"AB": G_AB, "BA": G_BA})
        D = nn.ModuleDict({"A": D_A, "B": D_B})
        return cls(cfg, G, D, held_out_of(data), device, dist)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        L, a, b = self.cfg.loss, batch["a"], batch["x"]
        if self.pD.channels_last:
            a, b = (t.contiguous(memory_format=torch.channels_last) for t in (a, b))
        G, D = self.pG.run, self.pD.frozen
        n, idt = len(a), L.identity_weight > 0
        # G step (both translators at once), D frozen. Instance norm treats each image on its own,
        # so a net's calls on different images are batched into one call (the same numbers, fewer
        # kernel launches: these nets are small enough for launches to dominate on a CPU). Three
        # calls instead of six: G_AB on [a, b] (translation, identity), G_BA on [b, a, G_AB(a)]
        # (translation, identity, reconstruction of a), G_AB on G_BA(b) (reconstruction of b).
        with self.freeze("D"):
            with self.autocast():
                out_ab = G["AB"](torch.cat([a, b]) if idt else a)
                fake_b = out_ab[:n]
                out_ba = G["BA"](torch.cat([b, a, fake_b]) if idt else torch.cat([b, fake_b]))
                fake_a, rec_a = out_ba[:n], out_ba[-n:]
                rec_b = G["AB"](fake_a)
                adv = self.g_adv_scale * (self.loss.g(D["B"](fake_b).float()) + self.loss.g(D["A"](fake_a).float()))
                cycle = (rec_a.float() - a).abs().mean() + (rec_b.float() - b).abs().mean()
                loss_G = adv + L.cycle_weight * cycle
                stats = {"G_adv": adv.detach(), "cycle": cycle.detach()}
                if idt:
                    identity = (out_ba[n:2 * n].float() - a).abs().mean() + (out_ab[n:].float() - b).abs().mean()
                    loss_G = loss_G + L.identity_weight * L.cycle_weight * identity
                    stats["identity"] = identity.detach()
            self.step(self.pG, loss_G)
        # D step, on images from the history pools; real and generated in one call per D (per image
        # norms again), split after.
        D = self.pD.run
        with self.autocast():
            out_B = D["B"](torch.cat([b, self.pool_B(fake_b)])).float()
            out_A = D["A"](torch.cat([a, self.pool_A(fake_a)])).float()
        real_B, fake_B, real_A, fake_A = out_B[:n], out_B[n:], out_A[:n], out_A[n:]
        loss_D = L.d_scale * (self.loss.d(real_B, fake_B) + self.loss.d(real_A, fake_A))
        self.step(self.pD, loss_D)
        stats.update({"loss_G": loss_G.detach(),
                      **self.d_stats(loss_D, torch.cat([real_A.flatten(), real_B.flatten()]),
                                     torch.cat([fake_A.flatten(), fake_B.flatten()]))})
        return stats

    def sample(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rows: the held-out A images, their translations to B, and those translated back."""
        G = self.generator()
        fake_b = G({"a": inputs["a"], "direction": "AtoB"})
        rec_a = G({"a": fake_b, "direction": "BtoA"})
        return torch.cat([inputs["a"].to(fake_b), fake_b, rec_a])

    def stat_labels(self) -> dict[str, str]:
        return {**super().stat_labels(), "G_adv": "G_adv", "cycle": "cycle", "identity": "idt"}

    def stat_plots(self) -> tuple[StatPlot, ...]:
        return (loss_plot(("loss_D", "G_adv"), {"G_adv": "loss_G (adversarial part)"}),
                StatPlot("cycle.png", ("cycle", "identity"), "mean L1 (pixels), A and B summed",
                         {"cycle": "cycle consistency", "identity": "identity"}, caption="cycle-consistency and identity L1"),
                *self.loss.plots)

    def extra_state(self) -> dict:
        return {"pool_A": self.pool_A.state_dict(), "pool_B": self.pool_B.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        if "pool_A" in state:
            self.pool_A.load_state_dict(state["pool_A"], self.device)
            self.pool_B.load_state_dict(state["pool_B"], self.device)
