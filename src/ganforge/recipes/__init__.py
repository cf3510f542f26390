"""Recipes: what one training step does. The only place optimizers step.

`RECIPES[train.recipe]` is the registry (recipes/base.py); a new family is one file here whose
`@register`ed class subclasses `RecipeBase`, declares its players and writes its `train_step`.
"""

from __future__ import annotations

import torch

from ganforge.config import Config
from ganforge.core.distributed import DistInfo
from ganforge.core.registry import import_all
from ganforge.recipes import gan, pix2pix, cyclegan  # noqa: F401, I001  (each registers its recipe)
from ganforge.recipes.base import RECIPES, Player, Recipe, RecipeBase, register

import_all(__name__, __path__)  # any other module of this package (a recipe added as one file)


def build_recipe(cfg: Config, data, device: torch.device, dist: DistInfo = DistInfo()) -> Recipe:
    return RECIPES[cfg.train.recipe].build(cfg, data, device, dist)


__all__ = ["RECIPES", "Player", "Recipe", "RecipeBase", "build_recipe", "register"]
