"""GANs as data augmentation, and the Classification Accuracy Score (Ravuri & Vinyals 2019).

    python bench/gan_augmentation.py --out /tmp/gan_aug [--gan-steps 6000] [--clf-steps 1500]

Trains the MNIST classifier architecture (the shipped mnist-cnn, metrics/features.DomainCNN) on

  (a) 1 % of MNIST: the first 600 training images;
  (b) those 600 plus 60,000 samples of a conditional GAN trained on those 600 images only,
      drawn uniformly from the union (and (b') with half of every batch from the 600 real ones);
  (c) 60,000 samples of a conditional GAN trained on all of MNIST, nothing real (CAS);
  (d) all 60,000 real training images;

and reports each one's accuracy on the real MNIST test set (10,000 images).

Every classifier gets the same budget: --clf-steps steps of batch 128, AdamW 2e-3 with a one-cycle
schedule, random +-2 px shifts, label smoothing 0.05 (tools/train_feature_nets.py's recipe).
The GANs are configs/mnist_cgan.yaml made to fit a 2-core CPU: width 32, batch 64, --gan-steps
steps; the 600-image one also uses DiffAugment (translation, cutout), the small-data remedy. The
synthetic sets are written by `ganforge sample RUN --labels --n 60000 --format idx` and read back
as the IDX files any tool would read.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganforge import api, config
from ganforge.metrics.featurenet import accuracy, shift  # the feature nets' own training recipe

ROOT = Path(__file__).resolve().parents[1]
from ganforge.data import load_idx_split  # noqa: E402
from ganforge.data.idx import read_idx  # noqa: E402
from ganforge.metrics.features import DomainCNN  # noqa: E402

N_SMALL = 600


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).float().div_(255)[:, None]  # [N, 1, 28, 28] in [0, 1]


def real_split(domain: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(images [N, 1, 28, 28] in [0, 1], labels) of an IDX dataset split on the data search path."""
    x, y, _ = load_idx_split(domain, split)
    return to_tensor(x), torch.from_numpy(y).long()


def train_gan(out: Path, name: str, steps: int, extra: list[str]) -> Path:
    cfg = config.load(ROOT / "configs" / "mnist_cgan.yaml", [
        "model.width=32", "train.batch_size=64", "train.epochs=100000", f"train.max_steps={steps}",
        "eval.every_steps=0", "log.progress=false", "log.report=false", f"run.dir={out / 'runs'}",
        f"run.name={name}", *extra])
    run_dir, _ = api.train(cfg, log=lambda s: None)
    return run_dir


def synthetic(run_dir: Path, out: Path, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    folder = out / f"synthetic-{run_dir.name}"
    if not folder.exists():
        api.sample_dataset(run_dir, n, folder, seed=seed, fmt="idx")
    x = read_idx(folder / "synthetic-images-idx3-ubyte")
    y = read_idx(folder / "synthetic-labels-idx1-ubyte")
    return to_tensor(x), torch.from_numpy(y.astype(np.int64))


def train_classifier(sets: list[tuple[torch.Tensor, torch.Tensor]], shares: list[float], steps: int,
                     test: tuple[torch.Tensor, torch.Tensor], seed: int = 0, batch: int = 128) -> float:
    """Each batch draws shares[i] of its images uniformly from sets[i]; returns test accuracy."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = DomainCNN()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    counts = [round(s * batch) for s in shares]
    net.train()
    for _ in range(steps):
        xs, ys = [], []
        for (x, y), k in zip(sets, counts):
            idx = torch.randint(len(x), (k,), generator=g)
            xs.append(x[idx])
            ys.append(y[idx])
        loss = F.cross_entropy(net(shift(torch.cat(xs), g)), torch.cat(ys), label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return accuracy(net, *test)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--gan-steps", type=int, default=6000)
    ap.add_argument("--clf-steps", type=int, default=1500)
    ap.add_argument("--n-synthetic", type=int, default=60_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    real, test = real_split("mnist", "train"), real_split("mnist", "test")
    small = (real[0][:N_SMALL], real[1][:N_SMALL])  # what data.max_images=600 trains the GAN on

    timings = {}
    t = time.time()
    gan_small = train_gan(args.out, "cgan_600", args.gan_steps,
                          [f"data.max_images={N_SMALL}", "train.augment=translation,cutout"])
    timings["cGAN on 600 (s)"] = round(time.time() - t)
    t = time.time()
    gan_full = train_gan(args.out, "cgan_full", args.gan_steps, [])
    timings["cGAN on 60,000 (s)"] = round(time.time() - t)
    syn_small = synthetic(gan_small, args.out, args.n_synthetic, args.seed)
    syn_full = synthetic(gan_full, args.out, args.n_synthetic, args.seed)
    union = (torch.cat([small[0], syn_small[0]]), torch.cat([small[1], syn_small[1]]))

    rows = []
    for label, sets, shares in [
        ("(a) 600 real", [small], [1.0]),
        ("(b) 600 real + 60,000 from a cGAN trained on those 600 (uniform over the union)", [union], [1.0]),
        ("(b') the same, half of every batch real", [small, syn_small], [0.5, 0.5]),
        ("(c) 60,000 from a cGAN trained on all of MNIST, no real images (CAS)", [syn_full], [1.0]),
        ("(d) 60,000 real", [real], [1.0]),
    ]:
        t = time.time()
        acc = train_classifier(sets, shares, args.clf_steps, test, args.seed)
        rows.append({"setting": label, "test_accuracy": acc, "seconds": round(time.time() - t)})
        print(f"{label}: {acc:.4f} ({rows[-1]['seconds']} s)", flush=True)

    result = {"rows": rows, "gan_steps": args.gan_steps, "clf_steps": args.clf_steps, "timings": timings,
              "gan_runs": [str(gan_small), str(gan_full)], "wall_s": round(time.time() - t0),
              "cpu": _cpu(), "torch": torch.__version__, "python": platform.python_version()}
    (args.out / "gan_augmentation.json").write_text(json.dumps(result, indent=2))
    print("\n| training data | test accuracy |\n| --- | --- |")
    for r in rows:
        print(f"| {r['setting']} | {100 * r['test_accuracy']:.2f} % |")
    print(f"\nwall {result['wall_s']} s on {result['cpu']}; {timings}")


def _cpu() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


if __name__ == "__main__":
    main()
