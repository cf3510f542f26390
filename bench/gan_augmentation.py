"""GANs as data augmentation, and the Classification Accuracy Score (Ravuri & Vinyals 2019).

    python -m bench.gan_augmentation --out bench/out/gan_aug [--gan-steps 6000] [--clf-steps 1500]

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

import json
import time
from pathlib import Path

import torch

from bench.common import CONFIGS, machine, parser, real_split, synthetic, table_head, train_classifier
from ganforge import api, config

N_SMALL = 600


def train_gan(out: Path, name: str, steps: int, extra: list[str]) -> Path:
    cfg = config.load(CONFIGS / "mnist_cgan.yaml", [
        "model.width=32", "train.batch_size=64", "train.epochs=100000", f"train.max_steps={steps}",
        "eval.every_steps=0", "log.progress=false", "log.report=false", f"run.dir={out / 'runs'}",
        f"run.name={name}", *extra])
    run_dir, _ = api.train(cfg, log=lambda s: None)
    return run_dir


def main():
    ap = parser(__doc__)
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
              **machine()}
    (args.out / "gan_augmentation.json").write_text(json.dumps(result, indent=2))
    print()
    print(table_head("training data", "test accuracy"))
    for r in rows:
        print(f"| {r['setting']} | {100 * r['test_accuracy']:.2f} % |")
    print(f"\nwall {result['wall_s']} s on {result['cpu']}; {timings}")


if __name__ == "__main__":
    main()
