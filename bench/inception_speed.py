"""Images per second through the FID Inception-v3 on this machine, per batch size, with the CPU
time split into user and system (large batches spend more of it in the kernel here).

    python -m bench.inception_speed [--images 100] [--batches 10 25 50]

Random weights: speed does not depend on them. Inputs are 32 x 32 RGB, resized to 299 inside.
"""

import resource
import time
from pathlib import Path

import torch

from bench.common import parser, run_script
from ganforge.metrics.inception import FIDInceptionV3


def run(args) -> None:
    net = FIDInceptionV3().eval()
    x = torch.rand(args.images, 3, 32, 32)
    for b in args.batches:
        with torch.no_grad():
            net(x[:b])  # warm-up
            r0, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            for i in range(0, args.images, b):
                net(x[i:i + b])
            dt, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF)
        print(f"batch {b}: {args.images / dt:.1f} images/s (user {r1.ru_utime - r0.ru_utime:.1f} s, "
              f"system {r1.ru_stime - r0.ru_stime:.1f} s, wall {dt:.1f} s)")


def smoke(tmp: Path) -> list[str]:
    return ["--images", "2", "--batches", "1", "2"]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--batches", type=int, nargs="+", default=[10, 25, 50])
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
