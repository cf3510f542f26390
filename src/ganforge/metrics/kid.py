"""KID as a registered metric: the kernel distance of metrics/fid.py on the evaluation's features."""

from __future__ import annotations

from ganforge.metrics.context import Context
from ganforge.metrics.fid import kid
from ganforge.metrics.registry import Headline, Metric, register


def _kid(ctx: Context) -> dict:
    real, _ = ctx.features("real")
    fake, _ = ctx.features("fake")
    mean, std = kid(real, fake, seed=ctx.seed)
    return {"value": mean, "std": std, "split": ctx.reference()[2], "num_real": len(real), **ctx.extractor_record()}




register(Metric("kid", "kernel distance (unbiased MMD^2, cubic kernel) of generated to real features", _kid,
                fmt=lambda r: f"{r['value']:.5f} +- {r['std']:.5f}", headline=(Headline("value", "KID", "lower"),),
                feature_space=True))
