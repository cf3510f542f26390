"""Generator / discriminator builders. Nets know shapes only; D returns raw logits [N].

The families register themselves in nets/registry.py when imported here; `build_G` / `build_D`
turn a config into the core keyword arguments every builder takes.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Callable

import torch
from torch import nn

from ganforge.config import Config, net_names
from ganforge.core import latent
from ganforge.core.registry import choose
from ganforge.data import DATASETS
from ganforge.core.errors import ConfigError
from ganforge.nets import bigan, dcgan, encoder, goodfellow, mlp, stylegan, translation  # noqa: F401  (each registers its nets)
from ganforge.nets.encoder import default_encoder
from ganforge.nets.registry import DISCRIMINATORS, ENCODERS, GENERATORS
from ganforge.nets.text import TEXT_ENCODERS, TextCondition, TextD, TextG
from ganforge.core.registry import import_all

import_all(__name__, __path__)  # any other module of this package (a net family added as one file)


def output_kind(cfg: Config, sample_shape: tuple[int, ...]) -> str:
    if len(sample_shape) == 1:
        return "none"  # toy points are unbounded
    return "tanh" if cfg.data.range == "signed" else "sigmoid"


def class_count(cfg: Config) -> int:
    """c_dim: the number of classes a conditional model is fed (0 when unconditional)."""
    return cfg.model.num_classes if cfg.model.conditional != "none" else 0


def code_dim(cfg: Config) -> int:
    """Numbers of the caption's code a text-conditioned net takes (0 without text)."""
    return cfg.model.text_dim if cfg.model.text_encoder else 0


def _with_text(net: nn.Module, cfg: Config, which: str) -> nn.Module:
    """A text-to-image model's G or D: the net with its own text path (nets/text.py)."""
    if not cfg.model.text_encoder:
        return net
    m = cfg.model
    text_path = TextCondition(m.text_encoder, m.text_dim, ca=m.text_ca and which == "G")
    return TextG(net, text_path) if which == "G" else TextD(net, text_path)


def build_G(cfg: Config, sample_shape: tuple[int, ...]) -> nn.Module:
    G = sized(lambda c: _with_text(GENERATORS[net_names(c)[0]].build(
        z_dim=c.model.z_dim, c_dim=class_count(c), sample_shape=tuple(sample_shape), width=c.model.width,
        out=output_kind(c, sample_shape), code_dim=code_dim(c)), c, "G"), "G", cfg)
    return spectral_norm_all(G) if cfg.model.g_spectral_norm else G


def build_D(cfg: Config, sample_shape: tuple[int, ...]) -> nn.Module:
    D = sized(lambda c: _with_text(DISCRIMINATORS[net_names(c)[1]].build(
        c_dim=class_count(c), sample_shape=tuple(sample_shape), width=c.model.width, dropout=c.model.d_dropout,
        norm=c.model.d_norm, cond=c.model.conditional, z_dim=c.model.z_dim,  # z_dim: a joint D(x, z) (BiGAN)
        code_dim=code_dim(c)), c, "D"), "D", cfg)
    return spectral_norm_all(D) if cfg.model.d_spectral_norm else D


def encoder_name(cfg: Config) -> str:
    """model.E, or the encoder family that suits the data and G (nets.encoder.default_encoder)."""
    return cfg.model.E or default_encoder(sample_shape_for(cfg), net_names(cfg)[0])


def build_E(cfg: Config, sample_shape: tuple[int, ...], out_dim: int) -> nn.Module:
    """An encoder from samples of `sample_shape` to codes of `out_dim` numbers."""
    return sized(lambda c: ENCODERS[encoder_name(c)].build(
        sample_shape=tuple(sample_shape), width=c.model.E_width, out_dim=out_dim,
        box=latent.BOX.get(c.model.z_dist)), "E", cfg)


def joint_D(cfg: Config) -> bool:
    """Whether the configured D judges (x, z) pairs (its builder takes z_dim: BiGAN's)."""
    return "z_dim" in DISCRIMINATORS[net_names(cfg)[1]].takes


def check_encoder(cfg: Config) -> str | None:
    """Why the configured encoder cannot work with this config, or None (for recipes that have one)."""
    problem = choose("model.E", cfg.model.E, ENCODERS) if cfg.model.E else None
    if problem:
        return problem
    if cfg.model.E_width < 0:
        return f"model.E_width={cfg.model.E_width} must be >= 0 (0 = the encoder family's default)"
    return ENCODERS[encoder_name(cfg)].check(sample_shape_for(cfg), cfg)


