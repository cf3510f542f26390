"""BiGAN (Donahue et al. 2017) / ALI (Dumoulin et al. 2017): a generator G: z -> x, an encoder
E: x -> z and a discriminator D(x, z) of joint pairs, trained together.

D tells real pairs (x, E(x)) from generated ones (G(z), z); G and E are trained to fool it, so at
the optimum E inverts G. Per step, as the authors' code does it (`jeffdonahue/bigan`, BiGAN
objective): one forward of G, E and D (real and generated pairs through D separately), then

    D:     0.5 [-log D(x, E(x))] + 0.5 [-log (1 - D(G(z), z))]
    G, E:  0.5 [-log (1 - D(x, E(x)))] + 0.5 [-log D(G(z), z)]      (the labels flipped)

with each player's gradient of its own objective at the same parameters, applied at once. The
reference steps G and E with one Adam; Adam is per parameter, so G's and E's own Adams with the
same settings make the same update.

    ganforge train configs/mnist_bigan.yaml
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import Config, net_names
from ganforge.core import latent
from ganforge.core.distributed import DistInfo
from ganforge.core.stats import StatPlot
from ganforge.generator import GeneratorHandle
from ganforge.nets import build_D, build_E, build_G, check_encoder, joint_D, sample_shape_for
from ganforge.recipes.base import LOSSES_CAPTION, RecipeBase, d_words, register

GRID_COLUMNS = 8


@register
class BiGANRecipe(RecipeBase):
    kind = "bigan"
    reads = frozenset({"model.E", "model.E_width", "train.ema_halflife_kimg"})
    generator_player = "G"
    inputs_caption = "rows: generated images G(z); real images x and their reconstructions G(E(x))"

    @classmethod
    def check(cls, cfg: Config) -> str | None:
        if not joint_D(cfg):
            return (f"train.recipe=bigan needs a discriminator of (x, z) pairs: model.D=bigan (not "
                    f"{net_names(cfg)[1]})")
        if cfg.model.conditional != "none":
            return "train.recipe=bigan is unconditional: set model.conditional=none"
        if cfg.train.precision == "fp16":  # G and E share one loss: one loss scale, not two
            return "train.recipe=bigan trains in fp32 or bf16: set train.precision=bf16 or fp32 (not fp16)"
        return check_encoder(cfg)

    @classmethod
    def build(cls, cfg: Config, data, device: torch.device, dist: DistInfo = DistInfo()) -> "BiGANRecipe":
        shape = data.sample_shape  # initial weights drawn in the order G, E, D
        G, E, D = build_G(cfg, shape), build_E(cfg, shape, cfg.model.z_dim), build_D(cfg, shape)
        return cls(cfg, G, E, D, data.samples(GRID_COLUMNS), device, dist)

    @classmethod
    def load_generator(cls, cfg: Config, nets: dict[str, dict], step: int, device: str = "cpu") -> GeneratorHandle:
        shape = sample_shape_for(cfg)
        G = build_G(cfg, shape)
        player, state = cls.player_state(nets)
        G.load_state_dict(state)
        handle = GeneratorHandle(G.to(device).eval(), cfg, step, player=player)
        encoder = "E_ema" if "E_ema" in nets else "E"
        if encoder in nets:
            E = build_E(cfg, shape, cfg.model.z_dim)
            E.load_state_dict(nets[encoder])
            handle.E = E.to(device).eval()
        return handle

    def __init__(self, cfg: Config, G: nn.Module, E: nn.Module, D: nn.Module, reals: torch.Tensor,
                 device: torch.device, dist: DistInfo = DistInfo()):
        super().__init__(cfg, device, dist)
        ema = cfg.train.ema_halflife_kimg
        self.pG = self.add_player("G", G, cfg.optim.lr_G, ema)
        self.pE = self.add_player("E", E, cfg.optim.lr_G, ema)
        self.pD = self.add_player("D", D, cfg.optim.lr_D)
        self.reals = reals
        self.z_rng = torch.Generator().manual_seed(cfg.train.seed + 1_000_003)

    def _train_z(self, n_local: int) -> torch.Tensor:
        m, world, rank = self.cfg.model, self.dist.world_size, self.dist.rank
        z = latent.sample_z(n_local * world, m.z_dim, m.z_dist, self.z_rng).to(self.device)
        return z[rank * n_local:(rank + 1) * n_local]

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x_real = batch["x"]
        z = self._train_z(len(x_real))
        pG, pE, pD = self.pG, self.pE, self.pD
        with self.autocast():
            x_fake, z_hat = pG.run(z), pE.run(x_real)
            logits_real = pD.run(x_real, z_hat).float()
            logits_fake = pD.run(x_fake, z).float()
        # -log D = softplus(-logit), -log (1 - D) = softplus(logit)
        loss_D = 0.5 * (F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean())
        loss_GE = 0.5 * (F.softplus(logits_real).mean() + F.softplus(-logits_fake).mean())
        for p in (pD, pG, pE):
            self.prepare(p)
        # `inputs=` keeps each objective's gradient to its own players' parameters.
        ge = [*self.pG.net.parameters(), *self.pE.net.parameters()]
        pG.scaler.scale(loss_GE).backward(inputs=ge, retain_graph=True)
        pD.scaler.scale(loss_D).backward(inputs=list(self.pD.net.parameters()))
        for p in (pD, pG, pE):
            self.apply(p)
        self.update_ema(pG)
        self.update_ema(pE)
        with torch.no_grad():
            acc = 0.5 * ((logits_real > 0).float().mean() + (logits_fake < 0).float().mean())
        return {"loss_D": loss_D.detach(), "loss_G": loss_GE.detach(), "D_acc": acc,
                "D_x": torch.sigmoid(logits_real).mean().detach(), "D_G_z": torch.sigmoid(logits_fake).mean().detach()}

    # --- what the run shows -----------------------------------------------------------------------
    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        m = self.cfg.model
        k = min(GRID_COLUMNS, len(self.reals))
        return {"z": latent.sample_z(max(k, n - 2 * k), m.z_dim, m.z_dist, generator).to(self.device),
                "x": self.reals[:k].to(self.device)}

    def grid_columns(self, inputs: dict) -> int:
        return len(inputs["x"])

    def sample(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        G = self.generator()
        x = inputs["x"]
        return torch.cat([G({"z": inputs["z"]}), x.float(), G(G.encode(x))]).to(self.device)

    def generator(self) -> GeneratorHandle:
        ema = self.pG.ema is not None
        return GeneratorHandle(self.pG.sampler, self.cfg, device=self.device, player="G" + ("_ema" if ema else ""),
                               E=self.pE.sampler)

    def stat_labels(self) -> dict[str, str]:
        return {"loss_D": "loss_D", "loss_G": "loss_GE", "D_acc": "acc(D)", "D_x": "D(x,E(x))", "D_G_z": "D(G(z),z)"}

    def stat_plots(self) -> tuple[StatPlot, ...]:
        return (StatPlot("losses.png", ("loss_D", "loss_G"), "loss", {"loss_G": "loss_G = loss_E"},
                         caption=LOSSES_CAPTION),
                StatPlot("d_outputs.png", ("D_x", "D_G_z"), "D's output", {"D_x": "D(x, E(x))", "D_G_z": "D(G(z), z)"},
                         ylim=(0, 1), hline=(0.5, "equilibrium")))

    def report_words(self, end: dict[str, float], value_range: str) -> list[str]:
        return [w.replace("D(x)", "D(x, E(x))").replace("D(G(z))", "D(G(z), z)") for w in d_words(end)]

    # --- checkpoint state ---------------------------------------------------------------------------
    def extra_state(self) -> dict:
        return {"z_rng": self.z_rng.get_state()}

    def load_extra_state(self, state: dict) -> None:
        self.z_rng.set_state(state["z_rng"])
