"""pix2pix (Isola et al. 2017): a conditional GAN that learns a map from paired images A -> B.

G is a U-Net fed the input image a (no z: dropout in G is its only noise); D is a PatchGAN that
judges (a, b) pairs, stacked along the channels, patch by patch. On data with holes
(data.degrade=box, strokes, missing, masks=DIR) and model.mask_input=true (the inpainting presets)
G is also given the mask of missing pixels as one more input channel: a completion model that knows
what to fill. Its L1 is then taken over the
missing pixels alone (the context encoder's reconstruction term, Pathak et al. 2016), and D judges
the completed image (G's pixels in the holes, the observed ones around them). Per step, with a batch of pairs:

    D: loss.d_scale * [loss_D(D(a, b), D(a, G(a)))]      the paper halves it: d_scale 0.5
    G: loss.adv_weight * loss_G(D(a, G(a))) + loss.l1_weight * |G(a) - b|_1     lambda = 100 in the paper

The adversarial term is what makes outputs sharp: L1 alone is minimised by the blurry average of
the plausible answers (bench/translation.py measures both).
"""

from __future__ import annotations

import torch

from ganforge.config import Config
from ganforge.core.distributed import DistInfo
from ganforge.losses import LOSSES
from ganforge.core.stats import StatPlot
from ganforge.recipes.base import d_words, register
from ganforge.recipes.translation import TranslationRecipe, held_out_of, loss_plot


@register
class Pix2PixRecipe(TranslationRecipe):
    kind = "pix2pix"
    reads = frozenset({"loss.l1_weight", "loss.adv_weight", "data.degrade", "data.degrade_per", "model.mask_input"})
    pairing = "paired"
    norm = "batch"
    grid_rows_caption = "targets"

    def report_words(self, end: dict[str, float], value_range: str) -> list[str]:
        words = [f"At the end G's outputs were {end['L1']:.3f} from their targets in mean absolute pixel difference "
                 f"(pixels in {'[-1, 1]' if value_range == 'signed' else '[0, 1]'}; lower is closer)."] if "L1" in end else []
        return words + d_words(end)

    def __init__(self, cfg: Config, G, D, held_out: dict, device: torch.device, dist: DistInfo = DistInfo()):
        super().__init__(cfg, device, dist)
        self.loss = LOSSES[cfg.loss.kind]
        self.pG = self.add_player("G", G, cfg.optim.lr_G)
        self.pD = self.add_player("D", D, cfg.optim.lr_D)
        self.held_out = held_out

    @classmethod
    def d_channels(cls, channels: int) -> int:
        return 2 * channels  # D sees the input beside the output

    @classmethod
    def build(cls, cfg: Config, data, device: torch.device, dist: DistInfo = DistInfo()) -> "Pix2PixRecipe":
        shape = data.sample_shape
        G, D = cls.build_nets(cfg, data.input_channels, shape)
        return cls(cfg, G, D, held_out_of(data), device, dist)

    def _G(self, a: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """G's outputs for the inputs a; a G that is told the holes (MaskInput) gets the batch's mask."""
        return self.pG.run(a, batch["mask"]) if self._takes_mask() else self.pG.run(a)

    def _D(self, net, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return net(torch.cat([a, b], 1))

    def _takes_mask(self) -> bool:
        return getattr(self.pG.net, "takes_mask", False)

    def _fill(self, fake: torch.Tensor, a: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """What D judges: for a completion G, its pixels in the holes and the observed ones around them
        (the image it will give), so D cannot tell the two apart by the observed pixels alone."""
        if not self._takes_mask():
            return fake
        mask = batch["mask"].to(fake.dtype)
        return mask * fake + (1 - mask) * a

    def _l1(self, fake: torch.Tensor, b: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """pix2pix's L1 over the whole image; for a completion G over the missing pixels alone, as the
        context encoder (Pathak et al. 2016) does: the observed ones are pasted back and teach nothing."""
        if not self._takes_mask():
            return (fake - b).abs().mean()
        mask = batch["mask"].expand_as(b)
        return ((fake - b).abs() * mask).sum() / mask.sum().clamp_min(1)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg, a, b = self.cfg, batch["a"], batch["x"]
        if self.pD.channels_last:
            a, b = (t.contiguous(memory_format=torch.channels_last) for t in (a, b))
        if cfg.loss.adv_weight == 0:  # the L1-only baseline: a U-Net regressing b, D untouched
            with self.autocast():
                l1 = self._l1(self._G(a, batch).float(), b, batch)
            self.step(self.pG, cfg.loss.l1_weight * l1)
            return {"loss_G": (cfg.loss.l1_weight * l1).detach(), "L1": l1.detach()}
        with self.autocast():
            fake = self._fill(self._G(a, batch), a, batch)
            logits_real = self._D(self.pD.run, a, b)
            logits_fake = self._D(self.pD.run, a, fake.detach())
        loss_D = cfg.loss.d_scale * self.loss.d(logits_real.float(), logits_fake.float())
        self.step(self.pD, loss_D)
        stats = self.d_stats(loss_D, logits_real.float(), logits_fake.float())

        with self.freeze("D"):
            with self.autocast():
                logits = self._D(self.pD.frozen, a, fake)
            adv = self.loss.g(logits.float())
            l1 = self._l1(fake.float(), b, batch)
            loss_G = cfg.loss.adv_weight * adv + cfg.loss.l1_weight * l1
            self.step(self.pG, loss_G)
        return {**stats, "loss_G": loss_G.detach(), "G_adv": adv.detach(), "L1": l1.detach()}

    def sample(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rows: the inputs, G's outputs, the targets."""
        out = self.generator()({k: v for k, v in inputs.items() if k in ("a", "mask")})  # observed pixels pasted back
        return torch.cat([inputs["a"].to(out), out, inputs["x"].to(out)])

    def stat_labels(self) -> dict[str, str]:
        return {**super().stat_labels(), "G_adv": "G_adv", "L1": "L1"}

    def stat_plots(self) -> tuple[StatPlot, ...]:
        return (loss_plot(("loss_D", "G_adv"), {"G_adv": "loss_G (adversarial part)"}),
                StatPlot("l1.png", ("L1",), "mean |G(a) - b| (pixels)", {"L1": "L1 to the target"},
                         caption="L1 distance of G's outputs to the targets"),
                *self.loss.plots)
