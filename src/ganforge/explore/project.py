"""Projection: the latent whose image reconstructs a given one, found by gradient descent.

The reference is StyleGAN2-ADA's projector.py (Karras et al. 2020): start at the mean latent (or,
here, at an encoder's guess), optimise with Adam under a learning rate that ramps up and then
down, add decaying noise to the latent early on so the search is not stuck at its start, and for
a style-based G optimise its per-layer noise maps too, with their regulariser (the maps'
autocorrelation at every scale, weight 1e5) and renormalised after each step. The reference
measures the distance with VGG16 LPIPS, which cannot be had offline; ganforge uses a pixel term
plus the distance in a domain feature net's features (the shipped MNIST / Fashion-MNIST nets or a
user's `featurenet`), each named in the result:

    distance = pixel_weight * mean (x_rec - x)^2 + feature_weight * |f(x_rec) - f(x)|^2 / 128

with f the feature net's 128-d penultimate layer on images in [0, 1]. Latents in z are kept on
the sphere of radius sqrt(z_dim) (where normal latents of that size live) or, for uniform latents,
in their box.

Spaces: z (every generator), w (a style-based G: one style for every layer) and w+ (one per
layer, the most expressive, and the furthest from what G draws). A conditional G takes the class
given, or searches it: a short projection for every class, then the full one from the best.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from ganforge.core import latent
from ganforge.core.errors import ConfigError, GanforgeError
from ganforge.core.rng import check_seed
from ganforge.generator import GeneratorHandle, noise_layers, noise_maps
from ganforge.metrics.features import extractor_for

SPACES = ("z", "w", "w+")
INITS = ("mean", "encoder")
NOISE_REGULARIZE = 1e5  # the reference's noise_regularize_weight
INITIAL_NOISE = 0.05  # the latent noise at the start, in units of the latents' spread (reference: 0.05)
NOISE_RAMP = 0.75  # the fraction of the steps over which that noise decays to 0
LR_RAMPUP, LR_RAMPDOWN = 0.05, 0.25


@dataclass
class Projection:
    """Latents [N, size] in `space` (with the classes `c` of a conditional G and, for a style-based
    G, its optimised noise maps), their reconstructions and the distance each reached."""
    space: str
    latent: torch.Tensor
    x: torch.Tensor  # the reconstructions, [N, C, H, W] in the data's range
    pixel: torch.Tensor  # [N] mean squared pixel error of each reconstruction
    feature: torch.Tensor | None  # [N] squared feature distance (None without a feature net)
    c: torch.Tensor | None = None
    noise: dict[str, torch.Tensor] = field(default_factory=dict)  # "noise<i>" -> [N, 1, s, s]
    history: list[float] = field(default_factory=list)  # the mean distance at every step
    loss: torch.Tensor | None = None  # [N] the whole distance each image reached

    def inputs(self, G: GeneratorHandle) -> dict:
        """The generator inputs that redraw the reconstructions."""
        return {**G.latent_inputs(self.latent, self.space, self.c), **self.noise}


@dataclass
class Distance:
    """What a search minimises for each image, given G's image x_rec and the target x:

        pixel_weight * pixel + feature_weight * feature + prior_weight * prior

    pixel: the mean squared error, or, with `context` weights [N, 1, H, W], Yeh et al.'s context
    loss sum |W (x_rec - x)| (only the pixels with weight count: inpainting's known pixels);
    feature: the squared distance in a domain net's features (`features`: images in [0, 1] -> vectors);
    prior: `prior(x_rec, c)` [N], how unlikely D finds x_rec (inpainting's perceptual loss)."""
    features: Callable[[torch.Tensor], torch.Tensor] | None = None
    pixel_weight: float = 1.0
    feature_weight: float = 1.0
    context: torch.Tensor | None = None
    prior: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor] | None = None
    prior_weight: float = 0.0

    def total(self, pixel: torch.Tensor, feature: torch.Tensor | None, prior: torch.Tensor | None) -> torch.Tensor:
        loss = self.pixel_weight * pixel
        if feature is not None:
            loss = loss + self.feature_weight * feature
        if prior is not None:
            loss = loss + self.prior_weight * prior
        return loss


def domain_features(G: GeneratorHandle, feature_net: str | None = None) -> tuple[Callable | None, str]:
    """(images in [0, 1] -> 128-d features, its name) for the distance: `feature_net` (a
    `ganforge featurenet train` file), else the run's eval.feature_net, else the net shipped for
    its dataset (MNIST, Fashion-MNIST); (None, why) where there is none (the pixel term alone)."""
    extractor, why = extractor_for(G.cfg, feature_net)
    if extractor is None:
        return None, f"pixels only: {why}"
    net = extractor.net.to(G.device).eval().requires_grad_(False)
    return net.features, f"pixels + {extractor.name} features"


def check_choice(space: str, init: str, G: GeneratorHandle) -> None:
    if space not in SPACES:
        raise ConfigError(f"--space {space}: one of {', '.join(SPACES)}")
    if init not in INITS:
        raise ConfigError(f"--init {init}: one of {', '.join(INITS)}")
    if not G.takes_latent or G.is_points:
        raise ConfigError("projection finds the latent of an image: this model does not draw images from latents")
    if G.takes_text:
        raise ConfigError("projection of an image into a text-to-image model is not supported: its images depend "
                          "on a caption as well as the latent (sample or interp with --text instead)")
    G.space_size(space)  # refuses w / w+ for a generator without styles
    if init == "encoder" and G.E is None:
        raise ConfigError("--init encoder: this model has no encoder; train one (train.recipe=encoder "
                          "model.G_from=RUN) or use --init mean")
    if init == "encoder" and G.encoder_space != "z" and space == "z":
        raise ConfigError(f"--init encoder: this model's encoder predicts {G.encoder_space}, not z: "
                          f"use --space {G.encoder_space}")
    if init == "encoder" and G.encoder_space == "z" and space != "z":
        raise ConfigError("--init encoder: this model's encoder predicts z: use --space z")


def _start(G: GeneratorHandle, x: torch.Tensor, space: str, init: str, c: torch.Tensor | None) -> torch.Tensor:
    """The latents the search starts from, [N, size]."""
    n = len(x)
    if init == "encoder":
        inputs = G.encode(x, c)
        if space == "z":
            return inputs["z"]
        ws = inputs["ws"]
        return ws[:, 0] if space == "w" else ws.flatten(1)
    if space == "z":
        return torch.zeros(n, G.cfg.model.z_dim)
    w_avg = G.G.w_avg.detach().float().cpu()
    return w_avg.repeat(n, G.num_ws if space == "w+" else 1)


def _spread(G: GeneratorHandle, space: str) -> float:
    """The scale of the search noise: in w, the reference's w_std (the root mean square distance of
    w from its mean, over 1000 latents: the noise on every coordinate is this times the factor);
    in z, where the reference has no projector, one standard deviation of z per coordinate."""
    if space == "z":
        return 1.0
    with torch.no_grad():
        w = G.styles(G.inputs(1000, seed=123_456))[:, 0]
    return float((w - w.mean(0)).pow(2).sum(1).mean().sqrt())


def _noise_penalty(maps: list[torch.Tensor]) -> torch.Tensor:
    """The reference's regulariser: squared autocorrelation of each noise map at one-pixel shifts,
    at every scale down to 8 x 8 (the map average-pooled by 2 each time), image by image (summed
    over the batch, so that an image's projection does not depend on the others beside it)."""
    total = maps[0].new_zeros(())
    for noise in maps:
        while True:
            total = total + ((noise * noise.roll(1, 3)).mean((1, 2, 3)).pow(2).sum()
                             + (noise * noise.roll(1, 2)).mean((1, 2, 3)).pow(2).sum())
            if noise.shape[-1] <= 8:
                break
            noise = F.avg_pool2d(noise, 2)
    return total


def _to01(x: torch.Tensor, value_range: str) -> torch.Tensor:
    return (x + 1) / 2 if value_range == "signed" else x


def project(G: GeneratorHandle, x: torch.Tensor, space: str = "z", steps: int = 200, init: str = "mean",
            c: torch.Tensor | None = None, features: Callable[[torch.Tensor], torch.Tensor] | None = None,
            pixel_weight: float = 1.0, feature_weight: float = 1.0, lr: float = 0.1, seed: int = 0,
            optimize_noise: bool = True, progress: Callable[[int, float], None] | None = None) -> Projection:
    """Latents of images x [N, C, H, W] (in the data's range) under G. `features` maps images in
    [0, 1] to feature vectors (a domain feature net); without it the distance is the pixel term."""
    check_choice(space, init, G)
    check_weights(steps, pixel_weight, feature_weight)
    check_seed(seed)
    return search(G, x, space, steps, init, c, Distance(features, pixel_weight, feature_weight), lr, seed,
                  optimize_noise, progress)


def search(G: GeneratorHandle, x: torch.Tensor, space: str, steps: int, init: str, c: torch.Tensor | None,
           distance: Distance, lr: float = 0.1, seed: int = 0, optimize_noise: bool = True,
           progress: Callable[[int, float], None] | None = None) -> Projection:
    """The latents that bring G's images closest to x under `distance`; a conditional G without
    classes given searches them first (search_class)."""
    offset = 0
    if G.num_classes and c is None:
        c = search_class(G, x, space, steps, init, distance, lr, seed, progress)
        offset = search_steps(G, steps)
    report = None if progress is None else (lambda step, loss: progress(offset + step, loss))
    return _search(G, x, space, steps, init, c, distance, lr, seed, optimize_noise and space != "z", report)


def check_weights(steps: int, pixel_weight: float, feature_weight: float) -> None:
    if steps < 1:
        raise ConfigError(f"--steps {steps}: at least 1")
    for name, value in (("--pixel-weight", pixel_weight), ("--feature-weight", feature_weight)):
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"{name} {value}: a weight of the distance, a number >= 0")
    if pixel_weight == 0 and feature_weight == 0:
        raise ConfigError("--pixel-weight 0 and --feature-weight 0: the distance would be nothing; keep one")


