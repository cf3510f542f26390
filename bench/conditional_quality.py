"""Conditional quality: FID, per-class FID and the Classification Accuracy Score of the three
conditional presets, next to the unconditional DCGAN on the same data.

    GANFORGE_DATA=../shared/data python -m bench.conditional_quality --out bench/out/cond_quality \
        [--steps 3000] [--clf-steps 1000] [--num-samples 10000] [--only mnist_acgan ...]

Every preset trains for the same number of steps (its own batch and nets; evaluation and pictures
off), then its final generator (the EMA of G where the preset keeps one) is measured on
--num-samples samples against the real test split, in the dataset's shipped domain feature space:

- FID, and for the conditional models per-class FID (samples of class k against the test images
  of class k; the mean over classes) and the share of samples the domain classifier reads as the
  class G was asked for (bench/class_agreement.py);
- CAS (Ravuri & Vinyals 2019): the domain classifier's architecture trained from scratch on 60,000
  labelled samples only (`ganforge sample RUN --labels --format idx`), tested on the real test
  set; the same classifier trained on the 60,000 real training images is the row to compare with.

The classifier recipe is bench/gan_augmentation.py's (train_classifier in bench/common.py). Runs go
one after another; steps, not time, are fixed, so the numbers do not depend on what else the
machine is doing (the times do).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.common import (CONFIGS, agreement, machine, parser, real_split, synthetic, table_head,
                          train_classifier)
from ganforge import api, config, load_generator

PRESETS = {  # preset -> the IDX dataset it trains on
    "mnist_cgan": "mnist", "mnist_acgan": "mnist", "mnist_dcgan": "mnist",
    "fashion_cgan_projection": "fashion-mnist", "fashion_dcgan": "fashion-mnist",
}


def train_preset(name: str, steps: int, out: Path) -> tuple[Path, float]:
    cfg = config.load(CONFIGS / f"{name}.yaml", [
        "train.epochs=100000", f"train.max_steps={steps}", "eval.every_steps=0", "log.progress=false",
        "log.report=false", f"run.dir={out / 'runs'}", f"run.name={name}"])
    t = time.time()
    run_dir, result = api.train(cfg, log=lambda s: None)
    if result.interrupted_by:
        raise SystemExit(f"{result.interrupted_by}: stopped while training {name} ({run_dir})")
    return run_dir, time.time() - t


def measure(run_dir: Path, num_samples: int, seed: int) -> dict:
    G = load_generator(run_dir)
    metrics = ["fid", "class_fid"] if G.num_classes else ["fid"]
    records = {r["metric"]: r for r in api.evaluate(G, metrics, num_samples=num_samples, seed=seed)}
    row = {"fid": records["fid"]["value"], "feature_space": records["fid"].get("feature_extractor")}
    if G.num_classes:
        row["class_fid"] = records["class_fid"]["value"]
        row["class_fid_per_class"] = records["class_fid"]["per_class"]
        row["read_as_asked"], row["read_as_asked_per_class"] = agreement(G, num_samples, seed)
    return row


def main():
    ap = parser(__doc__)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--clf-steps", type=int, default=1000)
    ap.add_argument("--num-samples", type=int, default=10_000)
    ap.add_argument("--n-synthetic", type=int, default=60_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="+", choices=sorted(PRESETS), help="a subset of the presets")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results_file = args.out / "conditional_quality.json"
    rows = json.loads(results_file.read_text())["rows"] if results_file.exists() else []  # resumable
    done = {r["preset"] for r in rows}

    def save():
        results_file.write_text(json.dumps({
            "rows": rows, "steps": args.steps, "clf_steps": args.clf_steps, "num_samples": args.num_samples,
            **machine()}, indent=2))

    for domain in dict.fromkeys(PRESETS.values()):
        test = real_split(domain, "test")
        if f"real:{domain}" not in done:  # the CAS row to compare with: the same classifier on real images
            acc = train_classifier([real_split(domain, "train")], [1.0], args.clf_steps, test, args.seed)
            rows.append({"preset": f"real:{domain}", "domain": domain, "cas": acc})
            print(f"{domain}, classifier on the 60,000 real images: {acc:.4f}", flush=True)
            save()
        for name in [p for p, d in PRESETS.items() if d == domain and (not args.only or p in args.only)]:
            if name in done:
                continue
            run_dir, seconds = train_preset(name, args.steps, args.out)
            row = {"preset": name, "domain": domain, "run": str(run_dir), "steps": args.steps,
                   "train_wall_s": round(seconds), **measure(run_dir, args.num_samples, args.seed)}
            if "class_fid" in row:
                syn = synthetic(run_dir, args.out, args.n_synthetic, args.seed)
                row["cas"] = train_classifier([syn], [1.0], args.clf_steps, test, args.seed)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if not k.endswith("per_class")}), flush=True)
            save()

    print()
    print(table_head("preset", "FID", "per-class FID (mean)", "read as the asked class",
                     "CAS (real-trained: see its row)"))
    for r in rows:
        if r["preset"].startswith("real:"):
            print(f"| classifier on real {r['domain']} | | | | {100 * r['cas']:.2f} % |")
            continue
        cond = "class_fid" in r
        print(f"| `{r['preset']}` | {r['fid']:.2f} | {r['class_fid']:.2f} | {100 * r['read_as_asked']:.1f} % | "
              f"{100 * r['cas']:.2f} % |" if cond else f"| `{r['preset']}` | {r['fid']:.2f} | n/a | n/a | n/a |")


if __name__ == "__main__":
    main()
