"""Sample grids during training: samples/step_XXXXXXX.png from the same fixed inputs every time."""

from __future__ import annotations

import torch

from ganforge.config import Config
from ganforge.core.images import save_image_grid, save_scatter
from ganforge.data import Dataset
from ganforge.engine.run import RunDir


def save_samples(x: torch.Tensor, path, data: Dataset, title: str, nrow: int | None = None):
    """A grid of images (`nrow` a row), or a scatter of toy points over the real ones."""
    if data.kind == "points":
        return save_scatter(x, path, real=data.samples(2000), centres=data.centres, title=title)
    return save_image_grid(x, path, data.value_range, nrow=nrow)


class SampleGrids:
    """samples/step_XXXXXXX.png from the same fixed inputs every time (rank 0 only)."""

    name = "samples"

    def __init__(self, cfg: Config, data: Dataset, recipe, run: RunDir):
        self.data, self.recipe, self.run = data, recipe, run
        g = torch.Generator().manual_seed(cfg.train.seed + 1)  # not the training RNG: sampling never perturbs it
        n = cfg.log.num_samples if data.kind == "image" else max(cfg.log.num_samples, 1000)
        self.fixed_inputs = recipe.fixed_inputs(n, g)
        self.num_reals = cfg.log.num_samples if data.kind == "image" else 2000
        self.nrow = recipe.grid_columns(self.fixed_inputs)
        self._last_step = None  # the step of the last grid drawn

    def state_dict(self) -> dict:
        return {"fixed_inputs": {k: v.cpu() for k, v in self.fixed_inputs.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.fixed_inputs = {k: v.to(self.fixed_inputs[k].device) for k, v in state["fixed_inputs"].items()}

    def on_start(self, trainer) -> None:
        reals = self.run / "samples" / "reals.png"
        if not reals.is_file():
            save_samples(self.data.samples(self.num_reals), reals, self.data, "real data")
        if trainer.step == 0:
            self.on_sample(trainer)

    def on_sample(self, trainer) -> None:
        if trainer.step == self._last_step:
            return  # the end of training asks again after an epoch-end grid of the same step
        self._last_step = trainer.step
        x = self.recipe.sample(self.fixed_inputs)
        path = save_samples(x, self.run / "samples" / f"step_{trainer.step:07d}.png", self.data,
                            f"step {trainer.step}", self.nrow)
        self.run.image_written("samples (fixed inputs)", path, trainer.step)
