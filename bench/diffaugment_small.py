"""Overfitting on small data: 500 Fashion-MNIST images, with and without DiffAugment.

    python -m bench.diffaugment_small --out bench/out/diffaug [--steps 4000] [--every 500]

Trains configs/fashion_dcgan.yaml (made to fit a 2-core CPU: width 32, batch 64) on the first 500
Fashion-MNIST training images twice - once plain, once with DiffAugment (Zhao et al. 2020:
colour, translation and cutout applied to everything D sees, real and generated) - with the same
seed, and records FID (fashion-mnist-cnn feature space, against the test split, 2,000 samples)
and the memorisation check (against the 500 training images and 500 test images) every --every
steps. A D that overfits its 500 images stops giving G useful gradients, FID climbs back up, and
generated samples drift toward the training images; DiffAugment exists to prevent that. Prints
both curves and the final numbers as Markdown tables.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.common import CONFIGS, parser, table_head
from ganforge import api, config

POLICY = "color,translation,cutout"


def run(out: Path, name: str, steps: int, every: int, augment: str, seed: int) -> list[dict]:
    cfg = config.load(CONFIGS / "fashion_dcgan.yaml", [
        "data.max_images=500", "model.width=32", "train.batch_size=64", "train.epochs=100000",
        f"train.max_steps={steps}", f"train.seed={seed}", f"train.augment={augment}",
        f"eval.every_steps={every}", "eval.metrics=[fid, memorization]", "eval.num_samples=2000",
        "log.progress=false", f"run.dir={out / 'runs'}", f"run.name={name}"])
    run_dir, _ = api.train(cfg, log=lambda s: None)
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def main():
    ap = parser(__doc__)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.time()
    curves = {label: run(args.out, name, args.steps, args.every, augment, args.seed)
              for label, name, augment in (("plain", "fashion500_plain", ""),
                                           (f"DiffAugment ({POLICY})", "fashion500_diffaug", POLICY))}
    (args.out / "diffaugment_small.json").write_text(json.dumps(curves, indent=2))
    labels = list(curves)
    print(table_head("step", *(f"{what} {k}" for k in labels for what in ("FID", "suspicious", "d_train/d_test"))))
    for rows in zip(*curves.values()):
        cells = [f"{r['fid']:.2f} | {100 * r['memorization_suspicious_fraction']:.1f} % | "
                 f"{r.get('memorization_median_train_test_ratio', float('nan')):.3f}" for r in rows]
        print(f"| {rows[0]['step']} | " + " | ".join(cells) + " |")
    for k in labels:
        best = min(curves[k], key=lambda r: r["fid"])
        print(f"{k}: final FID {curves[k][-1]['fid']:.2f}, best {best['fid']:.2f} at step {best['step']}")
    print(f"wall {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
