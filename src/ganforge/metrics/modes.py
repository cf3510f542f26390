"""Mode metrics.

- Labelled data: the domain classifier's label histogram of generated samples: modes hit (classes
  predicted for at least one sample) and KL(histogram || uniform).
- Stacked MNIST (1,000 modes): the classifier applied to each of the three channels; a mode is a
  digit triple.
- Toy 2-D mixtures, the VEEGAN / PacGAN definitions: a sample is high quality when it lies within
  3 standard deviations of its nearest mode; a mode is captured when at least one high-quality
  sample is nearest to it; reverse KL is KL(q || p) of the generated distribution over modes
  (every sample assigned to its nearest mode) against the uniform mixture weights.
"""

from __future__ import annotations

import math

import torch

from ganforge.data import toy_centres, toy_std
from ganforge.metrics.context import Context, extractor_fields, no_feature_net
from ganforge.metrics.features import load_extractor
from ganforge.metrics.registry import Headline, Metric, fmt_numbers, register


def _kl_to_uniform(counts: torch.Tensor) -> float:
    q = counts.double() / counts.sum()
    nz = q > 0
    return float((q[nz] * (q[nz] * len(q)).log()).sum())


def label_modes(pred: torch.Tensor, num_classes: int) -> dict:
    counts = torch.bincount(pred, minlength=num_classes)
    return {"modes_hit": int((counts > 0).sum()), "num_modes": num_classes,
            "kl_to_uniform": _kl_to_uniform(counts), "histogram": counts.tolist()}


def stacked_modes(pred_r: torch.Tensor, pred_g: torch.Tensor, pred_b: torch.Tensor) -> dict:
    mode = pred_r * 100 + pred_g * 10 + pred_b
    counts = torch.bincount(mode, minlength=1000)
    return {"modes_hit": int((counts > 0).sum()), "num_modes": 1000, "kl_to_uniform": _kl_to_uniform(counts),
            "histogram": counts.tolist()}


def toy_modes(points: torch.Tensor, centres: torch.Tensor, std: float) -> dict:
    d = torch.cdist(points.double(), centres.double())  # [N, M]
    dist, nearest = d.min(1)
    high_quality = dist <= 3 * std
    captured = torch.bincount(nearest[high_quality], minlength=len(centres)) > 0
    counts = torch.bincount(nearest, minlength=len(centres))
    return {"modes_captured": int(captured.sum()), "num_modes": len(centres),
            "high_quality_fraction": float(high_quality.double().mean()),
            "reverse_kl": _kl_to_uniform(counts),
            "histogram": torch.bincount(nearest[high_quality], minlength=len(centres)).tolist()}


def covered_modes(histogram: list[int], share: float) -> int:
    """Modes that get at least `share` of their uniform share of the samples counted: the health
    checks' coverage, stricter than "hit at least once" so that a collapse shows before the last
    sample leaves a mode."""
    counts = torch.tensor(histogram, dtype=torch.float64)
    n = counts.sum().clamp_min(1)  # toy: high-quality samples only
    return int((counts >= share * n / len(counts)).sum())


def max_kl(num_modes: int) -> float:
    """KL to uniform of a distribution on a single mode: the worst possible value."""
    return math.log(num_modes)


def _modes(ctx: Context) -> dict:
    if ctx.spec.modes == "toy":
        return {**toy_modes(ctx.fake, toy_centres(ctx.cfg.data), toy_std(ctx.cfg.data)),
                "definition": "VEEGAN / PacGAN (3 std)"}
    if ctx.spec.modes == "stacked":  # the MNIST classifier on each channel; a mode is a digit triple
        ex = load_extractor("mnist-cnn")
        preds = [ex.run(ctx.fake[:, c:c + 1])[1] for c in range(3)]
        return {**stacked_modes(*preds), "definition": "MNIST classifier per channel (Stacked MNIST)",
                **extractor_fields(ex)}
    ctx.extractor()  # refuses data without a classifier
    _, pred = ctx.features("fake")
    return {**label_modes(pred, ctx.spec.num_classes), "definition": "classifier label histogram",
            **ctx.extractor_record()}




def _refuse_modes(cfg, spec, num_classes: int) -> str | None:
    """Why the data has no modes to count: no definition, or labels without a classifier to read them."""
    if spec.modes is None:
        return f"no mode definition for '{cfg.data.name}' data (classes of MNIST / Fashion-MNIST, Stacked MNIST, toy mixtures)"
    if spec.modes == "labels" and spec.feature_net is None and not cfg.eval.feature_net:
        return no_feature_net(cfg.data.name)
    return None


register(Metric("modes", "modes the generator covers (classifier labels, Stacked MNIST triples, toy mixture modes)",
                _modes, fmt=fmt_numbers("modes_hit", "modes_captured", "num_modes", "kl_to_uniform",
                                        "high_quality_fraction", "reverse_kl"),
                headline=(Headline("modes_hit", "modes hit", "higher"),
                          Headline("modes_captured", "modes captured", "higher"),
                          Headline("kl_to_uniform", "KL of the mode histogram to uniform (nats)", "lower"),
                          Headline("high_quality_fraction", "share of confidently classified samples", "higher"),
                          Headline("reverse_kl", "reverse KL (nats)", "lower")),
                refuse=_refuse_modes))
