"""The truncation sweep: the same latents pulled toward the mean latent by a row of psi values."""

from __future__ import annotations

from pathlib import Path

import torch

from ganforge.core import paths
from ganforge.core.images import save_image_grid
from ganforge.generator import GeneratorHandle


SWEEP_PSI = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)  # rows of the report's truncation grid


def truncation_sweep(G: GeneratorHandle, out: str | Path, n: int = 8, seed: int = 0,
                     psis=SWEEP_PSI) -> Path | None:
    """A grid with a row per psi (truncation toward the mean latent: 1 leaves the latents, 0 gives
    every column the mean latent) and a column per latent: the same seeds, so each column shows one
    sample trading variety for typicality. None for generators of 2-D points."""
    if G.is_points:
        return None
    rows = [G.sample(n, seed=seed, psi=p) for p in psis]
    return save_image_grid(torch.cat(rows), paths.output_file(out, "--out", paths.IMAGE_SUFFIXES), G.value_range, nrow=n)
