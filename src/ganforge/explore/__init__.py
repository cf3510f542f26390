"""Exploring a trained generator: latent walks, style mixing, truncation sweeps, principal
directions, projection (an image back to its latent) and inpainting through G. Each takes a generator handle; the api,
the run report and the web explorer share them."""

from ganforge.explore.directions import principal_directions
from ganforge.explore.inpaint import Inpainting, inpaint
from ganforge.explore.mixing import style_mixing
from ganforge.explore.project import Projection, domain_features, project
from ganforge.explore.truncation import SWEEP_PSI, truncation_sweep
from ganforge.explore.walks import interp, z_path

__all__ = ["interp", "z_path", "style_mixing", "truncation_sweep", "SWEEP_PSI", "principal_directions", "project",
           "Projection", "domain_features", "inpaint", "Inpainting"]
