"""Generator / discriminator builders. Nets know shapes only; D returns raw logits [N]."""

from __future__ import annotations

from torch import nn

from ganforge.config import Config
from ganforge.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.nets.goodfellow import GoodfellowDiscriminator, GoodfellowGenerator
from ganforge.nets.mlp import MLPDiscriminator, MLPGenerator


def output_kind(cfg: Config, sample_shape: tuple[int, ...]) -> str:
    if len(sample_shape) == 1:
        return "none"  # toy points are unbounded
    return "tanh" if cfg.data.range == "signed" else "sigmoid"


def build_G(cfg: Config, sample_shape: tuple[int, ...]) -> nn.Module:
    m = cfg.model
    if m.arch == "mlp":
        return MLPGenerator(m.z_dim, sample_shape, m.width, output_kind(cfg, sample_shape))
    if m.arch == "goodfellow2014":
        return GoodfellowGenerator(m.z_dim, sample_shape, m.width)
    return DCGANGenerator(m.z_dim, cfg.data.resolution, cfg.data.channels, m.width, output_kind(cfg, sample_shape))


def build_D(cfg: Config, sample_shape: tuple[int, ...]) -> nn.Module:
    m = cfg.model
    if m.arch == "mlp":
        return MLPDiscriminator(sample_shape, m.width, m.d_dropout)
    if m.arch == "goodfellow2014":
        return GoodfellowDiscriminator(sample_shape, m.width)
    return DCGANDiscriminator(cfg.data.resolution, cfg.data.channels, m.width)


def sample_shape_for(cfg: Config) -> tuple[int, ...]:
    """Shape of one sample as the nets see it, derived from the config alone (for export / sample)."""
    if cfg.data.name in ("ring", "grid"):
        return (2,)
    return (cfg.data.channels, cfg.data.resolution, cfg.data.resolution)
