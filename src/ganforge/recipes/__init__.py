"""Recipes: what one training step does. The only place optimizers step."""

from __future__ import annotations

import torch

from ganforge.config import Config
from ganforge.data import InMemoryDataset
from ganforge.distributed import DistInfo
from ganforge.nets import build_D, build_G
from ganforge.recipes.gan import GANRecipe


def build_recipe(cfg: Config, data: InMemoryDataset, device: torch.device, dist: DistInfo = DistInfo()) -> GANRecipe:
    G = build_G(cfg, data.sample_shape)
    D = build_D(cfg, data.sample_shape)
    if hasattr(G, "init_output_bias"):
        G.init_output_bias(data.x.mean(0))
    return GANRecipe(cfg, G.to(device), D.to(device), device, dist)
