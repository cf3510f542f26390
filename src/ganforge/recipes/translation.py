"""What the image-to-image recipes (pix2pix.py, cyclegan.py) share: their nets from the registry
(model.G: unet | resnet, model.D: patchgan), the checks on data and sizes, fixed inputs from the
held-out images, the rows of their sample grids, and a TranslatorHandle for sampling and export.

A batch is {"a": domain A images, "x": domain B images} (data/translation.py). Grids have three
rows of the same held-out images: input, output, and the target (pix2pix) or the reconstruction
(CycleGAN), so a person sees at once what the model did with each input.
"""

from __future__ import annotations

import torch
from torch import nn

from ganforge.config import Config, net_names
from ganforge.data.dataset import to_range
from ganforge.data.degrade import makes_holes
from ganforge.core.errors import ConfigError
from ganforge.generator import TranslatorHandle
from ganforge.losses import LOSSES
from ganforge.nets import output_kind, sample_shape_for, sized
from ganforge.nets.registry import DISCRIMINATORS, GENERATORS
from ganforge.nets.translation import MaskInput
from ganforge.recipes.base import LOSSES_CAPTION, RecipeBase
from ganforge.core.stats import StatPlot
from ganforge.data import DATASETS

GRID_COLUMNS = 8  # held-out inputs in a sample grid


def unet_depth(height: int, width: int) -> int:
    """Levels of a U-Net for H x W: as many halvings as both sides allow, at most 8 (the paper's 256 px)."""
    depth = 0
    while depth < 8 and height % 2 ** (depth + 1) == 0 and width % 2 ** (depth + 1) == 0:
        depth += 1
    return depth


def patch_layers(height: int, width: int) -> int:
    """Stride-2 layers of the PatchGAN D: n_layers 1, 2, 3 see 16, 34, 70 px (rf = (rf_next - 1) *
    stride + 4 through the 4 x 4 convs). The paper's 70 px patches are a quarter of its 256 px
    images; at our small sizes the smallest patch that still sees shapes (16 px) is half of a
    32 px image, and each size up keeps a patch at about half the side until 256 px."""
    side = min(height, width)
    return 1 if side < 64 else 2 if side < 128 else 3


