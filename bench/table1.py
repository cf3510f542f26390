"""Goodfellow et al. 2014, Table 1 (MNIST), reproduced side by side.

    python -m bench.table1 --run goodfellow2014=runs/00001-mnist_goodfellow2014 \
                           --run textbook=runs/00000-mnist_mlp [--num-samples 10000] [--out bench/out/table1.json]

Each --run is a checkpoint, run folder or export, trained with the commands in docs/RESULTS.md.
Adds a reference row with 10,000 real MNIST training images (train[0:10000]) as kernel centres,
prints a Markdown table next to the paper's numbers, with FID / PRDC / modes in the mnist-cnn
feature space beside Parzen, and the wall time of each evaluation. The "nearest d2" column is the
mean squared distance from a test image to its nearest kernel centre: at the chosen sigma one nat
of Parzen score is 2 sigma^2 (about 0.06) of it, so it says why two rows differ.
"""

import json
import time
from pathlib import Path

from bench.common import machine, parser, table_head, unit_images
from ganforge import api
from ganforge.data import load_idx_split
from ganforge.metrics.parzen import parzen_protocol

PAPER = [("DBN", "138 +- 2"), ("Stacked CAE", "121 +- 1.6"), ("Deep GSN", "214 +- 1.1"),
         ("Adversarial nets (paper)", "225 +- 2")]


def main():
    ap = parser(__doc__)
    ap.add_argument("--run", action="append", default=[], help="NAME=PATH")
    ap.add_argument("--num-samples", type=int, default=10_000)
    ap.add_argument("--out", default="bench/out/table1.json")
    args = ap.parse_args()
    rows = []
    train, _, _ = load_idx_split("mnist", "train")
    valid, _, _ = load_idx_split("mnist", "validation")
    test, _, _ = load_idx_split("mnist", "test")
    t0 = time.perf_counter()
    real = parzen_protocol(unit_images(train[:10_000]), unit_images(valid[:1000]), unit_images(test))
    rows.append({"model": "real training images train[0:10000] as centres", "parzen": real.mean,
                 "stderr": real.stderr, "sigma": real.sigma, "nearest_d2": real.test_nearest_d2,
                 "parzen_seconds": time.perf_counter() - t0})
    for item in args.run:
        name, path = item.split("=", 1)
        t0 = time.perf_counter()
        records = {r["metric"]: r for r in api.evaluate(path, ["parzen", "fid", "prdc", "modes"], args.num_samples)}
        p, f, q, m = (records[k] for k in ("parzen", "fid", "prdc", "modes"))
        rows.append({"model": name, "source": path, "step": p["step"], "parzen": p["value"], "stderr": p["stderr"],
                     "sigma": p["sigma"], "nearest_d2": p["test_nearest_sq_distance"], "parzen_seconds": p["seconds"],
                     "fid": f["value"],
                     "fid_seconds": f["seconds"],  # includes both sets' feature extraction
                     "precision": q["precision"], "recall": q["recall"], "density": q["density"],
                     "coverage": q["coverage"], "modes_hit": m["modes_hit"], "kl_to_uniform": m["kl_to_uniform"],
                     "feature_extractor": f["feature_extractor"], "sha256": f["feature_extractor_sha256"],
                     "eval_seconds": time.perf_counter() - t0})
    print(table_head("model", "Parzen log-likelihood (MNIST test)", "nearest d2", "FID (mnist-cnn)", "precision", "recall",
                     "modes hit", "KL to uniform"))
    for name, value in PAPER:
        print(f"| {name} | {value} | | | | | | |")
    for r in rows:
        extra = (f"{r['fid']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['modes_hit']} | "
                 f"{r['kl_to_uniform']:.3f}") if "fid" in r else " | | | | "
        print(f"| {r['model']} (ganforge) | {r['parzen']:.0f} +- {r['stderr']:.1f} (sigma {r['sigma']:.3f}) | "
              f"{r['nearest_d2']:.2f} | {extra} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, **machine()}, indent=2))
    print(f"real-centres Parzen protocol (10k x 10k + 1k x 10k, 10 sigmas): {rows[0]['parzen_seconds']:.1f} s")
    for r in rows[1:]:
        print(f"{r['model']}: sampling + Parzen {r['parzen_seconds']:.1f} s, FID (features of {args.num_samples} "
              f"generated + 10,000 test images) {r['fid_seconds']:.1f} s, all metrics {r['eval_seconds']:.1f} s")


if __name__ == "__main__":
    main()
