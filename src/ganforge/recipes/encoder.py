"""The latent regressor: an encoder E learnt after the fact for a trained, frozen generator G.

Goodfellow et al. 2014 (section 7, extension 2): "learned approximate inference can be performed
by training an auxiliary network to predict z given x". Each step draws latents, makes their
images with G (eval mode: what a user samples) and regresses E(G(z)) onto the latent with a mean
squared error. For a style-based G the target is its intermediate latent instead
(`model.encoder_space`): w (one for every layer) or w+ (one per layer; the pairs are made with
style mixing at a random layer, so that E sees images whose layers disagree).

    ganforge train configs/mnist_encoder.yaml model.G_from=runs/00001-mnist_dcgan

G comes from `model.G_from` (a run folder, checkpoint or export); its data and model settings
become this run's (`complete`), so the run's config, checkpoints and export describe G and E
together and `ganforge sample` / `project` take the run like any other. The real data is not
trained on: it shows how well E inverts G on real images (the `rec` statistic: the pixel error
of G(E(x)) against x, over the same error against another real image, the `EGr / EGr_b` ratio of
the BiGAN code; below 1 means the reconstruction resembles its own image more than another one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforge import checkpoint
from ganforge.config import Config, from_dict, to_dict
from ganforge.core import latent
from ganforge.core.distributed import DistInfo
from ganforge.core.errors import CheckpointError, ConfigError
from ganforge.core.stats import StatPlot
from ganforge.generator import GeneratorHandle
from ganforge.nets import build_E, build_G, check_encoder, class_count, sample_shape_for
from ganforge.recipes.base import RECIPES, RecipeBase, register

OWN_MODEL_KEYS = ("E", "E_width", "G_from", "encoder_space")  # model keys of the encoder run itself
REAL_CHECKS = 16  # real images a step reconstructs for the `rec` statistic (no gradient)
GRID_COLUMNS = 8


def source_config(path: str) -> dict:
    """The embedded config of the generator at `path`, with the path named in any error."""
    try:
        cfg_dict, _, _ = checkpoint.load_generator_source(path)
    except FileNotFoundError:
        raise ConfigError(f"model.G_from={path}: not found (give a run folder, a checkpoint or an export)") from None
    except CheckpointError as e:
        raise ConfigError(f"model.G_from={path}: {e}") from None
    return cfg_dict


@register
class LatentRegressorRecipe(RecipeBase):
    kind = "encoder"
    reads = frozenset({"model.G_from", "model.encoder_space", "model.E", "model.E_width", "model.conditional"})
    generator_player = "G"
    inputs_caption = ("rows: real images, their reconstructions G(E(x)), generated images G(z), and "
                      "their reconstructions G(E(G(z)))")

    @classmethod
    def complete(cls, cfg: Config) -> Config:
        """This run's config with G's data and model sections (the encoder's own model keys kept)."""
        if not cfg.model.G_from:
            raise ConfigError("train.recipe=encoder learns to invert a trained generator: set model.G_from=RUN "
                              "(a run folder, a checkpoint or an export)")
        source = source_config(cfg.model.G_from)
        recipe = source.get("train", {}).get("recipe", "gan")
        if recipe not in RECIPES or not RECIPES[recipe].draws_from_latent:
            raise ConfigError(f"model.G_from={cfg.model.G_from}: a {recipe} model; an encoder inverts a generator "
                              "that draws from a latent (train.recipe=gan or bigan)")
        d = to_dict(cfg)
        own = {k: d["model"][k] for k in OWN_MODEL_KEYS}
        d["data"], d["model"] = source["data"], {**source["model"], **own}
        return from_dict(d, f"model.G_from={cfg.model.G_from}")

    @classmethod
    def check(cls, cfg: Config) -> str | None:
        if not cfg.model.G_from:
            return "train.recipe=encoder needs model.G_from=RUN: the trained generator to invert"
        if cfg.model.encoder_space != "z":
            with torch.device("meta"):
                G = build_G(cfg, sample_shape_for(cfg))
            if not hasattr(G, "num_ws"):
                return (f"model.encoder_space={cfg.model.encoder_space}: only a style-based generator has a w "
                        "space; use model.encoder_space=z")
        return check_encoder(cfg)

    @classmethod
    def build(cls, cfg: Config, data, device: torch.device, dist: DistInfo = DistInfo()) -> "LatentRegressorRecipe":
        _, nets, _ = checkpoint.load_generator_source(cfg.model.G_from)
        G = RECIPES["gan"].load_generator(cfg, nets, 0, "cpu").G  # its EMA when it has one
        handle = GeneratorHandle(G, cfg)
        E = build_E(cfg, data.sample_shape, handle.space_size(cfg.model.encoder_space))
        return cls(cfg, G, E, data.samples(GRID_COLUMNS), device, dist)

    @classmethod
    def load_generator(cls, cfg: Config, nets: dict[str, dict], step: int, device: str = "cpu") -> GeneratorHandle:
        handle = RECIPES["gan"].load_generator(cfg, nets, step, device)
        if "E" in nets:  # an export copied without its encoder file still samples
            E = build_E(cfg, sample_shape_for(cfg), handle.space_size(cfg.model.encoder_space))
            E.load_state_dict(nets["E"])
            handle.E = E.to(device).eval()
        return handle

    def __init__(self, cfg: Config, G: nn.Module, E: nn.Module, reals: torch.Tensor, device: torch.device,
                 dist: DistInfo = DistInfo()):
        super().__init__(cfg, device, dist)
        self.G = G.to(device).eval().requires_grad_(False)
        self.pE = self.add_player("E", E, cfg.optim.lr_G)
        self.space, self.K = cfg.model.encoder_space, class_count(cfg)
        self.handle = GeneratorHandle(self.G, cfg, device=device)
        self.reals = reals
        self.z_rng = torch.Generator().manual_seed(cfg.train.seed + 1_000_003)

    # --- training pairs ---------------------------------------------------------------------------
    def _latents(self, n: int) -> dict:
        """G's inputs for n training pairs, this rank's slice of the global batch."""
        m, world, rank = self.cfg.model, self.dist.world_size, self.dist.rank
        z = latent.sample_z(n * world, m.z_dim, m.z_dist, self.z_rng)[rank * n:(rank + 1) * n]
        inputs = {"z": z}
        if self.K:
            inputs["c"] = torch.randint(self.K, (n * world,), generator=self.z_rng)[rank * n:(rank + 1) * n]
        if self.space == "w+":  # style mixing at a random layer, so that the layers' styles differ
            z2 = latent.sample_z(n * world, m.z_dim, m.z_dist, self.z_rng)[rank * n:(rank + 1) * n]
            cut = torch.randint(1, self.handle.num_ws, (n * world, 1, 1), generator=self.z_rng)[rank * n:(rank + 1) * n]
            ws, ws2 = self.handle.styles({"z": z}), self.handle.styles({"z": z2})
            layer = torch.arange(self.handle.num_ws, device=ws.device)[None, :, None]
            inputs = {"ws": torch.where(layer < cut.to(ws.device), ws, ws2)}
        elif self.space == "w":
            inputs = {"ws": self.handle.styles(inputs)}
        return inputs

    def _target(self, inputs: dict) -> torch.Tensor:
        if self.space == "z":
            return inputs["z"].to(self.device)
        ws = inputs["ws"].to(self.device)
        return ws[:, 0] if self.space == "w" else ws.flatten(1)

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        n = len(batch["x"])
        inputs = self._latents(n)
        x_fake = self.handle(inputs)  # eval mode, no gradient: the images users sample
        with self.autocast():
            code = self.pE.run(x_fake)
        loss_E = F.mse_loss(code.float(), self._target(inputs))
        self.step(self.pE, loss_E)
        return {"loss_E": loss_E.detach(), **self._real_reconstruction(batch)}

    @torch.no_grad()
    def _real_reconstruction(self, batch: dict) -> dict[str, torch.Tensor]:
        """rec: |G(E(x)) - x|^2 over |G(E(x)) - x'|^2 (x' another real image) on a few real images."""
        x = batch["x"][:REAL_CHECKS]
        if len(x) < 2 or (self.K and "c" not in batch):  # a conditional G needs the real images' classes
            return {}
        x_rec = self._reconstruct(x, batch["c"][:len(x)] if self.K else None)
        own = (x_rec - x).flatten(1).pow(2).sum(1)
        other = (x_rec - x.roll(1, 0)).flatten(1).pow(2).sum(1)
        return {"rec": (own.mean() / other.mean().clamp_min(1e-12)).detach()}

    def _reconstruct(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        was_training = self.pE.net.training
        self.pE.net.eval()
        try:
            code = self.pE.net(x).float()
        finally:
            self.pE.net.train(was_training)
        return self.handle(self.handle.latent_inputs(code, self.space, c))

    # --- what the run shows -----------------------------------------------------------------------
    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        k = min(GRID_COLUMNS, len(self.reals))
        m = self.cfg.model
        inputs = {"x": self.reals[:k].to(self.device), "z": latent.sample_z(k, m.z_dim, m.z_dist, generator)}
        if self.K:
            inputs["c"] = torch.arange(k) % self.K
        return inputs

    def grid_columns(self, inputs: dict) -> int:
        return len(inputs["x"])

    @torch.no_grad()
    def sample(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        c = inputs.get("c")
        x_fake = self.handle({k: v for k, v in inputs.items() if k in ("z", "c")})
        # real images of a conditional model: reconstructed with the class of the generated row
        rows = [inputs["x"], self._reconstruct(inputs["x"], c), x_fake, self._reconstruct(x_fake, c)]
        return torch.cat([r.to(self.device).float() for r in rows])

    def generator(self) -> GeneratorHandle:
        return GeneratorHandle(self.G, self.cfg, device=self.device, player="G", E=self.pE.net)

    def stat_labels(self) -> dict[str, str]:
        return {"loss_E": "loss_E", "rec": "rec(x)"}

    def stat_plots(self) -> tuple[StatPlot, ...]:
        return (StatPlot("losses.png", ("loss_E",), "loss", caption=f"E's mean squared error in {self.space}"),
                StatPlot("reconstruction.png", ("rec",), "error ratio",
                         hline=(1.0, "another image"),
                         caption="|G(E(x)) - x|^2 over |G(E(x)) - x'|^2 on real images (1: no better than "
                                 "another image)"))

    def report_words(self, end: dict[str, float], value_range: str) -> list[str]:
        words = [f"At the end E's mean squared error in {self.space} was {end['loss_E']:.4f}."] if "loss_E" in end else []
        if "rec" in end:
            words.append(f"Real images reconstructed through G(E(x)) were {end['rec']:.2f} times as far from their "
                         "own image as from another real image (lower is better; 1 means no better than chance).")
        return words

    # --- checkpoint state: G travels with E ------------------------------------------------------
    def state_dict(self) -> dict:
        return {**super().state_dict(), "frozen": {"G": self.G.state_dict()},
                "z_rng": self.z_rng.get_state()}

    def load_extra_state(self, state: dict) -> None:
        self.G.load_state_dict(state["frozen"]["G"])
        self.z_rng.set_state(state["z_rng"])
