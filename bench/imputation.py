"""Missing pixels filled in: GAIN (and its ablation without D) against the simple fills, on the
held-out images of a data.degrade run (the test split's first 1,000, each with the same holes every
time).

    ganforge train configs/mnist_gain.yaml                              # GAIN
    ganforge train configs/mnist_gain.yaml loss.adv_weight=0 run.name=mnist_gain_no_D
    python -m bench.imputation --run runs/00000-mnist_gain --run runs/00001-mnist_gain_no_D

For each way of filling: the RMSE on the missing pixels (GAIN's figure; pixels in [0, 1]), the PSNR
of the whole completed image, and the share of completed images the domain classifier (mnist-cnn,
fashion-mnist-cnn) reads as the image's label. The fills that learn nothing: zero (the noise level
G's input has), the per-pixel mean of the observed training pixels, and the nearest training image
(by the distance on the observed pixels) copied into the holes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from bench.common import machine_line, need_data, parser, run_script, table_head, write_results
from ganforge import api, validate
from ganforge.data import build_dataset, load_idx_split
from ganforge.metrics.features import load_extractor

CLASSIFIER = {"mnist": "mnist-cnn", "fashion-mnist": "fashion-mnist-cnn"}


def held_out_and_training(cfg) -> tuple[torch.Tensor, ...]:
    """(degraded, clean, missing mask, labels) of the run's held-out images and the training images
    (flattened), all in [0, 1], from one build of the run's data."""
    data = build_dataset(cfg.data)
    held = data.extra["held_out"]
    _, labels, _ = load_idx_split(cfg.data.name, "test")
    return (held["a"].float() / 255, held["x"].float() / 255, held["mask"].float(),
            torch.from_numpy(labels[:len(held["x"])]).long(), data.x.float().div(255).flatten(1))


def mean_fill(a, mask, train: torch.Tensor) -> torch.Tensor:
    """Each missing pixel: that pixel's mean over the training images (all observed in expectation:
    the holes are at random, so the mean of the observed ones is the same)."""
    return mask * train.mean(0).reshape(a.shape[1:]) + (1 - mask) * a


def nearest_fill(a, mask, train: torch.Tensor, chunk: int = 250) -> torch.Tensor:
    """Each image's holes copied from the training image nearest on its observed pixels."""
    out = []
    t2 = train.pow(2)
    for i in range(0, len(a), chunk):
        m = (1 - mask[i:i + chunk]).expand_as(a[i:i + chunk]).flatten(1)  # one mask for every channel
        x = a[i:i + chunk].flatten(1) * m
        d = x.pow(2).sum(1, keepdim=True) - 2 * x @ train.T + m @ t2.T  # sum over observed of (x - t)^2
        nearest = train[d.argmin(1)].reshape(a[i:i + chunk].shape)
        out.append(mask[i:i + chunk] * nearest + (1 - mask[i:i + chunk]) * a[i:i + chunk])
    return torch.cat(out)


def score(way: str, completed, clean, mask, labels, classifier) -> dict:
    missing = mask.expand_as(clean)
    rmse = math.sqrt(float(((completed - clean) ** 2 * missing).sum() / missing.sum()))
    mse = (completed - clean).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    psnr = float((10 * torch.log10(1 / mse)).mean())
    _, predicted = classifier.run(completed)
    row = {"way": way, "images": len(clean), "rmse_missing": rmse, "psnr": psnr,
           "class_accuracy": float((predicted == labels).float().mean())}
    print(json.dumps(row), flush=True)
    return row


def run(args) -> None:
    first = api.load_generator(args.run[0])
    cfg = first.cfg
    if cfg.data.name not in CLASSIFIER or not cfg.data.degrade:
        raise SystemExit(f"{args.run[0]}: give a run on data.degrade of mnist or fashion-mnist (the held-out test images "
                         f"and their classifier); this one is data.name={cfg.data.name}, data.degrade={cfg.data.degrade!r}")
    a, clean, mask, labels, train = held_out_and_training(cfg)
    classifier = load_extractor(CLASSIFIER[cfg.data.name])
    rows = [score("clean images (the classifier's own accuracy)", clean, clean, mask, labels, classifier),
            score("zero fill", a, clean, mask, labels, classifier),
            score("per-pixel training mean", mean_fill(a, mask, train), clean, mask, labels, classifier),
            score("nearest training image", nearest_fill(a, mask, train), clean, mask, labels, classifier)]
    for source in args.run:
        G = api.load_generator(source)
        if G.cfg.data != cfg.data:
            raise SystemExit(f"{source}: trained on other data ({G.cfg.data.degrade} of {G.cfg.data.name}) than "
                             f"{args.run[0]}: compare runs of one data.degrade")
        signed = G.value_range == "signed"  # a model in [-1, 1] (pix2pix) is given and gives that range
        a_in = a * 2 - 1 if signed else a
        completed = torch.cat([G({"a": a_in[i:i + 500], "mask": mask[i:i + 500]}).cpu() for i in range(0, len(a), 500)])
        completed = (completed + 1) / 2 if signed else completed
        adv = G.cfg.loss.adv_weight
        rows.append(score(f"{G.cfg.train.recipe}{'' if adv else ' without D (loss.adv_weight=0)'}, step {G.step}",
                          completed, clean, mask, labels, classifier))
    lines = [table_head("way", "RMSE on the missing pixels", "PSNR (dB)", "read as its label")]
    lines += [f"| {r['way']} | {r['rmse_missing']:.4f} | {r['psnr']:.2f} | {100 * r['class_accuracy']:.1f} % |"
              for r in rows]
    text = (f"{machine_line()}; {len(clean)} held-out {cfg.data.name} test images, data.degrade={cfg.data.degrade}\n\n"
            + "\n".join(lines) + "\n")
    write_results(args.out, text, rows)


def smoke(tmp):
    need_data("mnist")
    cfg = validate.load(None, ["data.name=mnist", "data.max_images=256", "data.range=unit", "data.degrade=missing=0.5",
                               "model.arch=gain", "model.width=16", "train.recipe=gain", "train.max_steps=2",
                               "train.batch_size=16", "log.progress=false", "log.report=false", f"run.dir={tmp / 'runs'}"])
    run_dir, _ = api.train(cfg, log=lambda s: None)
    return ["--run", str(run_dir)]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--run", action="append", required=True, help="a gain (or pix2pix) run on data.degrade (repeatable)")
    ap.add_argument("--out", type=Path)
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
