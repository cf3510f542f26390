"""`ganforge eval`: metrics of a checkpoint or an export."""

from __future__ import annotations

import sys

from ganforge import api
from ganforge.core.errors import GanforgeError
from ganforge.metrics import METRICS, format_table

HELP = "metrics of a checkpoint or an export (Parzen, FID, KID, PRDC, modes, ...)"


def add_arguments(p) -> None:
    p.add_argument("source", help="checkpoint .pt, run folder, or export folder / generator.json")
    p.add_argument("--metrics", help=f"comma-separated: {','.join(METRICS)} "
                                     "(default: those that apply to the generator's data)")
    p.add_argument("--num-samples", type=int, default=10_000, help="generated samples (default 10000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the records as JSON here")
    p.add_argument("--inception-weights", metavar="PATH",
                   help="Inception-v3 FID weights (pt_inception-2015-12-05-6726825d.pth) for image-folder models")
    p.add_argument("--feature-net", metavar="PATH", help="a feature net from `ganforge featurenet train` (its .json)")


def run(args) -> int:
    if args.num_samples < 2:
        raise GanforgeError(f"--num-samples {args.num_samples}: need at least 2 samples")
    names = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    records = api.evaluate(args.source, names, args.num_samples, args.seed, args.out, args.inception_weights,
                           args.feature_net)
    print(format_table(records))
    if args.out:
        print(f"records: {args.out}")
    refused = [r for r in records if "refused" in r]
    if refused and (names or len(refused) == len(records)):  # asked for by name, or nothing computed
        by_reason: dict[str, list[str]] = {}
        for r in refused:
            by_reason.setdefault(r["refused"], []).append(r["metric"])
        print("error: refused: " + "; ".join(f"{', '.join(m)} ({why})" for why, m in by_reason.items()), file=sys.stderr)
        return 2
    return 0