def memory_bytes() -> int:
    """This machine's physical memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def sized(make: Callable[[Config], nn.Module], which: str, cfg: Config) -> nn.Module:
    """make(cfg), after counting the net's parameters on the meta device (no memory, no random
    numbers drawn): a config asking for more than a quarter of this machine's memory in weights
    alone (say model.width=10^6 or model.z_dim=10^9 in a hand-edited export) is refused, naming the
    key that makes it so, instead of swapping or being killed mid-allocation."""
    numel = _count(make, cfg)
    need = numel * 4  # float32
    if need > memory_bytes() // 4:
        key = _culprit(make, cfg)
        size = (f"would have {numel:,} parameters ({need / 2**30:,.1f} GiB in float32)" if numel != math.inf
                else "cannot be built at this size")
        raise ConfigError(f"{key}={_value(cfg, key)}: {which} {size}, too large for this machine's memory "
                          f"({memory_bytes() / 2**30:.0f} GiB): lower {key}")
    return make(cfg)


SIZE_KEYS = ("model.width", "model.z_dim", "model.num_classes", "model.E_width", "model.text_dim")  # what sets a net's size


def _count(make: Callable[[Config], nn.Module], cfg: Config) -> float:
    """Parameters and buffers of make(cfg); inf for sizes past what a tensor can hold."""
    try:
        with torch.device("meta"):
            probe = make(cfg)
        return sum(t.numel() for t in (*probe.parameters(), *probe.buffers()))
    except (RuntimeError, OverflowError, ValueError, MemoryError):
        return math.inf


def _culprit(make: Callable[[Config], nn.Module], cfg: Config) -> str:
    """The size key whose return to its default shrinks the net the most (data.resolution when
    none of them is away from its default, or none helps)."""
    best, best_count = "data.resolution", _count(make, cfg)
    for key in SIZE_KEYS:
        section, name = key.split(".")
        default = getattr(type(getattr(cfg, section))(), name)
        if getattr(getattr(cfg, section), name) == default:
            continue
        trial = copy.deepcopy(cfg)
        setattr(getattr(trial, section), name, default)
        count = _count(make, trial)
        if count < best_count:
            best, best_count = key, count
    return best


def _value(cfg: Config, key: str):
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def spectral_norm_all(net: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every conv, linear and embedding weight (the
    projection discriminator's class embedding too, as Miyato & Koyama do), with torch's
    parametrization (one power iteration per training forward; dim 1 for transposed convs)."""
    from torch.nn.utils.parametrizations import spectral_norm

    for module in list(net.modules()):
        if isinstance(module, (nn.Linear, nn.Embedding, nn.modules.conv._ConvNd)):
            spectral_norm(module)
    return net


def sample_shape_for(cfg: Config) -> tuple[int, ...]:
    """Shape of one sample as the nets see it, derived from the config alone (for export / sample)."""
    return DATASETS[cfg.data.name].sample_shape(cfg.data)


def check_nets(cfg: Config) -> str | None:
    """Why the chosen G and D cannot work with this config, or None (used by config validation)."""
    g, d = net_names(cfg)
    problem = (choose("model.arch", cfg.model.arch, sorted(set(GENERATORS) | set(DISCRIMINATORS)))
               or choose("model.G", g, GENERATORS) or choose("model.D", d, DISCRIMINATORS))
    if problem:
        return problem
    if cfg.model.conditional != "none":
        for key, entry in (("model.G", GENERATORS[g]), ("model.D", DISCRIMINATORS[d])):
            if not entry.conditional:
                return (f"{key}={entry.name} takes no class: model.conditional={cfg.model.conditional} needs a "
                        f"conditional net ({', '.join(n for n, e in GENERATORS.items() if e.conditional)})")
    if cfg.model.text_encoder:
        problem = choose("model.text_encoder", cfg.model.text_encoder, TEXT_ENCODERS)
        if problem:
            return problem
        for key, entry in (("model.G", GENERATORS[g]), ("model.D", DISCRIMINATORS[d])):
            if "code_dim" not in entry.takes:
                takers = ", ".join(n for n, e in GENERATORS.items() if "code_dim" in e.takes)
                return f"{key}={entry.name} takes no caption: model.text_encoder needs a net that does ({takers})"
    shape = sample_shape_for(cfg)
    return GENERATORS[g].check(shape, cfg) or DISCRIMINATORS[d].check(shape, cfg)