def search_steps(G: GeneratorHandle, steps: int) -> int:
    """Steps the class search of a conditional G takes before the projection itself (0 otherwise)."""
    return G.num_classes * max(1, steps // 4)


def search_class(G: GeneratorHandle, x: torch.Tensor, space: str, steps: int, init: str, distance: Distance,
                 lr: float, seed: int, progress=None) -> torch.Tensor:
    """Each image's class for a conditional G: the one whose short projection gets closest."""
    short = max(1, steps // 4)
    distances = []
    for k in range(G.num_classes):
        report = None if progress is None else (lambda step, loss, k=k: progress(k * short + step, loss))
        trial = _search(G, x, space, short, init, torch.full((len(x),), k), distance, lr, seed, False, report)
        distances.append(trial.loss)
    return torch.stack(distances).argmin(0)


def _search(G: GeneratorHandle, x: torch.Tensor, space: str, steps: int, init: str, c: torch.Tensor | None,
            distance: Distance, lr: float, seed: int, optimize_noise: bool, progress) -> Projection:
    device = G.device
    net = copy.deepcopy(G.G).eval().requires_grad_(False)  # the handle's net is never touched
    handle = GeneratorHandle(net, G.cfg, G.step, device, G.player)
    x = x.to(device).float()
    c = c.to(device) if c is not None else None
    measure = _Measure(distance, x, G.value_range, device, c)
    code = _start(G, x, space, init, c).to(device).requires_grad_(True)
    spread = _spread(G, space)
    noise = {}
    if optimize_noise:
        g = torch.Generator().manual_seed(seed)
        for i, layer in enumerate(noise_layers(net)):
            noise[f"noise{i}"] = torch.randn(len(x), *layer.noise_const.shape[1:], generator=g).to(device).requires_grad_(True)
    opt = torch.optim.Adam([code, *noise.values()], lr=lr, betas=(0.9, 0.999))
    g = torch.Generator().manual_seed(seed + 1)
    history = []
    for step in range(steps):
        t = step / steps
        ramp = min(1.0, (1 - t) / LR_RAMPDOWN)
        for group in opt.param_groups:  # the reference's schedule: cosine down at the end, linear up at the start
            group["lr"] = lr * (0.5 - 0.5 * math.cos(ramp * math.pi)) * min(1.0, t / LR_RAMPUP if LR_RAMPUP else 1.0)
        jitter = spread * INITIAL_NOISE * max(0.0, 1 - t / NOISE_RAMP) ** 2
        noisy = code + jitter * torch.randn(code.shape, generator=g).to(device)
        x_rec = _draw(handle, noisy, space, c, noise)
        loss = distance.total(*measure(x_rec))
        total = loss.sum()
        if noise:
            total = total + NOISE_REGULARIZE * _noise_penalty(list(noise.values()))
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        with torch.no_grad():
            _keep_in_support(code, space, G.cfg.model)
            for m in noise.values():  # the reference renormalises the maps after every step
                m.sub_(m.mean((1, 2, 3), keepdim=True)).div_(m.square().mean((1, 2, 3), keepdim=True).sqrt())
        history.append(float(loss.detach().mean()))
        if progress is not None:
            progress(step + 1, history[-1])
    with torch.no_grad():
        x_rec = _draw(handle, code, space, c, noise)
        pixel, feature, prior = measure(x_rec)
    return Projection(space, code.detach().cpu(), x_rec.detach().cpu(), pixel.cpu(),
                      None if feature is None else feature.cpu(), None if c is None else c.cpu(),
                      {k: v.detach().cpu() for k, v in noise.items()}, history,
                      distance.total(pixel, feature, prior).cpu())


def _draw(handle: GeneratorHandle, code: torch.Tensor, space: str, c, noise: dict) -> torch.Tensor:
    """G's images for latents `code`, differentiable in the latents (and the noise maps)."""
    inputs = handle.latent_inputs(code, space, c)
    with noise_maps(handle.G, noise):
        if "ws" in inputs:
            return handle.G.synthesis(inputs["ws"]).float()
        return (handle.G(inputs["z"], inputs["c"]) if "c" in inputs else handle.G(inputs["z"])).float()


class _Measure:
    """x_rec -> (pixel [N], feature [N] or None, prior [N] or None) against the fixed targets."""

    def __init__(self, distance: Distance, x: torch.Tensor, value_range: str, device, c: torch.Tensor | None):
        self.d, self.x, self.value_range, self.c = distance, x, value_range, c
        self.context = None if distance.context is None else distance.context.to(device).float()
        self.target = None if distance.features is None else distance.features(_to01(x, value_range)).detach()

    def __call__(self, x_rec: torch.Tensor):
        if self.context is None:
            pixel = (x_rec - self.x).pow(2).flatten(1).mean(1)
        else:
            pixel = (self.context * (x_rec - self.x)).abs().flatten(1).sum(1)
        feature = None
        if self.target is not None:
            f = self.d.features(_to01(x_rec, self.value_range))
            feature = (f - self.target).pow(2).sum(1) / f.shape[1]
        prior = self.d.prior(x_rec, self.c) if self.d.prior is not None and self.d.prior_weight > 0 else None
        return pixel, feature, prior


@torch.no_grad()
def _keep_in_support(code: torch.Tensor, space: str, model) -> None:
    """Latents in z stay where G was trained: on the sphere of radius sqrt(z_dim) for normal z, in
    the box for uniform z. w and w+ are left free (the reference does the same)."""
    if space != "z":
        return
    if model.z_dist == "normal":
        code.mul_(math.sqrt(code.shape[1]) / code.norm(dim=1, keepdim=True).clamp_min(1e-8))
    else:
        code.clamp_(-latent.BOX[model.z_dist], latent.BOX[model.z_dist])
