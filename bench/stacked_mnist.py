"""Stacked MNIST in the VEEGAN setting (PacGAN, Lin et al. 2018, Table 2): modes and KL.

    # the reduced CPU run reported in docs/RESULTS.md
    python -m bench.stacked_mnist --out bench/out/stacked --steps 3000 --packs 1,2 --runs 1
    # the full benchmark (a GPU job: 10 runs x 4 packings x 100,000 steps)
    python -m bench.stacked_mnist --out bench/out/stacked_full --steps 100000 --packs 1,2,3,4 --runs 10

The setting of the authors' code (fjxmlzn/PacGAN, stacked_MNIST_experiments/VEEGAN_experiment):
128,000 training images of three MNIST digits stacked as RGB channels, DCGAN, z = 100, Adam 2e-4
with beta1 0.5, batch 64, 50 epochs (= 100,000 steps); 26,000 generated samples are read channel
by channel by an MNIST classifier (here the shipped mnist-cnn, test accuracy 99.4 %); a mode is a
digit triple (1,000 in all), counted when at least one sample lands in it, and KL(generated mode
histogram || uniform). PacGAN-m packs m samples for D (`train.pack`). Deviations: ganforge's
DCGAN at 28 px (configs/stacked_mnist_dcgan.yaml, width 64) stands for the authors' TensorFlow
DCGAN, and the CPU run is far shorter than 100,000 steps; the table says how long each run was.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.common import CONFIGS, format_mean_se, need_data, parser, run_script, table_head
from ganforge import api, config

PUBLISHED = {1: "99 / 3.4", 2: "1000 / 0.06"}  # modes / KL (PacGAN Table 2, as the issue quotes it)


def one_run(out: Path, pack: int, seed: int, steps: int, num_samples: int) -> dict:
    cfg = config.load(CONFIGS / "stacked_mnist_dcgan.yaml", [
        "data.max_images=128000", "train.batch_size=64", "train.epochs=50", f"train.max_steps={steps}",
        f"train.pack={pack}", f"train.seed={seed}", "eval.every_steps=0", "log.progress=false", "log.report=false",
        f"run.dir={out / 'runs'}", f"run.name=stacked_pack{pack}_seed{seed}"])
    t0 = time.time()
    run_dir, result = api.train(cfg, log=lambda s: None)
    train_s = time.time() - t0
    (modes,) = api.evaluate(run_dir, ["modes"], num_samples=num_samples, seed=seed)
    return {"pack": pack, "seed": seed, "steps": result.step, "modes": modes["modes_hit"],
            "kl": modes["kl_to_uniform"], "train_s": round(train_s), "run": str(run_dir)}


def run(args) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for pack in map(int, args.packs.split(",")):
        for seed in range(args.runs):
            rows.append(one_run(args.out, pack, seed, args.steps, args.num_samples))
            print(json.dumps(rows[-1]), flush=True)
            (args.out / "stacked_mnist.json").write_text(json.dumps(rows, indent=2))
    print()
    print(table_head("model", "steps", "runs", "modes (of 1000)", "KL",
                     "published modes / KL (100,000 steps, 10 runs)"))
    for pack in map(int, args.packs.split(",")):
        rs = [r for r in rows if r["pack"] == pack]
        name = "DCGAN" if pack == 1 else f"PacDCGAN{pack}"
        print(f"| {name} | {rs[0]['steps']} | {len(rs)} | {format_mean_se([r['modes'] for r in rs])} | "
              f"{format_mean_se([r['kl'] for r in rs])} | {PUBLISHED.get(pack, '')} |")


def smoke(tmp: Path) -> list[str]:
    need_data("mnist")
    return ["--out", str(tmp), "--steps", "2", "--packs", "1,2", "--num-samples", "200"]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--packs", default="1,2")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--num-samples", type=int, default=26_000, help="samples read for the modes (the authors' 26,000)")
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
