"""The FID of real images: n random training images against the test split, in a domain feature
space. A generator's FID at the same n is read against this floor (the estimator is biased upward
at small n, so not even real data scores 0).

    GANFORGE_DATA=../shared/data python -m bench.fid_floor [--domain mnist] [--n 2000 5000 10000] [--draws 3]
"""

from pathlib import Path

import torch

from bench.common import need_data, parser, real_split, run_script, table_head
from ganforge.data import DATASETS
from ganforge.metrics.features import load_extractor
from ganforge.metrics.fid import fid


def run(args) -> None:
    ex = load_extractor(DATASETS[args.domain].feature_net)
    x_test, x_train = real_split(args.domain, "test")[0], real_split(args.domain, "train")[0]
    f_test = ex.run(x_test)[0]
    print(table_head(f"{args.domain} training images", f"FID against the test split ({args.draws} draws)"))
    for n in args.n:
        values = []
        for draw in range(args.draws):
            idx = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(draw))[:n]
            values.append(fid(f_test, ex.run(x_train[idx])[0]))
        print(f"| {n} | {' / '.join(f'{v:.3f}' for v in values)} |")


def smoke(tmp: Path) -> list[str]:
    need_data("mnist")
    return ["--n", "200", "--draws", "1"]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--domain", default="mnist", choices=["mnist", "fashion-mnist"])
    ap.add_argument("--n", type=int, nargs="+", default=[2000, 5000, 10000])
    ap.add_argument("--draws", type=int, default=3)
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
