"""Principal directions of a generator's latent space (GANSpace, Haerkoenen et al. 2020, for z-space
models): the sliders of the web explorer."""

from __future__ import annotations

import torch

from ganforge.generator import GeneratorHandle


def principal_directions(G: GeneratorHandle, k: int = 5, n: int = 1000, seed: int = 12345) -> torch.Tensor:
    """[k, z_dim] unit directions in z, the most image-changing first (GANSpace for z-space models):
    PCA of n generated images, then the z directions that best predict each component's coordinate
    (least squares, Z ~ coords @ B). Deterministic for a given generator; signs fixed so that each
    direction's largest entry is positive. A text-to-image G is held at its first recorded caption,
    so that the images vary by z alone."""
    caption = G.cfg.model.captions[0] if G.takes_text and G.cfg.model.captions else None
    inputs = G.inputs(n, seed=seed, text=caption)
    x = G.generate(inputs, batch=250).flatten(1).double()
    x = x - x.mean(0)
    k = max(0, min(k, x.shape[1], n - 1, G.cfg.model.z_dim))
    if k == 0:
        return torch.zeros(0, G.cfg.model.z_dim)
    U, S, _ = torch.linalg.svd(x, full_matrices=False)
    coords = U[:, :k] * S[:k]  # [n, k]: each image's coordinate along the top components
    B = torch.linalg.lstsq(coords, inputs["z"].double()).solution  # [k, z_dim]
    B = B / B.norm(dim=1, keepdim=True).clamp_min(1e-12)
    signs = torch.sign(B.gather(1, B.abs().argmax(1, keepdim=True)))
    return (B * signs).float()
