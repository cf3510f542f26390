"""Style mixing (Karras et al. 2019): coarse styles from one seed, fine styles from another."""

from __future__ import annotations

from pathlib import Path

import torch

from ganforge.core import paths
from ganforge.core.errors import ConfigError
from ganforge.core.images import save_image_grid
from ganforge.generator import GeneratorHandle


def style_mixing(G: GeneratorHandle, out: str | Path, row_seeds=(0, 1, 2, 3),
                 col_seeds=(4, 5, 6, 7), cut: int | None = None, psi: float | None = None) -> Path:
    """The StyleGAN paper's style-mixing figure at our resolution: the first row shows the images
    of `col_seeds`, the first column those of `row_seeds`, and each cell takes its coarse styles
    (the layers before `cut`: pose, shape) from its row's seed and the fine ones (from `cut` on:
    stroke, texture) from its column's. Default cut: half the layers."""
    if not G.num_ws:
        raise ConfigError("style mixing needs a style-based generator (model.arch=stylegan); this one maps z to "
                          "images directly")
    if not row_seeds or not col_seeds:
        raise ConfigError("style mixing needs at least one row seed and one column seed")
    num_ws = G.num_ws
    cut = num_ws // 2 if cut is None else cut
    if not 1 <= cut < num_ws:
        raise ConfigError(f"--cut {cut}: the layer where fine styles start, 1 to {num_ws - 1}")
    out = paths.output_file(out, "--out", paths.IMAGE_SUFFIXES)

    def ws(seeds):
        return G.styles(G.with_psi({"z": torch.cat([G.inputs(1, seed)["z"] for seed in seeds])}, psi))

    w_rows, w_cols = ws(row_seeds), ws(col_seeds)
    top = G({"ws": w_cols})
    cells = [torch.cat([G({"ws": w_rows[r:r + 1]}), G({"ws": G.mix_styles(w_rows[r:r + 1], w_cols, cut)})])
             for r in range(len(row_seeds))]
    blank = torch.full_like(top[:1], -1.0 if G.value_range == "signed" else 0.0)
    grid = torch.cat([blank, top, *cells]).float().cpu()
    return save_image_grid(grid, out, G.value_range, nrow=len(col_seeds) + 1)
