"""The FID of real images: n random training images against the test split, in a domain feature
space. A generator's FID at the same n is read against this floor (the estimator is biased upward
at small n, so not even real data scores 0).

    GANFORGE_DATA=../shared/data python bench/fid_floor.py [--domain mnist] [--n 2000 5000 10000] [--draws 3]
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_augmentation import real_split  # noqa: E402

from ganforge.data import DATASETS  # noqa: E402
from ganforge.metrics.features import load_extractor  # noqa: E402
from ganforge.metrics.fid import fid  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--domain", default="mnist", choices=["mnist", "fashion-mnist"])
    ap.add_argument("--n", type=int, nargs="+", default=[2000, 5000, 10000])
    ap.add_argument("--draws", type=int, default=3)
    args = ap.parse_args()
    ex = load_extractor(DATASETS[args.domain].feature_net)
    x_test, x_train = real_split(args.domain, "test")[0], real_split(args.domain, "train")[0]
    f_test = ex.run(x_test)[0]
    print(f"| {args.domain} training images | FID against the test split ({args.draws} draws) |\n| --- | --- |")
    for n in args.n:
        values = []
        for draw in range(args.draws):
            idx = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(draw))[:n]
            values.append(fid(f_test, ex.run(x_train[idx])[0]))
        print(f"| {n} | {' / '.join(f'{v:.3f}' for v in values)} |")


if __name__ == "__main__":
    main()
