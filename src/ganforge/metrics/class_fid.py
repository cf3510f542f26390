"""FID within each class of a conditional generator (its samples of class k against the real
images of class k, in the FID feature space; the value is the mean over classes)."""

from __future__ import annotations

import torch

from ganforge.metrics.context import Context, NotApplicable
from ganforge.metrics.fid import fid
from ganforge.metrics.registry import Headline, Metric, register

NOT_CONDITIONAL = "per-class FID needs a conditional generator (model.conditional); this one takes no class"


def _class_fid(ctx: Context) -> dict:
    """FID within each class: a conditional generator's samples of class k against the real test
    images of class k, in the same feature space as FID; the value is the mean over classes."""
    if not ctx.num_classes:
        raise NotApplicable(NOT_CONDITIONAL)
    real, _ = ctx.features("real")
    fake, _ = ctx.features("fake")
    labels = ctx.reference()[1]
    if labels is None:
        raise NotApplicable("the reference images have no labels")
    asked = torch.arange(len(fake)) % ctx.num_classes
    per_class = [fid(real[labels == k], fake[asked == k]) for k in range(ctx.num_classes)]
    return {"value": sum(per_class) / len(per_class), "per_class": per_class,
            "num_fake_per_class": len(fake) // ctx.num_classes, "split": ctx.reference()[2],
            "num_real": len(real), **ctx.extractor_record()}




register(Metric("class_fid", "FID within each class of a conditional generator, averaged", _class_fid,
                fmt=lambda r: (f"{r['value']:.3f} (mean of {len(r['per_class'])}; "
                               + " ".join(f"{v:.1f}" for v in r["per_class"]) + ")"),
                headline=(Headline("value", "FID within classes", "lower"),), feature_space=True,
                refuse=lambda cfg, spec, num_classes: None if num_classes else NOT_CONDITIONAL))
