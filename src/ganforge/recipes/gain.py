"""GAIN (Yoon et al. 2018): missing values imputed by a generator that D checks value by value.

G sees an image with its missing pixels replaced by noise, and the mask; D sees G's completion
(observed pixels kept, missing ones G's) and a hint, and says for every pixel whether it was
observed. The hint reveals the mask's value for a share of the observed pixels (`loss.hint_rate`),
which makes the mask identifiable only from what D cannot tell apart. Per step, as the authors'
code does it (`jsyoon0823/GAIN`; model.gain_variant=mnist follows MNST_Code_Example.py, the
default "tabular" gain.py):

    m = 1 - mask (observed),  x^ = m a + (1 - m) G(a, mask),  h = m b with b ~ Bernoulli(hint_rate)
    D:  -k mean[ m log D(x^, h) + (1 - m) log(1 - D(x^, h)) ]
    G:  -mean[ (1 - m) log D(x^, h) ] / s + alpha mean[(m a - m G)^2] / mean[m]   (after D's step)

with k = 2 and s = mean[1 - m] in the MNIST script (alpha 10 there), k = s = 1 in gain.py (alpha 100).

`loss.adv_weight=0` trains the same G on the reconstruction of observed pixels alone (the
ablation that shows what the adversarial term adds). With `data.degrade_per=image` (the preset's)
every training image keeps its holes for the whole run, as a data set with missing values does,
and G never sees a missing pixel's true value: the clean image in the batch is used only to report
the error on the missing pixels (`RMSE_missing`). With the default `degrade_per=step` the holes
move from step to step and every pixel is observed some time: a restoration setting, not GAIN's.

Where ganforge departs from the MNIST script: its training images are TensorFlow's 55,000 (the
first 55,000 of the 60,000, here all 60,000); batches come in epochs of a shuffled order (the script
draws each batch at random); it prints the mean squared error on the missing pixels of its
training batches, ganforge the root of it (`RMSE_missing`) and, in bench/imputation.py, on the
held-out test images.

    ganforge train configs/mnist_gain.yaml
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import Config, net_names
from ganforge.core.distributed import DistInfo
from ganforge.core.stats import StatPlot
from ganforge.data import DATASETS
from ganforge.data.degrade import DEGRADATIONS, parse
from ganforge.nets import sized
from ganforge.nets.registry import DISCRIMINATORS, GENERATORS
from ganforge.recipes.base import LOSSES_CAPTION, register
from ganforge.recipes.translation import TranslationRecipe, held_out_of


@register
class GAINRecipe(TranslationRecipe):
    kind = "gain"
    reads = frozenset({"loss.hint_rate", "loss.gain_alpha", "loss.adv_weight", "data.degrade", "data.degrade_per",
                       "model.gain_variant"})
    pairing = "paired"
    grid_rows_caption = "targets"

    @classmethod
    def build_nets(cls, cfg: Config, in_channels: int, sample_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
        g, d = net_names(cfg)
        kwargs = {"sample_shape": tuple(sample_shape), "variant": cfg.model.gain_variant}
        return (sized(lambda c: GENERATORS[g].build(width=c.model.width, **kwargs), "G", cfg),  # sized: a width
                sized(lambda c: DISCRIMINATORS[d].build(width=c.model.width, **kwargs), "D", cfg))  # too large is named

    @classmethod
    def check(cls, cfg: Config) -> str | None:
        g, d = net_names(cfg)
        if (g, d) != ("gain", "gain"):
            return f"train.recipe=gain uses GAIN's nets: model.arch=gain (not model.G={g}, model.D={d})"
        name, _ = parse(cfg.data.degrade) if cfg.data.degrade else ("", None)
        if not cfg.data.degrade or name not in DEGRADATIONS or not DEGRADATIONS[name].inpainting:
            holes = ", ".join(n for n, x in DEGRADATIONS.items() if x.inpainting)
            return (f"train.recipe=gain imputes missing pixels: set data.degrade to one of {holes} "
                    f"(GAIN's setting: data.degrade=missing=0.5){' (not ' + cfg.data.degrade + ')' if cfg.data.degrade else ''}")
        if cfg.data.range != "unit":
            return "train.recipe=gain completes images in [0, 1] (a sigmoid G, as the reference): set data.range=unit"
        if DATASETS[cfg.data.name].kind != "image":
            return f"train.recipe=gain completes images; data.name={cfg.data.name} is not images"
        return None

    def __init__(self, cfg: Config, G, D, held_out: dict, device: torch.device, dist: DistInfo = DistInfo()):
        super().__init__(cfg, device, dist)
        self.pG = self.add_player("G", G, cfg.optim.lr_G)
        self.pD = self.add_player("D", D, cfg.optim.lr_D)
        self.held_out = held_out
        self.hint_rng = torch.Generator().manual_seed(cfg.train.seed + 2_000_003)

    @classmethod
    def build(cls, cfg: Config, data, device: torch.device, dist: DistInfo = DistInfo()) -> "GAINRecipe":
        G, D = cls.build_nets(cfg, data.input_channels, data.sample_shape)
        return cls(cfg, G, D, held_out_of(data), device, dist)

    def _hint(self, m: torch.Tensor) -> torch.Tensor:
        b = (torch.rand(m.shape, generator=self.hint_rng) < self.cfg.loss.hint_rate).float().to(m)
        return m * b

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        a, mask, x = batch["a"], batch["mask"], batch["x"]
        m = (1 - mask).expand_as(a)  # observed
        h = self._hint(m)
        alpha = self.cfg.loss.gain_alpha

        with self.autocast():
            g = self.pG.run(a, mask).float()
            x_hat = m * a + (1 - m) * g
            logits = self.pD.run(x_hat.detach(), h).float()
        # -[m log D + (1 - m) log (1 - D)] with D = sigmoid(logit): m softplus(-l) + (1 - m) softplus(l)
        loss_D = (m * F.softplus(-logits) + (1 - m) * F.softplus(logits)).mean()
        mnist = self.cfg.model.gain_variant == "mnist"
        if mnist:  # the MNIST script doubles D's loss
            loss_D = 2 * loss_D
        self.step(self.pD, loss_D)

        with self.freeze("D"):
            with self.autocast():
                logits = self.pD.frozen(x_hat, h).float()
            adv = ((1 - m) * F.softplus(-logits)).mean()
            if mnist:  # ... and divides G's adversarial term by the share of missing values
                adv = adv / (1 - m).mean().clamp_min(1e-8)
            mse = ((m * a - m * g) ** 2).mean() / m.mean().clamp_min(1e-8)
            loss_G = self.cfg.loss.adv_weight * adv + alpha * mse  # adv_weight=0: the ablation without D
            self.step(self.pG, loss_G)
        with torch.no_grad():
            missing = 1 - m
            rmse = (((x_hat - x) ** 2 * missing).sum() / missing.sum().clamp_min(1)).sqrt()
            acc = ((logits > 0).float() == m).float().mean()
        # not "D_acc": the health checks read that as real-vs-generated accuracy, and the hint alone
        # makes this per-pixel one high
        return {"loss_D": loss_D.detach(), "loss_G": loss_G.detach(), "G_adv": adv.detach(), "MSE_observed": mse.detach(),
                "RMSE_missing": rmse, "D_pixel_acc": acc}

    def extra_state(self) -> dict:
        return {"hint_rng": self.hint_rng.get_state()}

    def load_extra_state(self, state: dict) -> None:
        self.hint_rng.set_state(state["hint_rng"])

    def sample(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rows: the degraded inputs, G's completions (observed pixels kept), the clean images."""
        out = self.generator()({"a": inputs["a"], "mask": inputs["mask"]})
        return torch.cat([inputs["a"].to(out), out, inputs["x"].to(out)])

    def stat_labels(self) -> dict[str, str]:
        return {"loss_D": "loss_D", "loss_G": "loss_G", "G_adv": "G_adv", "MSE_observed": "MSE(observed)",
                "RMSE_missing": "RMSE(missing)", "D_pixel_acc": "acc(D per pixel)"}

    def stat_plots(self) -> tuple[StatPlot, ...]:
        return (StatPlot("losses.png", ("loss_D", "G_adv"), "loss", {"G_adv": "loss_G (adversarial part)"},
                         caption=LOSSES_CAPTION),
                StatPlot("rmse.png", ("RMSE_missing",), "RMSE on the missing pixels ([0, 1])",
                         {"RMSE_missing": "RMSE of the completion on the missing pixels"},
                         caption="the completion's error on the pixels G never saw (GAIN's figure)"))

    def report_words(self, end: dict[str, float], value_range: str) -> list[str]:
        if "RMSE_missing" not in end:
            return []
        return [f"At the end the completions were {end['RMSE_missing']:.4f} from the true values of the missing "
                "pixels in root mean squared error (pixels in [0, 1]; lower is closer)."]