class TranslationRecipe(RecipeBase):
    """Base of the translation recipes; `pairing` says which data they need."""

    pairing = "paired"
    norm = "batch"  # G's and D's normalisation (CycleGAN: instance)
    generator_player = "G"
    draws_from_latent = False  # images in, images out

    @classmethod
    def build_nets(cls, cfg: Config, in_channels: int, sample_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
        """One G (A -> B) and one D for this recipe (D sees `d_in` channels: see d_channels)."""
        g, d = net_names(cfg)
        _, H, W = sample_shape
        # sized: a width too large for this machine is refused with the key named, before any memory is taken
        holes = cfg.model.mask_input and makes_holes(cfg.data.degrade)  # G is told the holes: one more channel
        G = sized(lambda c: GENERATORS[g].build(sample_shape=sample_shape, width=c.model.width, out=output_kind(c, sample_shape),
                                                in_channels=in_channels + holes, depth=unet_depth(H, W), norm=cls.norm), "G", cfg)
        if holes:
            G = MaskInput(G)
        D = sized(lambda c: DISCRIMINATORS[d].build(sample_shape=sample_shape, width=c.model.width,
                                                    in_channels=cls.d_channels(sample_shape[0]), n_layers=patch_layers(H, W),
                                                    norm=cls.norm), "D", cfg)
        return G, D

    @classmethod
    def d_channels(cls, channels: int) -> int:
        return channels

    @classmethod
    def check(cls, cfg: Config) -> str | None:
        spec, (g, d) = DATASETS[cfg.data.name], net_names(cfg)
        names = [n for n, s in DATASETS.items() if s.translation == cls.pairing and not s.dry_run]
        paired_by_degrading = cls.pairing == "paired" and bool(cfg.data.degrade)
        if spec.translation != cls.pairing and not paired_by_degrading:
            also = " or data.degrade=... on any image data (restoration pairs)" if cls.pairing == "paired" else ""
            return (f"train.recipe={cls.kind} learns from {cls.pairing} images: use data.name="
                    f"{' or '.join(names)} (not {cfg.data.name}){also}")
        if g not in ("unet", "resnet") or d != "patchgan":
            return (f"train.recipe={cls.kind} needs an image-to-image G and a patch D: model.G=unet or resnet, "
                    f"model.D=patchgan (not {g} / {d})")
        if cfg.loss.kind not in ("ns", "minimax", "lsgan", "hinge"):
            return f"loss.kind={cfg.loss.kind}: translation recipes use ns, minimax, lsgan or hinge"
        if cfg.model.mask_input and not makes_holes(cfg.data.degrade):
            return ("model.mask_input=true gives G the mask of data.degrade's holes: set data.degrade=box, strokes, "
                    f"missing or masks=DIR (not {cfg.data.degrade or 'none'})")
        _, H, W = sample_shape_for(cfg)
        if g == "unet" and unet_depth(H, W) < 2:
            return (f"unet needs image sides divisible by 4 at least (by 32 for its 5 levels at 32 px): "
                    f"data.resolution={H}, data.image_width={W}")
        with torch.device("meta"):
            G, _ = cls.build_nets(cfg, cfg.data.channels, sample_shape_for(cfg))
        step = getattr(G, "size_multiple", 1)
        if H % step or W % step or (g == "unet" and unet_depth(H, W) < 2):
            return (f"{g} needs image sides that are multiples of {max(step, 4)}: data.resolution={H}, "
                    f"data.image_width={W} (e.g. 32 x 48)")
        return None

    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The first GRID_COLUMNS held-out A images (and their B images), the same every time."""
        held = self.held_out
        k = min(GRID_COLUMNS, len(held["a"]))
        inputs = {"a": self.to_float(held["a"][:k]), "x": self.to_float(held["x"][:k])}
        if "mask" in held:  # restoration pairs (data.degrade): which pixels are to be produced
            inputs["mask"] = held["mask"][:k].float().to(self.device)
        return inputs

    @property
    def inputs_caption(self) -> str:
        """Where the grids' inputs come from, for the report."""
        return f"inputs from {self.held_out.get('from', 'the held-out images')}"

    def grid_columns(self, inputs: dict) -> int:
        return len(inputs["a"])

    def to_float(self, images: torch.Tensor) -> torch.Tensor:
        return to_range(images, self.cfg.data.range).to(self.device)

    def generator(self) -> TranslatorHandle:
        return TranslatorHandle(self.players["G"].net, self.cfg, device=self.device, player="G")

    @classmethod
    def load_generator(cls, cfg: Config, nets: dict[str, dict], step: int, device: str = "cpu") -> TranslatorHandle:
        G = cls.build_G(cfg)
        _, state = cls.player_state(nets)
        G.load_state_dict(state)
        return TranslatorHandle(G.to(device).eval(), cfg, step, player="G")

    @classmethod
    def build_G(cls, cfg: Config) -> nn.Module:
        shape = sample_shape_for(cfg)
        return cls.build_nets(cfg, shape[0], shape)[0]

    def stat_labels(self) -> dict[str, str]:
        return {"loss_D": "loss_D", "loss_G": "loss_G", "D_acc": "acc(D)", **LOSSES[self.cfg.loss.kind].labels}


def held_out_of(data) -> dict:
    """The held-out images a translation dataset keeps aside (uint8 {"a", "x"})."""
    held = data.extra.get("held_out")
    if not held:
        raise ConfigError(f"{data.name} is not translation data (no held-out pairs)")
    return held


def loss_plot(keys: tuple[str, ...], labels: dict[str, str]) -> StatPlot:
    return StatPlot("losses.png", keys, "loss", labels, caption=LOSSES_CAPTION)
