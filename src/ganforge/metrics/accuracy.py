"""Held-out accuracy of a model's classifier (the semi-supervised GAN's D, with its averaged
weights): on the test split where the data has one (MNIST, Fashion-MNIST: 10,000 images), else
on the tenth of a folder's labelled images left out of training (data/build.py). Salimans et al.
2016 report the number of misclassified test images; the record has it beside the accuracy."""

from __future__ import annotations

import dataclasses
import warnings

import torch

from ganforge.data import build_dataset
from ganforge.metrics.context import Context, NotApplicable
from ganforge.metrics.registry import Headline, Metric, register

BATCH = 1000


def held_out(ctx: Context) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(images in the model's range, labels, description) the classifier is measured on."""
    def load():
        d = ctx.cfg.data
        if "test" in ctx.spec.splits:
            data = build_dataset(dataclasses.replace(d, split="test", labels_per_class=0, labels_file="",
                                                     max_images=0, degrade=""))
            if data.y is None:
                raise NotApplicable(f"the {d.name} test split has no labels")
            return data.samples(), data.y, f"{d.name} test split ({len(data)} images)"
        with warnings.catch_warnings():  # skipped files were reported when the run loaded them
            warnings.simplefilter("ignore")
            data = build_dataset(d, ctx.cfg.train.seed)  # as the run read it: the same images held out
        if "held_out_labelled" not in data.extra:
            raise NotApplicable(f"{d.name} data has no test split and no held-out labelled images "
                                "(set data.labels_per_class or data.labels_file)")
        x, y = data.extra["held_out_labelled"]
        return data.to_float(x), y, f"{len(y)} labelled images of {data.source} left out of training"
    return ctx.once("accuracy_held_out", load)


@torch.no_grad()
def classify(C: torch.nn.Module, x: torch.Tensor, batch: int = BATCH) -> torch.Tensor:
    """Class logits [N, K] of images x, in eval mode (the classifier's noise off), on its device."""
    device = next(C.parameters()).device
    was_training = C.training
    C.eval()
    try:
        return torch.cat([C(x[i:i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)])
    finally:
        C.train(was_training)


def _accuracy(ctx: Context) -> dict:
    if ctx.classifier is None:
        raise NotApplicable("this model has no classifier")
    x, y, source = held_out(ctx)
    wrong = int((classify(ctx.classifier, x).argmax(1) != y).sum())
    return {"value": 1 - wrong / len(y), "error": wrong / len(y), "misclassified": wrong, "num_test": len(y),
            "test_set": source}


register(Metric("accuracy", "held-out accuracy of the model's classifier (semi-supervised GAN)", _accuracy,
                fmt=lambda r: (f"{100 * r['value']:.2f} % ({r['misclassified']} of {r['num_test']} wrong, "
                               f"error {100 * r['error']:.2f} %)"),
                headline=(Headline("value", "held-out accuracy", "higher"),
                          Headline("misclassified", "misclassified held-out images", "lower")),
                needs_samples=False, needs_classifier=True))
