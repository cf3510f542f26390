"""Recipes: what one training step does. The only place optimizers step.

`RECIPES[train.recipe]` is the registry; a new family is one file here that subclasses
`RecipeBase` (recipes/base.py), declares its players and writes its `train_step`, plus an entry below.
"""

from __future__ import annotations

import torch

from ganforge.config import Config
from ganforge.core.distributed import DistInfo
from ganforge.recipes.base import Player, Recipe, RecipeBase
from ganforge.recipes.cyclegan import CycleGANRecipe
from ganforge.recipes.gan import GANRecipe
from ganforge.recipes.pix2pix import Pix2PixRecipe

RECIPES: dict[str, type[RecipeBase]] = {cls.kind: cls for cls in (GANRecipe, Pix2PixRecipe, CycleGANRecipe)}


def build_recipe(cfg: Config, data, device: torch.device, dist: DistInfo = DistInfo()) -> Recipe:
    return RECIPES[cfg.train.recipe].build(cfg, data, device, dist)


__all__ = ["RECIPES", "Player", "Recipe", "RecipeBase", "build_recipe"]
