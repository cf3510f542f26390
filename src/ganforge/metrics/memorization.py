"""Memorisation check: is a generated sample closer to a training image than fresh data would be?

For each generated sample: d_train = distance to its nearest training image, d_test = distance to
its nearest test image (pixels in [0, 1]). The threshold is the 1st percentile of the same
nearest-training-image distance measured for the test images themselves: a held-out image is that
close to the training set only 1 % of the time, so a generator that copies training images shows a
fraction well above 1 % below it. Also reported: the median ratio d_train / d_test (about 1 for a
generator that does not copy; near 0 for one that does) and the closest pairs, for the report.
"""

from __future__ import annotations

import torch

from ganforge.metrics.context import Context, NotApplicable
from ganforge.metrics.registry import Headline, Metric, register


def nearest(x: torch.Tensor, ref: torch.Tensor, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance, index) of each row's nearest row of `ref`."""
    x, ref = x.flatten(1).float(), ref.flatten(1).float()
    ref_sq = (ref * ref).sum(1)
    dist, idx = torch.empty(len(x)), torch.empty(len(x), dtype=torch.long)
    for i in range(0, len(x), chunk):
        xb = x[i:i + chunk]
        d2 = (xb * xb).sum(1, keepdim=True) + ref_sq[None] - 2 * xb @ ref.T
        m, j = d2.min(1)
        dist[i:i + chunk], idx[i:i + chunk] = m.clamp_min(0).sqrt(), j
    return dist, idx


def memorization(fake: torch.Tensor, train: torch.Tensor, test: torch.Tensor, quantile: float = 0.01,
                 num_pairs: int = 8) -> dict:
    d_train, i_train = nearest(fake, train)
    d_test, _ = nearest(fake, test)
    test_to_train, _ = nearest(test, train)
    threshold = torch.quantile(test_to_train, quantile).item()
    order = d_train.argsort()[:num_pairs]
    return {"suspicious_fraction": float((d_train < threshold).float().mean()),
            "expected_fraction": quantile, "threshold": threshold,
            "median_train_test_ratio": float((d_train / d_test.clamp_min(1e-12)).median()),
            "closest_pairs": [[int(f), int(i_train[f]), float(d_train[f])] for f in order]}


def _memorization(ctx: Context) -> dict:
    if ctx.fake.dim() != 4:
        raise NotApplicable("memorisation is checked against training images; these samples are points")
    train_split = "train50k" if ctx.cfg.data.split == "train50k" else "train"
    train, _, train_desc = ctx.real_split(train_split)
    if ctx.spec.train_subset:
        n = ctx.spec.train_subset
        train, train_desc = train[:n], f"{ctx.spec.real_splits} train[0:{n}] (the {ctx.cfg.data.name} subset)"
    if ctx.cfg.data.max_images and ctx.cfg.data.max_images < len(train):  # the images G was trained on
        n = ctx.cfg.data.max_images
        train, train_desc = train[:n], f"the first {n} of {train_desc} (data.max_images)"
    test, _, test_desc = ctx.real_split("test")
    if len(test) > len(train):
        # A nearest neighbour among more images is nearer: compare against as many test images as
        # training images, so that d_train / d_test is about 1 for a generator that does not copy.
        test, test_desc = test[:len(train)], f"the first {len(train)} of {test_desc}"
    return {**memorization(ctx.fake, train, test), "space": "pixels in [0, 1]",
            "split": f"train: {train_desc}; test: {test_desc}"}


def _refuse_memorization(cfg, spec, num_classes: int) -> str | None:
    if spec.kind != "points" and spec.real_splits is not None:
        return None
    return (f"memorisation is checked against a standard dataset's training and test images; '{cfg.data.name}' has "
            "none" + (" (its samples are points)" if spec.kind == "points" else ""))


register(Metric("memorization", "share of samples suspiciously close to a training image", _memorization,
                fmt=lambda r: (f"suspicious={r['suspicious_fraction']:.4f} (expect ~{r['expected_fraction']}) "
                               f"median d_train/d_test={r['median_train_test_ratio']:.3f}"),
                headline=(Headline("suspicious_fraction", "share of samples suspiciously close to a training image",
                                   "lower"),
                          Headline("median_train_test_ratio", "median ratio of nearest train to nearest test distance",
                                   None)),
                refuse=_refuse_memorization))
