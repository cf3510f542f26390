"""The net registries: generators and discriminators by name, chosen separately.

Every builder takes the same core keyword arguments, so a recipe can build any registered net:

    G builders: z_dim, c_dim, sample_shape, width, out (output activation: tanh | sigmoid | none)
    D builders: c_dim, sample_shape, width, dropout, norm (batch | none), cond (none | cgan | projection | acgan)
    and, for nets that take a caption (text-to-image, nets/text.py), code_dim: the caption's code size
    E builders: sample_shape, width, out_dim (an encoder x -> a latent code, `features` its penultimate layer)

`sample_shape` is (C, H, W) for images or (2,) for toy points (a vector net works on any shape, a
convolutional one checks it). `c_dim` is the number of classes a conditional net is fed (0 for an
unconditional one). A builder ignores the keyword arguments its family has no use for. Each entry
carries a `check` that says, before anything is built, why a config cannot work with it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from torch import nn

from ganforge.core.registry import Registry


@dataclass(frozen=True)
class NetEntry:
    name: str
    builder: Callable[..., nn.Module]  # keyword-only: its signature declares the arguments it takes
    # (sample_shape, the whole Config) -> a message naming the key to change, or None
    check: Callable[[tuple, object], str | None]
    conditional: bool = False  # takes a class (c_dim > 0; for D also `cond`: cgan | projection | acgan)
    # G maps z to per-layer styles: has num_ws, ws(z), synthesis(ws) and truncate(ws, psi) (StyleGAN)
    styles: bool = False

    @property
    def takes(self) -> frozenset[str]:
        """The keyword arguments the builder declares."""
        return frozenset(inspect.signature(self.builder).parameters)

    def build(self, **kwargs) -> nn.Module:
        """The net, from those of `kwargs` its builder declares (the config offers every net the same
        ones: z_dim, c_dim, sample_shape, width, out, dropout, norm, cond, ...)."""
        return self.builder(**{k: v for k, v in kwargs.items() if k in self.takes})


GENERATORS: Registry[NetEntry] = Registry("generator net")
DISCRIMINATORS: Registry[NetEntry] = Registry("discriminator net")
ENCODERS: Registry[NetEntry] = Registry("encoder net")


def _register(table: Registry, name: str, check=None, conditional: bool = False, styles: bool = False):
    def add(build):
        table.add(name, NetEntry(name, build, check or (lambda shape, model: None), conditional, styles))
        return build
    return add


def register_G(name: str, check=None, conditional: bool = False, styles: bool = False):
    return _register(GENERATORS, name, check, conditional, styles)


def register_D(name: str, check=None, conditional: bool = False):
    return _register(DISCRIMINATORS, name, check, conditional)


def register_E(name: str, check=None):
    return _register(ENCODERS, name, check)


def images_only(name: str):
    """A check for convolutional / image-only families."""
    def check(shape: tuple, cfg) -> str | None:
        if len(shape) != 3:
            return (f"{name} nets work on images and {cfg.data.name} data is {shape[0]}-D points: "
                    f"use model.arch=mlp (and model.G / model.D empty or mlp)")
        return None
    return check


def unconditional(name: str, c_dim: int) -> None:
    if c_dim:
        raise ValueError(f"{name} nets take no class input (c_dim={c_dim})")
