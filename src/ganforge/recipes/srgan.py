"""SRGAN (Ledig et al. 2017): super-resolution by a residual G with sub-pixel upsampling and a D
that judges high-resolution images alone.

Data: any image dataset with `data.degrade=down=K` (K = 2 or 4): the batch's "a" is the image
averaged K x K and repeated back to size, "x" the clean image. G (SRResNet, nets/srgan.py) works
from the low-resolution image and upsamples by pixel shuffle. Per step:

    D: loss.d_scale * loss_D(D(x), D(G(a)))
    G: loss.mse_weight * mean (G(a) - x)^2                        the pixel MSE (SRResNet-MSE)
       + loss.content_weight * mean (phi(G(a)) - phi(x))^2         the content loss
       + loss.adv_weight * loss_G(D(G(a)))                         the paper: 1e-3

phi is a domain feature net's last convolutional feature maps, on images in [0, 1]: the paper's
VGG19 (an ImageNet net) cannot be had offline, so ganforge uses the shipped MNIST / Fashion-MNIST
classifier, or the run's eval.feature_net (`ganforge featurenet train FOLDER` on a labelled
folder). Without one, set loss.content_weight=0 (the pixel and adversarial terms alone).
The paper starts G from a trained SRResNet-MSE; here G trains with every term from the start.
`loss.adv_weight=0` gives that SRResNet (the ablation: what the adversarial term adds).

    ganforge train configs/fashion_sr4_srgan.yaml
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import Config, net_names
from ganforge.core.distributed import DistInfo
from ganforge.core.stats import StatPlot
from ganforge.data import DATASETS
from ganforge.metrics.features import DomainCNN, extractor_for
from ganforge.nets import output_kind, sized
from ganforge.nets.registry import DISCRIMINATORS, GENERATORS
from ganforge.nets.srgan import scale_of
from ganforge.recipes.base import d_words, register
from ganforge.recipes.pix2pix import Pix2PixRecipe
from ganforge.recipes.translation import loss_plot


@register
class SRGANRecipe(Pix2PixRecipe):
    kind = "srgan"
    reads = frozenset({"loss.mse_weight", "loss.content_weight", "loss.adv_weight", "data.degrade",
                       "data.degrade_per"})

    def __init__(self, cfg: Config, G, D, held_out: dict, device: torch.device, dist: DistInfo = DistInfo()):
        super().__init__(cfg, G, D, held_out, device, dist)
        self.content_net, self.content_name = None, None
        if cfg.loss.content_weight > 0:
            if DATASETS[cfg.data.name].dry_run:  # --dry-run's random images: the code path, any weights
                net, self.content_name = DomainCNN(in_channels=cfg.data.channels), "untrained (dry run)"
            else:
                extractor, _ = extractor_for(cfg)  # there is one (check() said so); its file is read here
                net, self.content_name = extractor.net, extractor.name
            self.content_net = net.to(device).eval().requires_grad_(False)

    @classmethod
    def build_nets(cls, cfg: Config, in_channels: int, sample_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
        g, d = net_names(cfg)
        shape = tuple(sample_shape)
        G = sized(lambda c: GENERATORS[g].build(sample_shape=shape, width=c.model.width, out=output_kind(c, shape),
                                                scale=scale_of(c.data.degrade)), "G", cfg)
        D = sized(lambda c: DISCRIMINATORS[d].build(sample_shape=shape, width=c.model.width), "D", cfg)
        return G, D

    @classmethod
    def check(cls, cfg: Config) -> str | None:
        g, d = net_names(cfg)
        if (g, d) != ("srresnet", "srgan"):
            return f"train.recipe=srgan uses SRGAN's nets: model.G=srresnet, model.D=srgan (not {g} / {d})"
        if scale_of(cfg.data.degrade) not in (2, 4):
            return (f"train.recipe=srgan learns super-resolution: set data.degrade=down=4 or down=2"
                    f"{' (not ' + cfg.data.degrade + ')' if cfg.data.degrade else ''}")
        if DATASETS[cfg.data.name].kind != "image":
            return f"train.recipe=srgan upsamples images; data.name={cfg.data.name} is not images"
        if cfg.loss.kind not in ("ns", "minimax", "lsgan", "hinge"):
            return f"loss.kind={cfg.loss.kind}: srgan uses ns (the paper's), minimax, lsgan or hinge"
        spec = DATASETS[cfg.data.name]
        shipped = spec.feature_net not in (None, "inception-v3")
        if cfg.loss.content_weight > 0 and not spec.dry_run and not shipped and not cfg.eval.feature_net:
            return (f"loss.content_weight={cfg.loss.content_weight}: the content loss needs a domain feature net, and "
                    f"none is shipped for {cfg.data.name} data: train one (`ganforge featurenet train FOLDER`) and "
                    "name it in eval.feature_net, or set loss.content_weight=0")
        return None

    def _D(self, net, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return net(b)

    def _content(self, fake: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        to01 = (lambda t: (t + 1) / 2) if self.cfg.data.range == "signed" else (lambda t: t)
        with torch.no_grad():
            target = self.content_net.conv_features(to01(x))
        return F.mse_loss(self.content_net.conv_features(to01(fake)), target)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg, a, x = self.cfg, batch["a"], batch["x"]
        adversarial = cfg.loss.adv_weight > 0
        if adversarial:
            with self.autocast():
                fake = self.pG.run(a)
                logits_real, logits_fake = self.pD.run(x), self.pD.run(fake.detach())
            loss_D = cfg.loss.d_scale * self.loss.d(logits_real.float(), logits_fake.float())
            self.step(self.pD, loss_D)
            stats = self.d_stats(loss_D, logits_real.float(), logits_fake.float())
        else:  # SRResNet: G alone, D untouched
            stats = {}
        with self.freeze("D"):
            with self.autocast():
                fake = self.pG.run(a) if not adversarial else fake
                adv = self.loss.g(self.pD.frozen(fake).float()) if adversarial else fake.new_zeros(())
            fake = fake.float()
            mse = F.mse_loss(fake, x)
            content = self._content(fake, x) if self.content_net is not None else fake.new_zeros(())
            loss_G = cfg.loss.mse_weight * mse + cfg.loss.content_weight * content + cfg.loss.adv_weight * adv
            self.step(self.pG, loss_G)
        return {**stats, "loss_G": loss_G.detach(), "G_adv": adv.detach(), "MSE": mse.detach(),
                "content": content.detach()}

    def report_words(self, end: dict[str, float], value_range: str) -> list[str]:
        words = [f"At the end G's upsampled images were {end['MSE']:.4f} from the originals in mean squared pixel "
                 f"error (pixels in {'[-1, 1]' if value_range == 'signed' else '[0, 1]'})."] if "MSE" in end else []
        if self.content_name:
            words.append(f"The content loss compared the {self.content_name} net's last convolutional features.")
        return words + d_words(end)

    def stat_labels(self) -> dict[str, str]:
        return {**super().stat_labels(), "MSE": "MSE", "content": "content"}

    def stat_plots(self) -> tuple[StatPlot, ...]:
        return (loss_plot(("loss_D", "G_adv"), {"G_adv": "loss_G (adversarial part)"}),
                StatPlot("content.png", ("MSE", "content"), "loss", {"MSE": "pixel MSE to the original",
                                                                    "content": "content loss (feature MSE)"},
                         caption="G's distance to the originals: in pixels and in the domain net's features"),
                *self.loss.plots)
